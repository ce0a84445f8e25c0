"""Fit-to-fit scatter: the same ladder scan with different initial parameters.

    python scripts/seed_scatter.py [--element Mo] [--presets smeam smeam_nn snnp_small]
                                   [--seeds 0 1 2] [--max-iter 600]
                                   [--data-dir ../shared/data/mlearn]

On the mlearn training set of ``--element``, split as the zoo's scans split it (10% held out
for validation, seed 0, the same split for every run), ``snnp.ladder.scan`` fits ``--presets``
(climbing from rung 0, the zoo's loss and, for Si, its recipe) once per ``--seeds`` value:
the seed sets the presets' initial parameters only.  Prints, per preset, the mean and the
standard deviation over the seeds of the test and validation energy and force RMSE, and
writes ``OUT/seed_scatter_<El>.json`` (machine, command, every run's rows).  A difference
between two rungs smaller than about two standard deviations is within fit-to-fit scatter.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.io.atomic import atomic_write  # noqa: E402

#: the zoo's recipe for Si (models_zoo/README.md); other elements fit with the defaults
RECIPE = snnp.datasets.MLEARN_RECIPE
KEYS = ("energy_rmse_meV_per_atom", "force_rmse_eV_per_A",
        "validation_energy_rmse_meV_per_atom", "validation_force_rmse_eV_per_A")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--element", default="Mo")
    p.add_argument("--presets", nargs="+", default=["smeam", "smeam_nn", "snnp_small"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--max-iter", type=int, default=600,
                   help="iterations of rung 0; the others scale it (snnp.ladder.EFFORT)")
    p.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results"))
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    args = p.parse_args()
    if args.max_iter < 1:
        p.error(f"--max-iter must be at least 1, got {args.max_iter}")
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds must differ, got {args.seeds}")
    unknown = [n for n in args.presets if n not in snnp.models.LADDER]
    if unknown:
        p.error(f"unknown presets {unknown}; known: {list(snnp.models.LADDER)}")
    out_path = benchinfo.output_path(args.out, f"seed_scatter_{args.element}.json")
    t0 = time.time()
    recipe = RECIPE.get(args.element, {})
    train, test = snnp.datasets.mlearn(args.element, "both", cache_dir=args.data_dir)
    fit_set, val_set = train.split(0.1, seed=0)
    runs = {}
    for seed in args.seeds:
        rows = snnp.ladder.scan(fit_set, test, presets=args.presets, validation_set=val_set,
                                max_iter=args.max_iter, seed=seed, timing_atoms=1,
                                loss=snnp.Loss(energy=1.0, forces=0.002, stress=1e-4),
                                angular_cutoff=recipe.get("angular_cutoff"), e0=recipe.get("e0"),
                                log=False)
        runs[seed] = [{k: r[k] for k in ("preset", "fit_seconds") + KEYS} for r in rows]
        print(f"seed {seed}: " + ", ".join(f"{r['preset']} {r['energy_rmse_meV_per_atom']:.2f}/"
                                           f"{r['force_rmse_eV_per_A']:.3f}" for r in rows),
              flush=True)
    summary = []
    print("\n| preset | test E | test F | validation E | validation F |  (mean ± std over "
          f"{len(args.seeds)} seeds)\n|---|---|---|---|---|")
    for k, name in enumerate(args.presets):
        values = {key: np.array([runs[s][k][key] for s in args.seeds]) for key in KEYS}
        row = {"preset": name, **{key: {"mean": float(v.mean()), "std": float(v.std(ddof=1))
                                        if len(v) > 1 else 0.0} for key, v in values.items()}}
        summary.append(row)
        print(f"| {name} | " + " | ".join(f"{row[key]['mean']:.3g} ± {row[key]['std']:.2g}"
                                          for key in KEYS) + " |", flush=True)
    doc = {"command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(), "git": benchinfo.git_state(),
           "element": args.element, "recipe": recipe, "max_iter": args.max_iter,
           "seeds": args.seeds, "summary": summary, "runs": runs, "wall_s": time.time() - t0}
    with atomic_write(out_path) as fh:
        json.dump(doc, fh, indent=1)
    print(f"wrote {out_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
