"""Where the zoo's models end: short-range curves, EOS grades and how well the grade ranks errors.

    python scripts/short_range_report.py [--elements Li Mo Si] [--out benchmarks/results]

For every zoo model of each element (all five presets):

- the largest inward energy drop (eV; 0 when the energy only rises as the pair closes) and
  where it ends, for a dimer, a trimer (third atom at the crystal's nearest-neighbour
  distance), one pair inside the crystal (``snnp.curves.short_range_report``, from the
  nearest-neighbour distance down to 0.3 A) and the equation of state (eV/atom, V/V0 1 -> 0.4);
- the largest dip of the dimer and the trimer in the 0.2 A below the shortest training
  distance r_out, where the learned terms fade out and the ZBL core fades in;
- the largest per-atom extrapolation grade of the compressed crystal at V/V0 = 0.88, 0.7, 0.6,
  0.5;
- the crystal cleaved along (100), (110) and (111) (``snnp.curves.cleavage_curve``, the halves
  0 .. cutoff + 1 A apart): the unrelaxed surface energy (J/m^2) and the largest energy drop on
  the way out (J/m^2; 0 when the energy rises all the way);
- for the Si models, the Spearman rank correlation over the 25 Si test structures between the
  structure's absolute energy error and its largest per-atom grade, for the in-kernel grade the
  model carries (``snnp.ExtrapolationGrade``) and for ``snnp.coverage.FilterCoverage`` on the
  training set.

Writes ``OUT/short_range_curves.json`` (with the machine and the command) and prints the tables
docs/accuracy.md ("Where the data end") shows.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from scipy.stats import spearmanr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.curves import (dimer_curve, eos_curve, inward_drop, reference_crystal,  # noqa: E402
                         short_range_report, trimer_curve)
from snnp.io.atomic import atomic_write  # noqa: E402

VOLUMES = (0.88, 0.7, 0.6, 0.5)


def edge_dips(model):
    """Largest dimer and trimer dip in [r_out - 0.2 A, r_out] (eV) and where it ends."""
    r_out = model.short_range_limit
    r = np.linspace(r_out - 0.2, r_out, 200)
    out = {}
    for name, curve in (("dimer", dimer_curve), ("trimer", trimer_curve)):
        drop, where = inward_drop(*curve(model, r))
        out[name] = {"dip": drop, "at": where}
    return out


def eos_grades(model):
    crystal = reference_crystal(model.species[0])
    grades = {}
    for v in VOLUMES:
        a = crystal.copy()
        a.set_cell(a.cell.array * v ** (1.0 / 3.0), scale_atoms=True)
        grades[str(v)] = model.compute(a, ("energy", "max_extrapolation"))["max_extrapolation"]
    return grades


def ranking(model, train, test):
    """Spearman(|E error| per structure, largest per-atom grade) for both grades."""
    from snnp.coverage import FilterCoverage
    errors, kernel, coverage = [], [], []
    cover = FilterCoverage(model, train)
    for s in test:
        r = model.compute(s.atoms, ("energy", "max_extrapolation"))
        errors.append(abs(r["energy"] - s.energy) / len(s.atoms))
        kernel.append(r["max_extrapolation"])
        coverage.append(float(cover.grade(s.atoms).max()))
    return {"kernel": float(spearmanr(errors, kernel)[0]),
            "kernel_centres": model.extrapolation.n_centres,
            "filter_coverage": float(spearmanr(errors, coverage)[0]),
            "structures": len(test)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--elements", nargs="+", default=["Li", "Mo", "Si"])
    p.add_argument("--presets", nargs="+", default=list(snnp.models.LADDER))
    p.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results"))
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    args = p.parse_args()
    out_path = benchinfo.output_path(args.out, "short_range_curves.json")
    t0 = time.time()
    rows = {}
    for el in args.elements:
        train, test = (snnp.datasets.mlearn(el, "both", cache_dir=args.data_dir)
                       if el == "Si" else (None, None))
        for name in args.presets:
            key = f"{el}/{name}"
            model = snnp.load(key)
            rep = short_range_report(model)
            row = {"r_out": model.short_range_limit, "core": str(model.core),
                   "nearest_neighbour": rep["nearest_neighbour"],
                   "curves": {c: {"inward_drop": rep[c]["inward_drop"], "drop_at": rep[c]["drop_at"]}
                              for c in ("dimer", "trimer", "crystal_pair", "eos")},
                   "edge": edge_dips(model), "eos_grades": eos_grades(model),
                   "cleavage": {c[-3:]: {"surface_energy": rep[c]["surface_energy"],
                                         "outward_drop": rep[c]["inward_drop"],
                                         "drop_at": rep[c]["drop_at"]}
                                for c in ("cleavage_100", "cleavage_110", "cleavage_111")}}
            if train is not None:
                row["ranking"] = ranking(model, train, test)
            rows[key] = row
            c = row["curves"]
            print(f"| {key} | " + " | ".join(
                "0" if c[n]["inward_drop"] < 1e-3 else f"{c[n]['inward_drop']:.3g} at {c[n]['drop_at']:.3g}"
                for n in ("dimer", "trimer", "crystal_pair", "eos"))
                + " | " + " / ".join(f"{row['edge'][n]['dip']:.3g}" for n in ("dimer", "trimer"))
                + " | " + " / ".join(f"{g:.2g}" for g in row["eos_grades"].values())
                + (f" | {row['ranking']['kernel']:.2f} / {row['ranking']['filter_coverage']:.2f}"
                   if "ranking" in row else "") + " |", flush=True)
            print(f"| {key} cleaved | " + " | ".join(
                f"{v['surface_energy']:.2f} (drop "
                + ("0" if v["outward_drop"] < 1e-6 else f"{v['outward_drop']:.2g}") + ")"
                for v in row["cleavage"].values()) + " |", flush=True)
    doc = {"benchmark": "short-range curves, EOS grades and grade ranking of the zoo models",
           "command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(), "wall_s": time.time() - t0,
           "columns": {"curves": "largest inward drop (eV; eos: eV/atom) from the crystal's "
                                 "nearest-neighbour distance (eos: V/V0 = 1) in and where it ends",
                       "edge": "largest dip (eV) in [r_out - 0.2 A, r_out]",
                       "eos_grades": "largest per-atom grade of the crystal at V/V0",
                       "cleavage": "per plane: unrelaxed surface energy (J/m^2) and the "
                                   "largest energy drop (J/m^2) as the halves part",
                       "ranking": "Spearman(|E error|, largest grade) over the Si test set"},
           "models": rows}
    with atomic_write(out_path) as fh:
        json.dump(doc, fh, indent=1)
    print(f"wrote {out_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
