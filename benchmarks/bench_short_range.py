"""Cost of the short-range rule (ZBL core + clamp) and of the extrapolation grade, per MD step.

What it measures
----------------
For each zoo model named (default: every Si and Mo rung), on a 4 096-atom cell of its crystal
(diamond Si 8x8x8, bcc Mo 16x16x8, rattled), in one run and with the same neighbour-list reuse
as MD (``snnp.ladder.time_model``, best of repeats, energy + forces):

- ``bare``: the model with its core removed (``model.core = None``) and no grade;
- ``core``: the model as the zoo ships it (core and clamp on), no grade;
- ``core+grade``: also the per-atom extrapolation grade every step (``properties`` include
  "extrapolation", as ``SNNPCalculator(extrapolation=True)`` asks);

and an ASE MD step through the calculator (``VelocityVerlet``, 1 fs, stress included as ASE
asks for it) with ``extrapolation=False`` and ``True``.  It reports each as us/atom/step and as
ratios: core / bare (the core's cost, against rung 0's bare step as the issue's 5% budget
reads), grade / core (the grade's cost).

Run
---
    python benchmarks/bench_short_range.py               # about 2 minutes on 2 cores
    python benchmarks/bench_short_range.py --quick       # smoke test, no JSON written
Results: a table on stdout and ``benchmarks/results/short_range.json``.
"""
import argparse
import os
import sys
import time

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.ladder import time_model  # noqa: E402

CELLS = {"Si": lambda: bulk("Si", "diamond", a=5.431, cubic=True).repeat(8),
         "Mo": lambda: bulk("Mo", "bcc", a=3.16, cubic=True).repeat((16, 16, 8)),
         "Li": lambda: bulk("Li", "bcc", a=3.44, cubic=True).repeat((16, 16, 8))}


def time_with(model, atoms, grade, steps, repeats):
    """us/atom/step of energy + forces (+ grades), neighbour list reused as in MD."""
    from snnp.backends import new_neighbor_list
    props = ("energy", "forces", "extrapolation") if grade else ("energy", "forces")
    rng = np.random.default_rng(0)
    kicks = 0.005 * rng.normal(size=(steps,) + atoms.positions.shape)
    best = np.inf
    for _ in range(repeats):
        a = atoms.copy()
        nl = new_neighbor_list(model.cutoff, skin=1.0)
        model.compute(a, props, nl)
        start = time.perf_counter()
        for k in range(steps):
            a.positions += kicks[k]
            model.compute(a, props, nl)
        best = min(best, (time.perf_counter() - start) / steps / len(a) * 1e6)
    return best


def ase_step(model, atoms, extrapolation, steps, repeats):
    best = np.inf
    for _ in range(repeats):
        a = atoms.copy()
        a.calc = model.calculator(extrapolation=extrapolation)
        dyn = VelocityVerlet(a, units.fs)
        dyn.run(1)
        start = time.perf_counter()
        dyn.run(steps)
        best = min(best, (time.perf_counter() - start) / steps / len(a) * 1e6)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+",
                   default=[f"{el}/{n}" for el in ("Si", "Mo") for n in snnp.models.LADDER])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.models = 2, 1, args.models[:2]
    snnp.set_num_threads(args.threads)
    rows = []
    print(f"{'model':18s} {'bare':>7s} {'core':>7s} {'+grade':>7s} {'core/bare':>9s} "
          f"{'grade/core':>10s} {'ASE':>7s} {'ASE+grade':>9s} {'ratio':>6s}   (us/atom/step)")
    for name in args.models:
        el = name.split("/")[0]
        atoms = CELLS[el]()
        atoms.rattle(0.02, seed=1)
        model = snnp.load(name)
        bare = model.copy()
        bare.core, bare.extrapolation = None, None
        t_bare = time_with(bare, atoms, False, args.steps, args.repeats)
        t_core = time_with(model, atoms, False, args.steps, args.repeats)
        t_grade = time_with(model, atoms, True, args.steps, args.repeats)
        t_ase = ase_step(model, atoms, False, args.steps, args.repeats)
        t_ase_grade = ase_step(model, atoms, True, args.steps, args.repeats)
        row = {"model": name, "atoms": len(atoms), "grade_centres": model.extrapolation.n_centres,
               "us_per_atom_step": {"bare": t_bare, "core": t_core, "core_grade": t_grade,
                                    "ase_md": t_ase, "ase_md_grade": t_ase_grade},
               "core_over_bare": t_core / t_bare, "grade_over_core": t_grade / t_core,
               "ase_grade_over_ase": t_ase_grade / t_ase}
        rows.append(row)
        print(f"{name:18s} {t_bare:7.3f} {t_core:7.3f} {t_grade:7.3f} {row['core_over_bare']:9.3f} "
              f"{row['grade_over_core']:10.3f} {t_ase:7.3f} {t_ase_grade:9.3f} "
              f"{row['ase_grade_over_ase']:6.3f}", flush=True)
    rung0 = {r["model"].split("/")[0]: r["us_per_atom_step"]["bare"] for r in rows
             if r["model"].endswith("/smeam")}
    for r in rows:
        base = rung0.get(r["model"].split("/")[0])
        if base:
            r["core_cost_over_rung0_step"] = (r["us_per_atom_step"]["core"]
                                              - r["us_per_atom_step"]["bare"]) / base
    if not args.quick:
        path = benchinfo.save("short_range.json", {
            "benchmark": "bench_short_range", "command": benchinfo.command(),
            "date": benchinfo.now(), "machine": benchinfo.machine(), "threads": args.threads,
            "steps": args.steps, "repeats": args.repeats, "rows": rows})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
