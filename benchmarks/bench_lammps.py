"""LAMMPS MD cost of `pair_style snnp` (lammps_plugin/) for every preset, beside `meam/spline`.

What it measures
----------------
One 4 096-atom diamond Si cell (8x8x8 cubic cells, rattled 0.05 A), LAMMPS NVE (1 fs, started
at 1000 K, `units metal`, default neighbour settings) on 1 MPI rank and 1 thread, in-process
through the `lammps` python module.  Every preset of ``snnp.presets(["Si"], cutoff=5.0)``
(made nonzero as in bench_ladder.py) runs with `pair_style snnp`; in the same run the rung-0
preset, exported with ``model.to_lammps``, runs with LAMMPS's own `meam/spline` -- the same
potential, so `snnp` rung 0 vs `meam/spline` is a like-for-like kernel comparison (their
energies at step 0 are checked to agree).  A 10-step warm-up does the setup; the timed part is
``run STEPS pre no post no``; styles are interleaved and the fastest of the repeats is kept.

Goal (issue 7): rung 0 through the plugin within 1.2x of `meam/spline`.

Results: a table on stdout and ``benchmarks/results/lammps_plugin.json`` (machine, command,
date, per preset us/atom/step, ratio to meam/spline and to the plugin's rung 0, the goal).

Run
---
    python benchmarks/bench_lammps.py               # about a minute
    python benchmarks/bench_lammps.py --quick       # smoke test (no JSON overwrite)
    python benchmarks/bench_lammps.py --plugin path/to/snnpplugin.so   # skip the build
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
from ase.build import bulk

import snnp
from snnp.io.lammps_snnp import write_kernel_tables

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "lammps_plugin"))

import benchinfo  # noqa: E402
import build_plugin  # noqa: E402
import lammps_ref  # noqa: E402
from bench_ladder import activate  # noqa: E402
from lammps_timing import WARMUP_STEPS, time_pair_style  # noqa: E402

GOAL_RATIO = 1.2


def si_cell():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(8)
    atoms.rattle(0.05, seed=1)
    return atoms


def time_style(pair_cmds, atoms, elements, steps, tmp, plugin, temperature=1000.0, seed=12345):
    """(us/atom/step of ``run steps`` by the wall clock, potential energy at step 0, LAMMPS
    version) for one pair style (``lammps_timing.time_pair_style``)."""
    res = time_pair_style(pair_cmds, atoms, elements, steps, tmp, plugin, temperature, seed)
    return res["wall_us_per_atom_step"], res["pe0_eV"], res["lammps_version"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--plugin", help="an already built snnpplugin.so")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 5, 1
    if not lammps_ref.lammps_available():
        raise SystemExit(f"LAMMPS unavailable: {lammps_ref.LAMMPS_MISSING_REASON}")
    started = time.time()
    atoms = si_cell()
    ladder = {name: activate(m) for name, m in snnp.presets(["Si"], cutoff=args.cutoff).items()}
    with tempfile.TemporaryDirectory(prefix="bench_lammps_") as tmp:
        plugin = args.plugin or build_plugin.build(os.path.join(tmp, "plugin"))
        styles = {}
        meam = os.path.join(tmp, "rung0.meam.spline")
        ladder["smeam"].to_lammps(meam)
        styles["meam/spline"] = ["pair_style meam/spline", f'pair_coeff * * "{meam}" Si']
        for name, model in ladder.items():
            path = os.path.join(tmp, f"{name}.snnp")
            write_kernel_tables(model, path)
            styles[name] = ["pair_style snnp", f'pair_coeff * * "{path}" Si']
        best = {k: np.inf for k in styles}
        pe0, version = {}, None
        for r in range(args.repeats):
            for key, cmds in styles.items():
                us, pe0[key], version = time_style(cmds, atoms, ["Si"], args.steps, tmp, plugin)
                best[key] = min(best[key], us)
                print(f"  repeat {r + 1}: {key:12s} {us:7.3f} us/atom/step", flush=True)
    meam_us = best["meam/spline"]
    same = abs(pe0["smeam"] - pe0["meam/spline"]) / abs(pe0["meam/spline"])
    rows = []
    print(f"\nLAMMPS {version}, {len(atoms)} Si atoms, 1 rank, 1 thread, NVE, fastest of "
          f"{args.repeats} x {args.steps} steps")
    print(f"{'style':24s} {'params':>7s} {'us/atom/step':>13s} {'x meam/spline':>14s} "
          f"{'x rung 0':>9s}")
    print(f"{'meam/spline (rung 0)':24s} {ladder['smeam'].n_params:7d} {meam_us:13.3f} "
          f"{1.0:14.2f} {'':>9s}")
    for name, model in ladder.items():
        us = best[name]
        rows.append({"preset": name, "pair_style": "snnp", "class": type(model).__name__,
                     "n_params": model.n_params, "filters": [model.n_radial, model.n_angular],
                     "mlp": list(model.mlp.widths) if model.mlp else None,
                     "us_per_atom_step": us, "ratio_to_meam_spline": us / meam_us,
                     "ratio_to_rung0_plugin": us / best["smeam"]})
        print(f"{'snnp ' + name:24s} {model.n_params:7d} {us:13.3f} {us / meam_us:14.2f} "
              f"{us / best['smeam']:9.2f}")
    ratio0 = best["smeam"] / meam_us
    doc = {
        "benchmark": "LAMMPS MD cost of pair_style snnp (plugin) per preset beside meam/spline",
        "command": benchinfo.command(), "date": benchinfo.now(),
        "machine": benchinfo.machine(lammps_version=version),
        "settings": {"system": "diamond Si 8x8x8 cubic cells, rattled 0.05 A",
                     "natoms": len(atoms), "cutoff_A": args.cutoff, "steps": args.steps,
                     "warmup_steps": WARMUP_STEPS, "repeats": args.repeats,
                     "statistic": "fastest repeat, styles interleaved",
                     "lammps": "1 MPI rank, 1 thread, NVE 1 fs from 1000 K, units metal, "
                               "default neighbour settings (skin 2 A)",
                     "plugin_build": "lammps_plugin/build_plugin.py (CMake, -O3 "
                                     "-ffp-contract=off)"},
        "meam_spline_us_per_atom_step": meam_us,
        "rung0_energy_agreement_rel": same,
        "goal": {"preset": "smeam", "max_ratio_to_meam_spline": GOAL_RATIO,
                 "measured": ratio0, "met": ratio0 <= GOAL_RATIO},
        "elapsed_s": time.time() - started,
        "results": rows,
    }
    name = "lammps_plugin_quick.json" if args.quick else "lammps_plugin.json"
    benchinfo.save(name, doc)
    print(f"rung-0 energies snnp vs meam/spline agree to {same:.1e} (relative)")
    print(f"goal (rung 0 via plugin <= {GOAL_RATIO}x meam/spline): {ratio0:.2f} -> "
          f"{'met' if ratio0 <= GOAL_RATIO else 'NOT met'}; saved benchmarks/results/{name}")


if __name__ == "__main__":
    main()
