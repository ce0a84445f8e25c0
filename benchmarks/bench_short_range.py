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
- with ``--lammps``, NVE in LAMMPS under ``pair_style snnp`` (1 rank, 1 thread, the plugin
  built first) without and with ``fix xg all pair 1 snnp extrapolation 1`` (grades every
  step);

and an ASE MD step through the calculator (``VelocityVerlet``, 1 fs, stress included as ASE
asks for it) with ``extrapolation=False`` and ``True``.  It reports each as us/atom/step and as
ratios: core / bare (the core's cost, against rung 0's bare step as the issue's 5% budget
reads), grade / core (the grade's cost).

Times on a shared machine drift by 10-20% from run to run, more than the costs measured here,
so ``--instructions`` also counts the instructions the C kernel driver executes per atom-step
for each variant (valgrind's callgrind, on 512-atom Si and 432-atom Mo cells): a repeatable
measure of the work the core and the grade add.

Run
---
    python benchmarks/bench_short_range.py --instructions --lammps   # about 15 minutes on 2 cores
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


def time_with(model, atoms, grade, steps, repeats=1):
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


#: small cells for the instruction counts (valgrind runs about 50x slower)
SMALL = {"Si": lambda: bulk("Si", "diamond", a=5.431, cubic=True).repeat(4),
         "Mo": lambda: bulk("Mo", "bcc", a=3.16, cubic=True).repeat(6),
         "Li": lambda: bulk("Li", "bcc", a=3.44, cubic=True).repeat(6)}
VARIANTS = ("bare", "core", "core_grade")


def _variant(model, variant):
    m = model.copy()
    if variant == "bare":
        m.core, m.extrapolation = None, None
    return m, variant == "core_grade"


def _ir_child(name, variant, steps):
    """Run under callgrind: ``steps`` + 1 kernel calls of one variant (see instructions())."""
    from snnp.backends import new_neighbor_list
    model, grade = _variant(snnp.load(name), variant)
    atoms = SMALL[name.split("/")[0]]()
    atoms.rattle(0.02, seed=1)
    props = ("energy", "forces", "extrapolation") if grade else ("energy", "forces")
    nl = new_neighbor_list(model.cutoff, skin=1.0)
    for _ in range(steps + 1):
        atoms.positions += 0.001
        model.compute(atoms, props, nl)


def instructions(name, variant, steps=3):
    """Instructions executed inside the C kernel driver (snnp_cpu_compute) per atom per step,
    counted by valgrind's callgrind: repeatable whatever else the machine is doing."""
    import re
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "--collect-atstart=no", "--toggle-collect=*snnp_cpu_compute*",
               sys.executable, os.path.abspath(__file__), "--ir-child", name, variant, str(steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        found = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
        if proc.returncode or not found:
            raise RuntimeError(f"callgrind failed for {name} {variant}: {proc.stderr[-500:]}")
    n = len(SMALL[name.split("/")[0]]())
    return int(found.group(1)) / (steps + 1) / n


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


def lammps_steps(model, atoms, plugin, steps, tmp):
    """us/atom/step of NVE in LAMMPS under ``pair_style snnp`` (1 rank, 1 thread), without and
    with the grade computed every step (``fix pair 1 snnp extrapolation 1``)."""
    from lammps_timing import time_pair_style
    path = os.path.join(tmp, "model.snnp")
    model.to_lammps_plugin(path)
    pair = ["pair_style snnp", f'pair_coeff * * "{path}" ' + " ".join(model.species)]
    out = {}
    for key, extra in (("lammps", []), ("lammps_grade", ["fix xg all pair 1 snnp extrapolation 1"])):
        out[key] = time_pair_style(pair + extra, atoms, list(model.species), steps, tmp,
                                   plugin=plugin)["us_per_atom_step"]
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--ir-child"]:
        return _ir_child(argv[1], argv[2], int(argv[3]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+",
                   default=[f"{el}/{n}" for el in ("Si", "Mo") for n in snnp.models.LADDER])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--instructions", action="store_true",
                   help="also count the kernel's instructions per atom-step under valgrind "
                        "(callgrind; 512/432-atom cells; about 15 s per model and variant)")
    p.add_argument("--lammps", action="store_true",
                   help="also time NVE in LAMMPS (pair_style snnp, 1 rank) with and without the "
                        "grade every step (fix pair 1 snnp extrapolation 1)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    plugin, tmp = None, None
    if args.lammps:
        import tempfile
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "lammps_plugin"))
        import build_plugin
        tmp = tempfile.mkdtemp(prefix="snnp-bench-")
        plugin = build_plugin.build(os.path.join(tmp, "plugin"))
    if args.quick:
        args.steps, args.repeats, args.models = 2, 1, args.models[:2]
    snnp.set_num_threads(args.threads)
    rows = []
    print(f"{'model':18s} {'bare':>7s} {'core':>7s} {'+grade':>7s} {'core/bare':>9s} "
          f"{'grade/core':>10s} {'ASE':>7s} {'ASE+grade':>9s} {'ratio':>6s}   (us/atom/step)"
          + ("   instructions: core/bare grade/core" if args.instructions else ""))
    for name in args.models:
        el = name.split("/")[0]
        atoms = CELLS[el]()
        atoms.rattle(0.02, seed=1)
        model = snnp.load(name)
        variants = {v: _variant(model, v) for v in VARIANTS}
        t = {v: np.inf for v in VARIANTS + ("ase_md", "ase_md_grade")
             + (("lammps", "lammps_grade") if args.lammps else ())}
        for _ in range(args.repeats):          # interleaved, so drift hits every variant alike
            for v, (m, grade) in variants.items():
                t[v] = min(t[v], time_with(m, atoms, grade, args.steps))
            t["ase_md"] = min(t["ase_md"], ase_step(model, atoms, False, args.steps, 1))
            t["ase_md_grade"] = min(t["ase_md_grade"], ase_step(model, atoms, True, args.steps, 1))
            if args.lammps:
                for k, v in lammps_steps(model, atoms, plugin, 5 * args.steps, tmp).items():
                    t[k] = min(t[k], v)
        row = {"model": name, "atoms": len(atoms), "grade_centres": model.extrapolation.n_centres,
               "us_per_atom_step": t,
               "core_over_bare": t["core"] / t["bare"], "grade_over_core": t["core_grade"] / t["core"],
               "ase_grade_over_ase": t["ase_md_grade"] / t["ase_md"]}
        extra = ""
        if args.lammps:
            row["lammps_grade_over_lammps"] = t["lammps_grade"] / t["lammps"]
            extra += f"   LAMMPS {t['lammps']:.3f} +grade {row['lammps_grade_over_lammps']:.3f}"
        if args.instructions:
            ir = {v: instructions(name, v) for v in VARIANTS}
            row["instructions_per_atom_step"] = ir
            row["instructions_core_over_bare"] = ir["core"] / ir["bare"]
            row["instructions_grade_over_core"] = ir["core_grade"] / ir["core"]
            extra = (f"   {row['instructions_core_over_bare']:.4f} "
                     f"{row['instructions_grade_over_core']:.4f}") + extra
        rows.append(row)
        print(f"{name:18s} {t['bare']:7.3f} {t['core']:7.3f} {t['core_grade']:7.3f} "
              f"{row['core_over_bare']:9.3f} {row['grade_over_core']:10.3f} {t['ase_md']:7.3f} "
              f"{t['ase_md_grade']:9.3f} {row['ase_grade_over_ase']:6.3f}" + extra, flush=True)
    rung0 = {r["model"].split("/")[0]: r for r in rows if r["model"].endswith("/smeam")}
    for r in rows:
        base = rung0.get(r["model"].split("/")[0])
        if base:
            r["core_cost_over_rung0_step"] = ((r["us_per_atom_step"]["core"]
                                               - r["us_per_atom_step"]["bare"])
                                              / base["us_per_atom_step"]["bare"])
            if "instructions_per_atom_step" in r and "instructions_per_atom_step" in base:
                ir = r["instructions_per_atom_step"]
                r["instructions_core_cost_over_rung0"] = ((ir["core"] - ir["bare"])
                                                          / base["instructions_per_atom_step"]["bare"])
    if not args.quick:
        path = benchinfo.save("short_range.json", {
            "benchmark": "bench_short_range", "command": benchinfo.command(),
            "date": benchinfo.now(), "machine": benchinfo.machine(), "threads": args.threads,
            "steps": args.steps, "repeats": args.repeats, "rows": rows})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
