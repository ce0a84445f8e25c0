"""Angular channel bases compared: s-NNPs climbed from the zoo's rung 0 with different angular
filter banks, fitted alike, scored on the test set and timed in one run.

    python scripts/angular_channels.py [--element Si] [--banks 16+8 16+12:2 16+24:3]
                                       [--seeds 0] [--max-iter 1800] [--widths 32 32]
                                       [--data-dir ../shared/data/mlearn]
                                       [--out benchmarks/results/angular_channels_Si.json]

A bank is ``KR+KA`` (K_a angular filters in the presets' basis: filter k with the k-th decay
length and Legendre degree k) or ``KR+KA:P`` (the channel basis of ``FilterBank.initial(...,
angular_legs=P)``: every leg pair of P decay lengths with every degree; docs/theory.md,
"Angular channels").  Each fit starts from ``models_zoo/<El>/smeam.json`` (its filters as
filters 1, a network distilled from its U: ``SNNP.from_spline_meam``), on the zoo's split (10%
of the training set held out for validation, seed 0), with the loss of the zoo's first
``snnp_large`` fits (energy 1, forces 0.002, stress 1e-4, repulsion probes 1e-4) and, for Si,
e0 held at the free atom (``snnp.datasets.MLEARN_RECIPE``), 1 thread.  The fitted models are
then timed in turn with the zoo's rung 0 on the zoo's timing cell (``snnp.ladder``), and the
JSON holds the machine, the command, every run's test and validation errors, fit seconds,
parameters and cost relative to rung 0.
"""
import argparse
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.io.atomic import atomic_write  # noqa: E402
from snnp.ladder import _timing_structure, error_fields, time_models  # noqa: E402

ZOO = os.path.join(HERE, "..", "models_zoo")
LOSS = dict(energy=1.0, forces=0.002, stress=1e-4, repulsion=1e-4)


def bank_spec(text):
    """'16+8' -> (16, 8, None); '16+12:2' -> (16, 12, 2)."""
    m = re.fullmatch(r"(\d+)\+(\d+)(?::(\d+))?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"a bank is KR+KA or KR+KA:LEGS (e.g. 16+12:2), got "
                                         f"{text!r}")
    kr, ka, legs = int(m[1]), int(m[2]), None if m[3] is None else int(m[3])
    try:
        snnp.filters.angular_channels(ka, legs)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None
    return kr, ka, legs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--element", default="Si")
    p.add_argument("--banks", nargs="+", type=bank_spec, default=None, metavar="KR+KA[:P]",
                   help="default: 16+8 16+12:2 16+24:3")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--max-iter", type=int, default=1800)
    p.add_argument("--widths", nargs="+", type=int, default=[32, 32])
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    p.add_argument("--out", default=None,
                   help="default: benchmarks/results/angular_channels_<El>.json")
    args = p.parse_args()
    banks = args.banks or [bank_spec(s) for s in ("16+8", "16+12:2", "16+24:3")]
    if args.max_iter < 1:
        p.error(f"--max-iter must be at least 1, got {args.max_iter}")
    start_path = os.path.join(ZOO, args.element, "smeam.json")
    if not os.path.exists(start_path):
        p.error(f"no zoo rung 0 for {args.element}: {start_path} does not exist")
    out_path = args.out or os.path.join(HERE, "..", "benchmarks", "results",
                                        f"angular_channels_{args.element}.json")
    out_path = benchinfo.output_path(os.path.dirname(os.path.abspath(out_path)),
                                     os.path.basename(out_path))
    snnp.set_num_threads(1)
    t0 = time.time()
    rung0 = snnp.load(start_path)
    train, test = snnp.datasets.mlearn(args.element, "both", cache_dir=args.data_dir)
    fit_set, val_set = train.split(0.1, seed=0)
    e0 = snnp.datasets.MLEARN_RECIPE.get(args.element, {}).get("e0")
    runs, models = [], []
    for kr, ka, legs in banks:
        for seed in args.seeds:
            start = time.perf_counter()
            model = snnp.SNNP.from_spline_meam(rung0, kr, ka, tuple(args.widths), seed=seed,
                                               data=fit_set, angular_legs=legs)
            model.fit(fit_set, val_set, loss=snnp.Loss(**LOSS), max_iter=args.max_iter,
                      initialise=False, seed=seed, e0=e0, core=None, log=False)
            row = {"bank": f"{kr}+{ka}" + ("" if legs is None else f":{legs}"), "seed": seed,
                   "n_params": model.n_params, "fit_seconds": time.perf_counter() - start,
                   **error_fields(model.score(test), model.score(val_set))}
            runs.append(row)
            models.append(model)
            print(f"{row['bank']} seed {seed}: test {row['energy_rmse_meV_per_atom']:.2f} / "
                  f"{row['force_rmse_eV_per_A']:.4f}, validation "
                  f"{row['validation_energy_rmse_meV_per_atom']:.2f} / "
                  f"{row['validation_force_rmse_eV_per_A']:.4f} "
                  f"({row['fit_seconds']:.0f} s)", flush=True)
    costs = time_models([rung0] + models, _timing_structure(test, 2000), repeats=5)
    for row, cost in zip(runs, costs[1:]):
        row["us_per_atom_step"], row["cost_vs_rung0"] = cost, cost / costs[0]
    print("\n| bank | seed | params | test E / F | validation E / F | cost x rung 0 |\n"
          "|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['bank']} | {r['seed']} | {r['n_params']} | "
              f"{r['energy_rmse_meV_per_atom']:.2f} / {r['force_rmse_eV_per_A']:.4f} | "
              f"{r['validation_energy_rmse_meV_per_atom']:.2f} / "
              f"{r['validation_force_rmse_eV_per_A']:.4f} | {r['cost_vs_rung0']:.2f} |")
    doc = {"command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(threads=1), "git": benchinfo.git_state(),
           "element": args.element, "start": f"models_zoo/{args.element}/smeam.json",
           "loss": LOSS, "e0": e0, "max_iter": args.max_iter, "widths": args.widths,
           "rung0_us_per_atom_step": costs[0], "runs": runs, "wall_s": time.time() - t0}
    with atomic_write(out_path) as fh:
        json.dump(doc, fh, indent=1)
    print(f"wrote {out_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
