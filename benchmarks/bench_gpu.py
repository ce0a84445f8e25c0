"""GPU throughput of every ladder preset, beside the CPU path (2 threads) in the same run.

What it measures
----------------
Diamond Si cells of about 10^4, 10^5 and 10^6 atoms (cubic supercells, rattled 0.05 A) and every
preset of ``snnp.presets`` (cutoff 5 A; unfitted but with nonzero network weights, so no work is
skipped).  One MD-like step is energy + forces with the positions moved a little, the Verlet-skin
neighbour list (skin 1 A) reused, as a calculator sees it.  Per preset and size:

- ``gpu``: ``model.compute(atoms, device="gpu")`` -- host arrays in and out, as an ASE user gets;
- ``gpu_device_only``: the same step's device work alone (kernels + network, inputs already on
  the GPU), which is what a GPU-resident MD loop would pay;
- ``cpu_2threads``: the compiled CPU path with 2 OpenMP threads, same cells, same run.

Figures are atom-steps per second (best of the repeats) and the GPU/CPU ratio.  Before timing,
GPU and CPU energies and forces are compared on the smallest cell (relative difference
recorded).  The goal (issue 6): >= 100x the 2-thread CPU throughput at 10^6 atoms for the
s-NNP presets.

Results: a table on stdout and ``benchmarks/results/gpu.json`` (machine with GPU name, command,
date, settings, rows, goal).

Run (on a machine with CuPy and a CUDA device)
---
    python benchmarks/bench_gpu.py                         # 10^4, 10^5, 10^6 atoms
    python benchmarks/bench_gpu.py --sizes 1e4 1e5 1e6 4e6 --presets snnp_medium
    python benchmarks/bench_gpu.py --emulate --sizes 200 --cpu-steps 1   # smoke test, no GPU:
        # runs the script through tests/cupy_emulator.py; timings meaningless, nothing saved
"""
import argparse
import os
import sys
import time

import numpy as np
from ase.build import bulk

import snnp
from snnp.backends import gpu

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchinfo                                   # noqa: E402
from bench_ladder import activate                  # noqa: E402

GOAL_RATIO, GOAL_ATOMS = 100.0, 1_000_000
SNNP_PRESETS = ("snnp_small", "snnp_medium", "snnp_large")


def silicon(natoms, seed=1):
    """A cubic diamond-Si supercell with about ``natoms`` atoms (8 per cubic cell)."""
    n = max(1, int(round((natoms / 8) ** (1 / 3))))
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(n)
    atoms.rattle(0.05, seed=seed)
    return atoms


def time_steps(model, atoms, steps, repeats, device, threads=None):
    """Best seconds per step for energy + forces (snnp.ladder.time_model on ``device``)."""
    if threads:
        snnp.set_num_threads(threads)
    try:
        return snnp.ladder.time_model(model, atoms, steps, repeats, device) * len(atoms) * 1e-6
    finally:
        snnp.set_num_threads(0)


def time_device_only(model, atoms, steps, repeats):
    """Seconds per step of the device work alone: kernels and network on resident arrays."""
    cp = gpu._cupy()
    nl = snnp.new_neighbor_list(model.cutoff, skin=1.0, device="gpu")
    nl.update(atoms.positions, atoms.cell.array, atoms.pbc)
    dev = model._device_model()
    sp = cp.asarray(model._atoms_species(atoms).astype(np.int32))
    sync = getattr(getattr(cp.cuda, "Device", None)(), "synchronize", lambda: None)
    dev.compute(nl.d_positions, sp, nl)
    sync()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            dev.compute(nl.d_positions, sp, nl)
        sync()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def check(model, atoms):
    """Largest relative GPU-CPU difference of energy and forces on this cell."""
    cpu = model.compute(atoms, ("energy", "forces"))
    dev = model.compute(atoms, ("energy", "forces"), device="gpu")
    de = abs(dev["energy"] - cpu["energy"]) / max(1.0, abs(cpu["energy"]))
    df = np.abs(dev["forces"] - cpu["forces"]).max() / max(1.0, np.abs(cpu["forces"]).max())
    return max(de, df)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    parser.add_argument("--presets", nargs="+", default=list(snnp.models.LADDER))
    parser.add_argument("--gpu-steps", type=int, default=10)
    parser.add_argument("--cpu-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--emulate", action="store_true",
                        help="run through tests/cupy_emulator.py (no GPU; nothing is saved)")
    args = parser.parse_args()
    if args.emulate:
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
        from cupy_emulator import module
        gpu._cp = module()
    ok, device_name = gpu.available()
    if not ok:
        print(f"bench_gpu: no GPU here ({device_name}); nothing measured", file=sys.stderr)
        return 2
    started = time.time()
    machine = benchinfo.machine()
    rows, checks = [], {}
    for size in sorted(int(s) for s in args.sizes):
        atoms = silicon(size)
        models = {n: activate(m) for n, m in snnp.presets(["Si"], cutoff=5.0).items()
                  if n in args.presets}
        for name, model in models.items():
            if name not in checks:
                checks[name] = check(model, silicon(min(args.sizes)))
            t_gpu = time_steps(model, atoms, args.gpu_steps, args.repeats, "gpu")
            t_dev = time_device_only(model, atoms, args.gpu_steps, args.repeats)
            t_cpu = time_steps(model, atoms, args.cpu_steps, 1, "cpu", args.cpu_threads)
            n = len(atoms)
            rows.append({"preset": name, "natoms": n, "n_params": model.n_params,
                         "gpu_atom_steps_per_s": n / t_gpu,
                         "gpu_device_only_atom_steps_per_s": n / t_dev,
                         "cpu_atom_steps_per_s": n / t_cpu,
                         "gpu_over_cpu": t_cpu / t_gpu,
                         "gpu_device_only_over_cpu": t_cpu / t_dev,
                         "gpu_s_per_step": t_gpu, "cpu_s_per_step": t_cpu})
            r = rows[-1]
            print(f"{n:8d} atoms  {name:12s}  GPU {r['gpu_atom_steps_per_s']:10.3e}  "
                  f"(device only {r['gpu_device_only_atom_steps_per_s']:10.3e})  "
                  f"CPU x{args.cpu_threads} {r['cpu_atom_steps_per_s']:10.3e} atom-steps/s  "
                  f"GPU/CPU {r['gpu_over_cpu']:7.1f}x", flush=True)
    big = [r for r in rows if r["preset"] in SNNP_PRESETS and r["natoms"] >= 0.9 * GOAL_ATOMS]
    goal = {r["preset"]: r["gpu_over_cpu"] for r in big}
    doc = {"benchmark": "GPU vs CPU (2 threads) throughput, energy + forces per MD-like step",
           "command": benchinfo.command(), "date": benchinfo.now(),
           "machine": dict(machine, gpu=device_name),
           "settings": {"system": "diamond Si, cubic supercells, rattled 0.05 A",
                        "cutoff_A": 5.0, "skin_A": 1.0, "gpu_steps": args.gpu_steps,
                        "cpu_steps": args.cpu_steps, "repeats": args.repeats,
                        "cpu_threads": args.cpu_threads, "precision": "float64",
                        "statistic": "best repeat (CPU: one repeat)"},
           "gpu_vs_cpu_max_relative_difference": checks,
           "goal": {"min_gpu_over_cpu": GOAL_RATIO, "natoms": GOAL_ATOMS,
                    "presets": list(SNNP_PRESETS), "measured": goal,
                    "met": bool(goal) and all(v >= GOAL_RATIO for v in goal.values())},
           "elapsed_s": time.time() - started, "results": rows}
    print(f"GPU-CPU agreement (max relative difference): {checks}")
    print(f"goal (>= {GOAL_RATIO:.0f}x CPU at 10^6 atoms, s-NNP presets): {goal or 'not measured'}")
    if args.emulate:
        print("emulated run: nothing saved")
        return 0
    print("saved", benchinfo.save("gpu.json", doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
