"""What the cleavage probes cost: rung 0 fitted with and without them, over seeds.

    python scripts/cleavage_weight.py [--element Si] [--weights 0 1e-3] [--seeds 0 1 2]
                                      [--iterations 900] [--out benchmarks/results]

On the mlearn training set of ``--element`` (10% held out for validation, as ``snnp.ladder.scan``
splits it), rung 0 (``smeam``) is fitted once per (cleavage weight, seed) with the zoo's loss
(``Loss(energy=1, forces=0.002, stress=1e-4, repulsion=1e-3)``) plus ``Loss(cleavage=w)``; for
Si every fit uses the zoo's recipe (angular filters ending at 3.5 A, e0 held at -0.80 eV).  The
seed sets the initial parameters, not the split.  For each fit: test and validation energy
and force RMSE, the fit's time, and for the element's reference crystal cleaved along (100),
(110) and (111) (``snnp.curves.cleavage_curve``, the halves 0 .. cutoff + 1 A apart) the
unrelaxed surface energy and the largest energy drop on the way out (J/m^2).  Writes
``OUT/cleavage_weight_<El>.json`` (machine, command) and prints the table of docs/training.md
("Loss").  About 5 minutes per fit for Si on 1 thread.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.curves import cleavage_curve, inward_drop, reference_crystal  # noqa: E402

RECIPE = snnp.datasets.MLEARN_RECIPE
PLANES = ((1, 0, 0), (1, 1, 0), (1, 1, 1))


def errors(model, data):
    s = model.score(data)
    return {"energy_rmse_meV_per_atom": s["energy_meV_per_atom"]["rmse"],
            "force_rmse_eV_per_A": s["forces_eV_per_A"]["rmse"]}


def cleavages(model):
    """{plane: {"surface_energy", "outward_drop"}} (J/m^2) of the reference crystal."""
    crystal = reference_crystal(model.species[0])
    separations = np.linspace(0.0, model.cutoff + 1.0, 41)[1:]
    out = {}
    for hkl in PLANES:
        x, gamma = cleavage_curve(model, separations, hkl, crystal)
        out["".join(map(str, hkl))] = {"surface_energy": float(gamma[-1]),
                                       "outward_drop": inward_drop(-x, gamma)[0]}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--element", default="Si")
    p.add_argument("--weights", nargs="+", type=float, default=[0.0, 1e-3])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=900)
    p.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results"))
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    args = p.parse_args()
    out_path = benchinfo.output_path(args.out, f"cleavage_weight_{args.element}.json")
    t0 = time.time()
    recipe = RECIPE.get(args.element, {})
    train, test = snnp.datasets.mlearn(args.element, "both", cache_dir=args.data_dir)
    fit_set, val_set = train.split(0.1, seed=0)
    rows = []
    print("| cleavage weight | seed | test E (meV/atom) | test F (eV/Å) | validation E | "
          "validation F | surface energy (100) / (110) / (111) (J/m²) | largest drop (J/m²) |")
    print("|---|---|---|---|---|---|---|---|")
    for w in args.weights:
        for seed in args.seeds:
            model = snnp.presets(train.species, angular_cutoff=recipe.get("angular_cutoff"),
                                 seed=seed)["smeam"]
            loss = snnp.Loss(energy=1.0, forces=0.002, stress=1e-4, repulsion=1e-3, cleavage=w)
            start = time.perf_counter()
            model.fit(fit_set, val_set, loss=loss, max_iter=args.iterations, seed=seed,
                      e0=recipe.get("e0"), log=False)
            row = {"cleavage_weight": w, "seed": seed,
                   "fit_seconds": time.perf_counter() - start,
                   "test": errors(model, test), "validation": errors(model, val_set),
                   "cleavage": cleavages(model)}
            rows.append(row)
            c = row["cleavage"]
            print(f"| {w:g} | {seed} | {row['test']['energy_rmse_meV_per_atom']:.2f} | "
                  f"{row['test']['force_rmse_eV_per_A']:.3f} | "
                  f"{row['validation']['energy_rmse_meV_per_atom']:.2f} | "
                  f"{row['validation']['force_rmse_eV_per_A']:.3f} | "
                  + " / ".join(f"{v['surface_energy']:.2f}" for v in c.values()) + " | "
                  + f"{max(v['outward_drop'] for v in c.values()):.3f} |", flush=True)
    benchinfo.record(out_path, t0, benchmark=f"cleavage probes against test errors, {args.element}/smeam", recipe=recipe,
                     iterations=args.iterations, rows=rows)


if __name__ == "__main__":
    main()
