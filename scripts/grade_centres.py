"""How many centres the extrapolation grade needs: error ranking against flagging a liquid.

    python scripts/grade_centres.py [--centres 1 4 16 64] [--out benchmarks/results]

For each Si zoo model and each number of centres M, ``snnp.ExtrapolationGrade.from_data`` on
the mlearn Si training set (what ``build_zoo.py --regrade`` attaches), and for the reference
``snnp.coverage.FilterCoverage``:

- ``spearman``: the Spearman rank correlation, over the 25 mlearn Si test structures, between a
  structure's absolute energy error per atom and its largest per-atom grade;
- ``test_flagged``: the fraction of those test structures (drawn like the training set) whose
  largest grade exceeds 1: false alarms;
- for Si/snnp_large only, ``liquid``: 64 atoms of diamond Si under Langevin at 3000 K (1 fs,
  friction 0.02, 2 000 steps to melt, then 80 snapshots 100 steps apart): the fraction of
  snapshots whose largest grade exceeds 1, and the largest grade seen.

Writes ``OUT/grade_centres.json`` (machine, command) and prints the table of
docs/accuracy.md ("Does the grade rank errors?").  About 2 minutes on 2 cores.
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.langevin import Langevin
try:
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:            # ASE < 3.27
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from scipy.stats import spearmanr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.coverage import FilterCoverage  # noqa: E402
from snnp.io.atomic import atomic_write  # noqa: E402


def liquid_snapshots(model, seed=1):
    """80 snapshots of 64-atom Si melted at 3000 K under ``model``."""
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    atoms.calc = model.calculator()
    thermalize_momenta(atoms, temperature_K=3000, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, units.fs, temperature_K=3000, friction=0.02, fixcm=False,
                   rng=np.random.default_rng(seed + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the close-approach warning, expected in a melt
        dyn.run(2000)
        frames = []
        for _ in range(80):
            dyn.run(100)
            frames.append(atoms.copy())
    return frames


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--centres", nargs="+", type=int, default=[1, 4, 16, 64])
    p.add_argument("--presets", nargs="+", default=list(snnp.models.LADDER))
    p.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results"))
    p.add_argument("--data-dir", default=None, help="folder with Si/training.json, test.json")
    args = p.parse_args()
    out_path = benchinfo.output_path(args.out, "grade_centres.json")
    t0 = time.time()
    train, test = snnp.datasets.mlearn("Si", "both", cache_dir=args.data_dir)
    rows = {}
    for name in args.presets:
        model = snnp.load(f"Si/{name}")
        errors = [abs(model.compute(s.atoms, ("energy",))["energy"] - s.energy) / len(s.atoms)
                  for s in test]
        G_test = [model.descriptors(s.atoms) for s in test]
        frames = liquid_snapshots(model) if name == "snnp_large" else []
        G_liquid = [model.descriptors(a) for a in frames]
        row = {}
        grades = {f"M={m}": snnp.ExtrapolationGrade.from_data(model, train, n_centres=m)
                  for m in args.centres}
        for key, g in grades.items():
            worst = [g.grade_filters(G, 0).max() for G in G_test]
            row[key] = {"spearman": float(spearmanr(errors, worst)[0]),
                        "test_flagged": float(np.mean(np.array(worst) > 1.0))}
            if G_liquid:
                top = np.array([g.grade_filters(G, 0).max() for G in G_liquid])
                row[key]["liquid"] = {"flagged": float(np.mean(top > 1.0)),
                                      "largest": float(top.max())}
        cover = FilterCoverage(model, train)
        worst = np.array([cover.grade(s.atoms).max() for s in test])
        row["FilterCoverage"] = {"spearman": float(spearmanr(errors, worst)[0]),
                                 "test_flagged": float(np.mean(worst > 1.0))}
        if frames:
            top = np.array([cover.grade(a).max() for a in frames])
            row["FilterCoverage"]["liquid"] = {"flagged": float(np.mean(top > 1.0)),
                                               "largest": float(top.max())}
        rows[f"Si/{name}"] = row
        print(f"| Si/{name} | " + " | ".join(f"{v['spearman']:.2f}" for v in row.values())
              + " |", flush=True)
    print("| test structures flagged (Si/snnp_large) | " + " | ".join(
        f"{v['test_flagged']:.0%}" for v in rows.get("Si/snnp_large", {}).values()) + " |")
    liquid = rows.get("Si/snnp_large")
    if liquid:
        print("| 3000 K liquid (Si/snnp_large): snapshots flagged, largest grade | "
              + " | ".join(f"{v['liquid']['flagged']:.0%}, {v['liquid']['largest']:.2f}"
                           for v in liquid.values()) + " |")
    doc = {"benchmark": "extrapolation grade: centres against error ranking and a 3000 K liquid",
           "command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(), "wall_s": time.time() - t0,
           "columns": ["M=%d" % m for m in args.centres] + ["FilterCoverage"],
           "models": rows}
    with atomic_write(out_path) as fh:
        json.dump(doc, fh, indent=1)
    print(f"wrote {out_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
