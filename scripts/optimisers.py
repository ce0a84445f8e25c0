"""Which optimiser schedule reaches the lowest validation loss for the same work: L-BFGS, Adam,
or Adam then L-BFGS, on one preset climbed from one fitted rung 0.

    python scripts/optimisers.py [--element Si] [--preset snnp_small] [--passes 300]
                                 [--forces-weight 0.05] [--data-dir ../shared/data/mlearn]

On the mlearn training set of ``--element`` (10% held out for validation, as ``snnp.ladder.scan``
splits it), rung 0 is fitted once (``--passes`` L-BFGS iterations), then ``--preset`` climbs
from it and is fitted from that same start by each schedule, all with
``Loss(energy=1, forces=W, stress=1e-4)``:

- ``lbfgs``: ``--passes`` L-BFGS iterations (full batch, restarted every 50);
- ``adam``: ``--passes`` epochs of Adam (mini-batches of 16 structures), learning rate 2e-3
  (the default) and 1e-2;
- ``adam+lbfgs``: half the epochs of Adam (2e-3), then half the L-BFGS iterations.

One L-BFGS iteration and one Adam epoch each cost about one pass of the gradient over the
training set, so every schedule does about the same work; the seconds each took are recorded
too, and the validation loss each had reached at the time the fastest schedule finished.  For
Si every fit uses the zoo's recipe (angular filters ending at 3.5 A, e0 held at -0.80 eV).
Writes ``OUT/optimisers_<El>.json`` (machine, command) and prints the table of
docs/training.md ("Optimisers").
"""
import argparse
import copy
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.io.atomic import atomic_write  # noqa: E402

#: the zoo's recipe for Si (models_zoo/README.md); other elements fit with the defaults
RECIPE = snnp.datasets.MLEARN_RECIPE


def run(schedule, start, fit_set, val_set, loss, passes, e0):
    """Fit a copy of ``start`` by ``schedule``; its learning curve on one clock."""
    model = copy.deepcopy(start)
    steps = {"lbfgs": [("lbfgs", passes, 2e-3)],
             "adam": [("adam", passes, 2e-3)],
             "adam (lr 1e-2)": [("adam", passes, 1e-2)],
             "adam+lbfgs": [("adam", passes // 2, 2e-3), ("lbfgs", passes - passes // 2, 2e-3)]}
    curve, offset, first = [], 0.0, True
    for optimizer, n, lr in steps[schedule]:
        model.fit(fit_set, val_set, loss=loss, optimizer=optimizer, max_iter=n, epochs=n,
                  learning_rate=lr, initialise=first, e0=e0, log=False, extrapolation=0)
        first = False
        curve += [{**h, "seconds": h["seconds"] + offset} for h in model.provenance["history"]
                  if h.get("checkpoint")]
        offset = curve[-1]["seconds"]
    return model, curve


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--element", default="Si")
    p.add_argument("--preset", default="snnp_small")
    p.add_argument("--passes", type=int, default=300,
                   help="L-BFGS iterations / Adam epochs of each schedule (and of rung 0)")
    p.add_argument("--forces-weight", type=float, default=0.05)
    p.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results"))
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    args = p.parse_args()
    if args.passes < 2:
        p.error(f"--passes must be at least 2 (Adam then L-BFGS splits them), got {args.passes}")
    if not args.forces_weight >= 0:
        p.error(f"--forces-weight must be >= 0, got {args.forces_weight}")
    out_path = benchinfo.output_path(args.out, f"optimisers_{args.element}.json")
    t0 = time.time()
    recipe = RECIPE.get(args.element, {})
    train, test = snnp.datasets.mlearn(args.element, "both", cache_dir=args.data_dir)
    fit_set, val_set = train.split(0.1, seed=0)
    loss = snnp.Loss(energy=1.0, forces=args.forces_weight, stress=1e-4)
    rung0 = snnp.presets(train.species, angular_cutoff=recipe.get("angular_cutoff"))["smeam"]
    rung0.fit(fit_set, val_set, loss=loss, max_iter=args.passes, e0=recipe.get("e0"), log=False)
    start = snnp.ladder.climbed(rung0, args.preset, fit_set,
                                angular_cutoff=recipe.get("angular_cutoff"))
    rows = []
    for schedule in ("lbfgs", "adam", "adam (lr 1e-2)", "adam+lbfgs"):
        model, curve = run(schedule, start, fit_set, val_set, loss, args.passes, recipe.get("e0"))
        v, t = model.score(val_set), model.score(test)
        rows.append({"schedule": schedule, "seconds": curve[-1]["seconds"], "curve": curve,
                     "validation_objective": min(h["objective"] for h in curve),
                     "validation_energy_rmse_meV_per_atom": v["energy_meV_per_atom"]["rmse"],
                     "validation_force_rmse_eV_per_A": v["forces_eV_per_A"]["rmse"],
                     "test_energy_rmse_meV_per_atom": t["energy_meV_per_atom"]["rmse"],
                     "test_force_rmse_eV_per_A": t["forces_eV_per_A"]["rmse"]})
        print(f"{schedule}: {rows[-1]['seconds']:.0f} s", flush=True)
    common = min(r["seconds"] for r in rows)
    for r in rows:          # the best validation loss reached by the time the fastest ended
        r["validation_objective_at_common_time"] = min(
            [h["objective"] for h in r["curve"] if h["seconds"] <= common] or [float("nan")])
    print(f"\n| schedule | seconds | validation loss (at {common:.0f} s) | validation E | "
          "validation F | test E | test F |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['schedule']} | {r['seconds']:.0f} | {r['validation_objective']:.4g} "
              f"({r['validation_objective_at_common_time']:.4g}) "
              f"| {r['validation_energy_rmse_meV_per_atom']:.2f} "
              f"| {r['validation_force_rmse_eV_per_A']:.3f} "
              f"| {r['test_energy_rmse_meV_per_atom']:.2f} | {r['test_force_rmse_eV_per_A']:.3f} |")
    doc = {"command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(), "git": benchinfo.git_state(), "element": args.element, "preset": args.preset, "passes": args.passes,
           "forces_weight": args.forces_weight, "recipe": recipe, "rows": rows,
           "common_seconds": common, "total_seconds": time.time() - t0}
    with atomic_write(out_path) as fh:
        json.dump(doc, fh, indent=1)
    print(f"wrote {out_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
