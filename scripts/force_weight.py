"""The energy-force trade-off of the loss: test errors of one preset against the force weight.

    python scripts/force_weight.py [--element Si] [--preset snnp_small]
                                   [--weights 0.0005 0.002 0.01 0.05] [--out benchmarks/results]

On the mlearn training set of ``--element`` (10% held out for validation, as ``snnp.ladder.scan``
splits it), rung 0 is fitted once with the zoo's loss (``Loss(energy=1, forces=0.002,
stress=1e-4)``), then ``--preset`` climbs from it once per force weight w, fitted with
``Loss(energy=1, forces=w, stress=1e-4)`` for ``--iterations`` L-BFGS iterations; for Si every
fit uses the zoo's recipe (angular filters ending at 3.5 A, e0 held at -0.80 eV).  For each w:
test and validation energy and force RMSE, and the fit's time.  Writes
``OUT/force_weight_<El>.json`` (machine, command) and prints the table of docs/training.md
("Weighting energies against forces").  About 15 minutes for Si on 2 cores.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402

#: the zoo's recipe for Si (models_zoo/README.md); other elements fit with the defaults
RECIPE = snnp.datasets.MLEARN_RECIPE


def errors(model, data):
    s = model.score(data)
    return {"energy_rmse_meV_per_atom": s["energy_meV_per_atom"]["rmse"],
            "force_rmse_eV_per_A": s["forces_eV_per_A"]["rmse"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--element", default="Si")
    p.add_argument("--preset", default="snnp_small")
    p.add_argument("--weights", nargs="+", type=float, default=[0.0005, 0.002, 0.01, 0.05])
    p.add_argument("--iterations", type=int, default=600)
    p.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results"))
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    args = p.parse_args()
    out_path = benchinfo.output_path(args.out, f"force_weight_{args.element}.json")
    t0 = time.time()
    recipe = RECIPE.get(args.element, {})
    train, test = snnp.datasets.mlearn(args.element, "both", cache_dir=args.data_dir)
    fit_set, val_set = train.split(0.1, seed=0)
    presets = snnp.presets(train.species, angular_cutoff=recipe.get("angular_cutoff"))
    base = snnp.Loss(energy=1.0, forces=0.002, stress=1e-4)
    rung0 = presets["smeam"].fit(fit_set, val_set, loss=base, max_iter=args.iterations,
                                 e0=recipe.get("e0"), log=False)
    rows = []
    print("| force weight | test E (meV/atom) | test F (eV/Å) | validation E | validation F |")
    print("|---|---|---|---|---|")
    for w in args.weights:
        model = snnp.ladder.climbed(rung0, args.preset, fit_set,
                                    angular_cutoff=recipe.get("angular_cutoff"))
        start = time.perf_counter()
        model.fit(fit_set, val_set, loss=snnp.Loss(energy=1.0, forces=w, stress=1e-4),
                  max_iter=args.iterations, e0=recipe.get("e0"), log=False)
        row = {"forces_weight": w, "fit_seconds": time.perf_counter() - start,
               "test": errors(model, test), "validation": errors(model, val_set)}
        rows.append(row)
        print(f"| {w:g} | {row['test']['energy_rmse_meV_per_atom']:.2f} | "
              f"{row['test']['force_rmse_eV_per_A']:.3f} | "
              f"{row['validation']['energy_rmse_meV_per_atom']:.2f} | "
              f"{row['validation']['force_rmse_eV_per_A']:.3f} |", flush=True)
    benchinfo.record(out_path, t0, benchmark=f"force weight against test errors, {args.element}/{args.preset}", recipe=recipe,
                     iterations=args.iterations, rows=rows)


if __name__ == "__main__":
    main()
