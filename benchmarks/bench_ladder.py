"""Cost of every ladder preset, beside LAMMPS ``meam/spline``, on the same cells in one run.

What it measures
----------------
For 4 096-atom cells of diamond Si (8x8x8 cubic cells) and bcc Mo (16x16x8), every preset of
``snnp.presets`` (same cutoff for all) is timed for energy + forces as an MD step sees it:
positions move a little every step, the calculator's Verlet-skin neighbour list is reused and
rebuilt when needed.  Each preset runs with 1 and 2 threads; the fastest of several repeats is
kept.  In the same run, LAMMPS ``meam/spline`` (1 MPI rank, 1 thread) runs NVE with the
rung-0 preset exported to a ``meam/spline`` file (same functional form and cutoff), so the
ladder's costs can be read against LAMMPS as well as against rung 0.

Every preset is timed a second time with its angular filters ending at ``--angular-cutoff``
(3.5 A, inside Si's first neighbour shell as in Lenosky's Si meam/spline and the zoo's Si
models; rows named ``snnp_medium@3.5A``): pairs beyond it enter no triplet, which is where
most of the time goes.

Preset parameters are unfitted but made nonzero (random MLP output layers) so no work is
skipped; cost does not depend on parameter values otherwise.

Results: a table on stdout and ``benchmarks/results/ladder.json`` (machine, command, date, per
system and preset: us/atom/step for 1 and 2 threads, ratio to rung 0 and to LAMMPS, and
whether the goal -- the snnp_medium s-NNP (12+4 filters, 16x16 MLP) at <= 3x rung 0 -- is met).

Run
---
    python benchmarks/bench_ladder.py            # about 3 minutes on 2 idle cores
    python benchmarks/bench_ladder.py --quick    # smoke test (fewer steps, no JSON overwrite)
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
from ase.build import bulk

import snnp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchinfo                                   # noqa: E402
GOAL_PRESET, GOAL_RATIO = "snnp_medium", 3.0


def systems():
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(8)
    mo = bulk("Mo", "bcc", a=3.147, cubic=True).repeat((16, 16, 8))
    for atoms in (si, mo):
        atoms.rattle(0.05, seed=1)
    return {"Si": si, "Mo": mo}


def activate(model, seed=0):
    """Give an unfitted preset nonzero parameters so every branch of the kernel runs."""
    rng = np.random.default_rng(seed)
    if model.mlp is not None:
        model.mlp.weights = [[(W + 0.1 * rng.normal(size=W.shape), b) for W, b in layers]
                             for layers in model.mlp.weights]
    if model.U is not None:
        for s in model.U:
            s.values[:] = -np.linspace(0.0, 1.0, s.n_knots)
    model.invalidate()
    return model


def time_model(model, atoms, steps, threads, repeats):
    """us/atom/step with ``threads`` OpenMP threads (snnp.ladder.time_model: energy + forces,
    atoms moving each step, Verlet-skin list reused, best of the repeats)."""
    snnp.set_num_threads(threads)
    try:
        return snnp.ladder.time_model(model, atoms, steps=steps, repeats=repeats)
    finally:
        snnp.set_num_threads(0)


def time_lammps(model, atoms, steps):
    try:
        from lammps_timing import time_lammps_md
        import lammps_ref
    except ImportError as exc:
        return None, f"LAMMPS timing unavailable: {exc}"
    if not lammps_ref.lammps_available():
        return None, lammps_ref.LAMMPS_MISSING_REASON
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rung0.meam.spline")
        model.to_lammps(path)
        res = time_lammps_md(path, model.species, atoms, steps)
    return res["us_per_atom_step"], res.get("lammps_version")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--angular-cutoff", type=float, default=3.5,
                        help="also time every preset with angular filters ending here (0: skip)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 3, 1
    started = time.time()
    rows = []
    for label, atoms in systems().items():
        ladder = {name: activate(m) for name, m in
                  snnp.presets([label], cutoff=args.cutoff).items()}
        if args.angular_cutoff:       # every preset again, angular filters ending earlier
            short = snnp.presets([label], cutoff=args.cutoff, angular_cutoff=args.angular_cutoff)
            ladder.update({f"{name}@{args.angular_cutoff:g}A": activate(m)
                           for name, m in short.items()})
        lmp_us, lmp_info = time_lammps(ladder["smeam"], atoms, max(args.steps * 5, 20))
        base = None
        for name, model in ladder.items():
            t1 = time_model(model, atoms, args.steps, 1, args.repeats)
            t2 = time_model(model, atoms, args.steps, 2, args.repeats)
            base = base or t1
            rows.append({"system": label, "natoms": len(atoms), "preset": name,
                         "class": type(model).__name__, "n_params": model.n_params,
                         "filters": [model.n_radial, model.n_angular],
                         "angular_cutoff_A": (model.filters.f[0][0].x1
                                              if model.filters.f is not None else None),
                         "mlp": list(model.mlp.widths) if model.mlp else None,
                         "us_per_atom_step_1thread": t1, "us_per_atom_step_2threads": t2,
                         "ratio_to_rung0": t1 / base, "speedup_2threads": t1 / t2,
                         "ratio_to_lammps_meam_spline": t1 / lmp_us if lmp_us else None,
                         "lammps_meam_spline_us_per_atom_step": lmp_us})
            r = rows[-1]
            lam = f"{r['ratio_to_lammps_meam_spline']:.2f}" if lmp_us else "n/a"
            print(f"{label:3s} {name:12s} {model.n_params:6d} params  1 thr {t1:7.2f}  "
                  f"2 thr {t2:7.2f} us/atom/step  x{r['ratio_to_rung0']:.2f} rung0  "
                  f"x{lam} LAMMPS", flush=True)
        print(f"{label:3s} LAMMPS meam/spline (rung-0 preset exported): "
              f"{lmp_us if lmp_us else lmp_info} us/atom/step", flush=True)
    goal = {r["system"]: r["ratio_to_rung0"] for r in rows if r["preset"] == GOAL_PRESET}
    doc = {
        "benchmark": "cost of every ladder preset (energy + forces per MD step)",
        "command": benchinfo.command(), "date": benchinfo.now(), "machine": benchinfo.machine(),
        "settings": {"cutoff_A": args.cutoff, "angular_cutoff_A": args.angular_cutoff, "steps": args.steps, "repeats": args.repeats,
                     "statistic": "fastest repeat", "skin_A": 1.0,
                     "lammps": "1 MPI rank, 1 thread, NVE, rung-0 preset exported"},
        "goal": {"preset": GOAL_PRESET, "max_ratio_to_rung0": GOAL_RATIO,
                 "measured": goal, "met": all(v <= GOAL_RATIO for v in goal.values())},
        "elapsed_s": time.time() - started,
        "results": rows,
    }
    name = "ladder_quick.json" if args.quick else "ladder.json"
    benchinfo.save(name, doc)
    print(f"goal ({GOAL_PRESET} <= {GOAL_RATIO}x rung 0): {goal} -> "
          f"{'met' if doc['goal']['met'] else 'NOT met'}; saved benchmarks/results/{name}")


if __name__ == "__main__":
    main()
