"""MD speed of snnp ``SplineMEAM`` against LAMMPS ``pair_style meam/spline``.

What it measures
----------------
Both codes run NVE molecular dynamics of the Si_1 spline-MEAM potential on
silicon diamond cells of 4 096 atoms (8x8x8 cubic cells) and 32 768 atoms
(16x16x16) at 1000 K with a 1 fs time step, and the wall time per atom per
step (us/atom/step) is reported.

* snnp is timed as a user runs it: ``ase.md.verlet.VelocityVerlet`` with the
  ASE calculator ``SplineMEAM.calculator(skin=1.0)``, positions changing every
  step.  A few warm-up steps (first neighbour build, allocations) are not
  timed; the timed steps include the periodic neighbour-list rebuilds (an
  atom moved more than skin/2, about every 30-50 steps here) and the ASE
  integrator overhead.  Inside the same run, ``calc.calculate`` and the
  neighbour-list update are timed separately (cheap wrappers around the
  calls), so the cost of the calculator alone ("calc") and of the ASE
  integrator and bookkeeping ("MD - calc") are visible.  snnp runs with 1 and
  with 2 OpenMP threads (``snnp.set_num_threads``).
* LAMMPS is timed with ``lammps_timing.time_lammps_md``: in-process, 1 MPI
  rank, 1 thread, default neighbour settings (metal units: skin 2 A, checked
  every step), 10 untimed warm-up steps, then ``run N pre no post no``.

Every timing is repeated (``--repeats``, each repeat starting again from the
same initial state, so it follows the same trajectory) and the fastest repeat
is kept; all repeats are saved.  The ratio snnp(1 thread)/LAMMPS and the
2-thread speed-up snnp(1)/snnp(2) of the whole MD step are compared with the
goals (ratio <= 1.0, speed-up >= 1.7).  The CPU time/wall time of each run
and the CPU used by other processes during the script are saved too: on a busy
machine the numbers, the 2-thread ones above all, are not trustworthy (a
warning is printed).

Results: a table on stdout and ``benchmarks/results/meam_spline.json``
(machine, command line, date, settings, per-cell timings, goals and whether
they are met).

Run
---
    python benchmarks/bench_meam_spline.py              # full run, ~2-3 min on 2 cores
    python benchmarks/bench_meam_spline.py --quick      # smoke test, writes meam_spline_quick.json
    python benchmarks/bench_meam_spline.py --steps-small 400 --steps-large 100 --repeats 5
    python benchmarks/bench_meam_spline.py --profile    # also cProfile a short 1-thread run

Default steps: 200 timed steps at 4 096 atoms and 70 at 32 768 atoms (each
window contains neighbour-list rebuilds), 3 repeats; on an idle 2-core
machine the whole script takes about 2-3 minutes (limit: 6).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import pstats
import shlex
import sys
import time

import numpy as np

import ase
from ase import units
from ase.build import bulk
from ase.md import velocitydistribution
from ase.md.verlet import VelocityVerlet

import snnp

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import benchinfo  # noqa: E402
from lammps_timing import time_lammps_md  # noqa: E402

POTENTIAL = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "meam_spline",
                                          "Si_1.meam.spline"))
RESULTS_DIR = os.path.join(HERE, "results")
ELEMENTS = ["Si"]
LATTICE_A = 5.431            # Angstrom, diamond Si
TEMPERATURE = 1000.0         # K
TIMESTEP_FS = 1.0
SEED = 12345
SKIN = 1.0                   # snnp Verlet skin, Angstrom
WARMUP_STEPS = 5             # untimed snnp MD steps before each timed window
THREADS = (1, 2)
#: environment variables that change how many threads the process uses (recorded only)
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS",
              "MKL_NUM_THREADS")

#: name -> repeats of the 8-atom cubic diamond cell
CELLS = {"small": 8, "large": 16}
DEFAULT_STEPS = {"small": 200, "large": 70}
QUICK_STEPS = {"small": 20, "large": 5}

GOALS = {"ratio_snnp_1thread_over_lammps_max": 1.0, "speedup_2threads_min": 1.7}


# -- set-up ---------------------------------------------------------------------------------

def potential_file():
    if not os.path.isfile(POTENTIAL):
        sys.exit(f"error: potential file not found: {POTENTIAL}\n"
                 "  (expected ../shared/data/meam_spline/Si_1.meam.spline next to the repository)")
    return POTENTIAL


def diamond_cell(repeat, temperature=TEMPERATURE, seed=SEED):
    """Si diamond supercell with Maxwell-Boltzmann velocities (fixed seed, zero total momentum)."""
    atoms = bulk("Si", "diamond", a=LATTICE_A, cubic=True).repeat(repeat)
    rng = np.random.default_rng(seed)
    if hasattr(velocitydistribution, "thermalize_momenta"):          # ASE >= 3.29
        velocitydistribution.thermalize_momenta(atoms, temperature, rng=rng)
    else:
        velocitydistribution.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature,
                                                          rng=rng)
    velocitydistribution.Stationary(atoms)
    return atoms


class CallTimer:
    """Replaces ``obj.name`` (a bound method) by a wrapper that adds up its wall time."""

    def __init__(self, obj, name):
        self.inner = getattr(obj, name)
        self.seconds = 0.0
        self.calls = 0
        setattr(obj, name, self)

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def per_atom_step(seconds, natoms, nsteps):
    return seconds * 1e6 / (natoms * nsteps)


# -- snnp -----------------------------------------------------------------------------------

def time_snnp_md_once(model, repeat, nsteps, threads):
    """One timed VelocityVerlet window after WARMUP_STEPS untimed steps, from a fresh state."""
    snnp.set_num_threads(threads)
    atoms = diamond_cell(repeat)
    calc = model.calculator(skin=SKIN)
    atoms.calc = calc
    md = VelocityVerlet(atoms, timestep=TIMESTEP_FS * units.fs)
    md.run(WARMUP_STEPS)

    builds0 = calc.neighbors.n_builds
    calc_timer = CallTimer(calc, "calculate")
    nl_timer = CallTimer(calc.neighbors, "update")
    cpu0, t0 = time.process_time(), time.perf_counter()
    md.run(nsteps)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0

    n = len(atoms)
    return {
        "seconds": wall,
        "md_us_per_atom_step": per_atom_step(wall, n, nsteps),
        "calc_us_per_atom_step": per_atom_step(calc_timer.seconds, n, nsteps),
        "neighbors_us_per_atom_step": per_atom_step(nl_timer.seconds, n, nsteps),
        "calc_calls": calc_timer.calls,
        "neighbor_rebuilds": calc.neighbors.n_builds - builds0,
        "cpu_over_wall": cpu / wall,
        "temperature_K_end": float(atoms.get_temperature()),
    }


def time_snnp_md(model, repeat, nsteps, threads, repeats):
    """Fastest of ``repeats`` identical windows, plus all their MD-loop timings."""
    runs = [time_snnp_md_once(model, repeat, nsteps, threads) for _ in range(repeats)]
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["threads"] = threads
    best["repeats_md_us_per_atom_step"] = [r["md_us_per_atom_step"] for r in runs]
    return best


# -- LAMMPS ---------------------------------------------------------------------------------

def time_lammps(pot, repeat, nsteps, repeats):
    """Fastest of ``repeats`` LAMMPS runs (1 rank, 1 thread), with CPU time/wall time."""
    snnp.set_num_threads(1)     # in case LAMMPS shares the OpenMP runtime of this process
    runs = []
    for _ in range(repeats):
        cpu0, t0 = time.process_time(), time.perf_counter()
        res = time_lammps_md(pot, ELEMENTS, diamond_cell(repeat), nsteps,
                             temperature=TEMPERATURE, timestep_fs=TIMESTEP_FS, seed=SEED)
        # whole call (set-up included); ~1 means a single busy thread
        res["cpu_over_wall_whole_call"] = (time.process_time() - cpu0) / (time.perf_counter() - t0)
        runs.append(res)
    best = dict(min(runs, key=lambda r: r["seconds"]))
    if best["nthreads"] != 1 or best["nprocs"] != 1:
        raise RuntimeError(f"LAMMPS ran with {best['nprocs']} ranks x {best['nthreads']} threads")
    best["repeats_us_per_atom_step"] = [r["us_per_atom_step"] for r in runs]
    return best


# -- profile --------------------------------------------------------------------------------

def profile_snnp(model, repeat, nsteps, top=15):
    """cProfile of a 1-thread MD window: the functions with the most own time."""
    snnp.set_num_threads(1)
    atoms = diamond_cell(repeat)
    atoms.calc = model.calculator(skin=SKIN)
    md = VelocityVerlet(atoms, timestep=TIMESTEP_FS * units.fs)
    md.run(WARMUP_STEPS)
    prof = cProfile.Profile()
    prof.runcall(md.run, nsteps)
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = stats.total_tt
    rows = []
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        where = func if filename == "~" else f"{os.path.basename(filename)}:{line}({func})"
        rows.append({"function": where, "calls": ncalls, "tottime_s": tottime,
                     "cumtime_s": cumtime, "tottime_fraction": tottime / total})
    rows.sort(key=lambda r: -r["tottime_s"])
    return {"natoms": len(atoms), "steps": nsteps, "total_s": total, "top_by_tottime": rows[:top]}


# -- report ---------------------------------------------------------------------------------

def machine_info():
    return benchinfo.machine(ase=ase.__version__,
                             environment={k: os.environ.get(k) for k in THREAD_ENV})


def system_busy_seconds():
    """CPU seconds all processes have been busy since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]                          # idle + iowait
    busy = sum(ticks[:8]) - idle                        # guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def print_table(cells):
    head = (f"{'atoms':>6} {'steps':>5} | {'snnp 1t MD':>10} {'(calc)':>7} {'snnp 2t MD':>10} "
            f"{'(calc)':>7} | {'LAMMPS':>7} | {'1t/LAMMPS':>9} {'2t speedup':>10}")
    print("us/atom/step; MD = whole VelocityVerlet step, calc = calculator.calculate only")
    print(head)
    print("-" * len(head))
    for c in cells:
        s1, s2 = c["snnp"]["1"], c["snnp"]["2"]
        print(f"{c['natoms']:>6} {c['steps']:>5} | {s1['md_us_per_atom_step']:>10.3f} "
              f"{s1['calc_us_per_atom_step']:>7.3f} {s2['md_us_per_atom_step']:>10.3f} "
              f"{s2['calc_us_per_atom_step']:>7.3f} | {c['lammps_us_per_atom_step']:>7.3f} | "
              f"{c['ratio_snnp_1thread_over_lammps']:>9.3f} {c['speedup_2threads']:>9.2f}x")
    print(f"goals: 1t/LAMMPS <= {GOALS['ratio_snnp_1thread_over_lammps_max']}, "
          f"2t speedup >= {GOALS['speedup_2threads_min']}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps-small", type=int, help="timed steps, 4096 atoms "
                   f"(default {DEFAULT_STEPS['small']}, --quick {QUICK_STEPS['small']})")
    p.add_argument("--steps-large", type=int, help="timed steps, 32768 atoms "
                   f"(default {DEFAULT_STEPS['large']}, --quick {QUICK_STEPS['large']})")
    p.add_argument("--repeats", type=int, help="repeats per timing, fastest kept "
                   "(default 3, --quick 1)")
    p.add_argument("--quick", action="store_true", help="few steps, one repeat (smoke test)")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile a 1-thread MD window of the 4096-atom cell")
    p.add_argument("--output", help="JSON file (default results/meam_spline.json, "
                   "--quick: results/meam_spline_quick.json)")
    args = p.parse_args(argv)
    steps = QUICK_STEPS if args.quick else DEFAULT_STEPS
    args.steps = {"small": args.steps_small or steps["small"],
                  "large": args.steps_large or steps["large"]}
    args.repeats = args.repeats or (1 if args.quick else 3)
    if min(args.steps.values()) < 1 or args.repeats < 1:
        p.error("steps and repeats must be positive")
    if args.output is None:
        name = "meam_spline_quick.json" if args.quick else "meam_spline.json"
        args.output = os.path.join(RESULTS_DIR, name)
    return args


def main(argv=None):
    args = parse_args(argv)
    pot = potential_file()
    model = snnp.SplineMEAM.from_lammps(pot)
    machine = machine_info()         # before set_num_threads: records the default thread count
    load_before = os.getloadavg()
    busy_before, cpu_before = system_busy_seconds(), time.process_time()
    t_start = time.perf_counter()

    cells = []
    for name, repeat in CELLS.items():
        nsteps = args.steps[name]
        natoms = 8 * repeat ** 3
        print(f"{natoms} atoms, {nsteps} steps x {args.repeats} repeats ...", flush=True)
        snnp_runs = {str(t): time_snnp_md(model, repeat, nsteps, t, args.repeats)
                     for t in THREADS}
        lmp = time_lammps(pot, repeat, nsteps, args.repeats)
        s1, s2 = snnp_runs["1"], snnp_runs["2"]
        ratio = s1["md_us_per_atom_step"] / lmp["us_per_atom_step"]
        speedup = s1["md_us_per_atom_step"] / s2["md_us_per_atom_step"]
        cells.append({
            "natoms": natoms,
            "steps": nsteps,
            "snnp_1thread_us_per_atom_step": s1["md_us_per_atom_step"],
            "snnp_2threads_us_per_atom_step": s2["md_us_per_atom_step"],
            "snnp_1thread_calc_us_per_atom_step": s1["calc_us_per_atom_step"],
            "snnp_2threads_calc_us_per_atom_step": s2["calc_us_per_atom_step"],
            "lammps_us_per_atom_step": lmp["us_per_atom_step"],
            "ratio_snnp_1thread_over_lammps": ratio,
            "speedup_2threads": speedup,
            "speedup_2threads_calc_only": s1["calc_us_per_atom_step"] / s2["calc_us_per_atom_step"],
            "goal_ratio_met": ratio <= GOALS["ratio_snnp_1thread_over_lammps_max"],
            "goal_speedup_met": speedup >= GOALS["speedup_2threads_min"],
            "snnp": snnp_runs,
            "lammps": lmp,
        })

    profile = profile_snnp(model, CELLS["small"], min(args.steps["small"], 100)) \
        if args.profile else None
    elapsed = time.perf_counter() - t_start
    load_after = os.getloadavg()
    others = None      # CPU cores used on average by other processes while this script ran
    if busy_before is not None:
        own = time.process_time() - cpu_before
        others = max(0.0, (system_busy_seconds() - busy_before - own) / elapsed)

    print_table(cells)
    if profile:
        print(f"\ncProfile, {profile['natoms']} atoms, {profile['steps']} steps, 1 thread "
              f"({profile['total_s']:.2f} s): own time (the compiled kernel is not seen by "
              "cProfile; its time is counted in its Python caller)")
        for r in profile["top_by_tottime"][:10]:
            print(f"  {100 * r['tottime_fraction']:5.1f}%  {r['calls']:>7}  {r['function']}")

    result = {
        "benchmark": "snnp SplineMEAM (ASE VelocityVerlet) vs LAMMPS meam/spline NVE",
        "command": shlex.join([os.path.basename(sys.executable)] + sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "other_processes_cpu_cores": others,
        "elapsed_s": elapsed,
        "settings": {
            "potential": os.path.relpath(pot, os.path.dirname(HERE)),
            "structure": f"Si diamond, a={LATTICE_A} A, cubic cell repeated n x n x n",
            "temperature_K": TEMPERATURE, "timestep_fs": TIMESTEP_FS, "seed": SEED,
            "snnp_skin_A": SKIN, "snnp_warmup_steps": WARMUP_STEPS,
            "lammps": "1 MPI rank, 1 thread, default neighbor settings, 10 warm-up steps",
            "repeats": args.repeats, "statistic": "fastest repeat",
            "threads": list(THREADS),
        },
        "goals": GOALS,
        "goals_met": {
            "ratio": all(c["goal_ratio_met"] for c in cells),
            "speedup": all(c["goal_speedup_met"] for c in cells),
        },
        "cells": cells,
        "profile": profile,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    if others is not None and others > 0.1:
        print(f"\nwarning: other processes used {others:.2f} CPU cores on average during the "
              "run; the timings (2-thread ones above all) are distorted", file=sys.stderr)
    print(f"\nsaved {args.output} ({elapsed:.0f} s)")
    return result


if __name__ == "__main__":
    main()
