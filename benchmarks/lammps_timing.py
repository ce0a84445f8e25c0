"""Timing of LAMMPS ``pair_style meam/spline`` molecular dynamics (reference speed).

``time_lammps_md(potential_file, elements, atoms, nsteps, temperature=1000.0,
timestep_fs=1.0, seed=12345) -> dict`` runs NVE dynamics in-process through
the ``lammps`` python module on one MPI rank with one OpenMP thread
(``units metal``, ``atom_style atomic``, ``velocity create``, ``fix nve``,
default neighbour settings, sparse thermo output).  A 10-step warm-up run does
the setup (neighbour lists, ghost atoms); only the following ``run nsteps pre
no post no`` is timed (wall clock).  Returns ``seconds``, ``us_per_atom_step``,
``natoms``, ``nsteps``, ``lammps_version`` (plus ``nthreads``, ``nprocs``).

The system is built with the data-file writer of ``tests/lammps_ref.py``.
Run as a script to time a 4096-atom Si_1 diamond cell.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_TESTS = os.path.normpath(os.path.join(_HERE, "..", "tests"))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import lammps_ref  # noqa: E402

WARMUP_STEPS = 10
LOOP_RE = re.compile(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")


def time_pair_style(pair_cmds, atoms, elements, steps, tmp, plugin=None, temperature=1000.0,
                    seed=12345) -> dict:
    """NVE molecular dynamics of ``atoms`` under the pair style set by ``pair_cmds`` (LAMMPS
    commands), one rank, one thread: a ``WARMUP_STEPS`` warm-up, then ``run steps pre no post
    no`` timed.  ``plugin``: the pair_style snnp plugin to load.  Returns us_per_atom_step
    (LAMMPS's own loop time), wall_us_per_atom_step (the wall clock around the run), pe0_eV
    (the energy at step 0), etotal_end_eV, temperature_end_K, nprocs, nthreads and
    lammps_version."""
    log = os.path.join(tmp, "log.lammps")
    lmp = lammps_ref.new_lammps(["-screen", "none", "-log", log, "-nocite"])
    try:
        if plugin and not lmp.has_style("pair", "snnp"):
            lmp.command(f'plugin load "{plugin}"')
        geom = lammps_ref.lammps_geometry(atoms)
        data = os.path.join(tmp, "atoms.data")
        lammps_ref.write_lammps_data(data, geom, lammps_ref.atom_types(atoms, elements),
                                     lammps_ref.type_masses(elements))
        lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                           f"boundary {geom['boundary']}", f'read_data "{data}"'] + pair_cmds)
        if int(lmp.extract_setting("nthreads")) != 1:
            lmp.command("package omp 1")
        lmp.commands_list([
            "timestep 0.001",
            f"velocity all create {temperature!r} {seed} mom yes rot yes dist gaussian",
            "fix integrate all nve", "thermo_style custom step temp pe etotal", "thermo 0",
            "run 0"])
        pe0 = float(lmp.get_thermo("pe"))
        lmp.command(f"run {WARMUP_STEPS}")
        t0 = time.perf_counter()
        lmp.command(f"run {steps} pre no post no")
        wall = time.perf_counter() - t0
        etot = float(lmp.get_thermo("etotal"))
        temp = float(lmp.get_thermo("temp"))
        nprocs = int(lmp.extract_setting("world_size"))
        version = int(lmp.version())
        lmp.command("log none")
    finally:
        lmp.close()
    with open(log) as fh:
        loops = LOOP_RE.findall(fh.read())
    loop_s, procs, nsteps, natoms = loops[-1]
    if int(nsteps) != steps or int(natoms) != len(atoms) or int(procs) != 1:
        raise RuntimeError(f"unexpected LAMMPS loop line {loops[-1]}")
    n = len(atoms) * steps
    return {"us_per_atom_step": float(loop_s) * 1e6 / n, "wall_us_per_atom_step": wall * 1e6 / n,
            "pe0_eV": pe0, "etotal_end_eV": etot, "temperature_end_K": temp,
            "nprocs": nprocs, "nthreads": 1, "lammps_version": version}


def time_lammps_md(potential_file, elements, atoms, nsteps, temperature=1000.0,
                   timestep_fs=1.0, seed=12345) -> dict:
    """Wall-clock time of ``nsteps`` NVE steps of LAMMPS meam/spline."""
    if not lammps_ref.lammps_available():
        raise RuntimeError(lammps_ref.LAMMPS_MISSING_REASON)
    nsteps = int(nsteps)
    lmp = lammps_ref.new_lammps()
    try:
        with tempfile.TemporaryDirectory(prefix="lammps_timing_") as tmp:
            lammps_ref.setup_lammps_system(lmp, atoms, potential_file, elements, tmp)
            nthreads = int(lmp.extract_setting("nthreads"))
            if nthreads != 1:
                lmp.command("package omp 1")
                nthreads = int(lmp.extract_setting("nthreads"))
            lmp.commands_list([
                f"timestep {timestep_fs * 1e-3!r}",  # metal units: ps
                f"velocity all create {float(temperature)!r} {int(seed)} "
                "mom yes rot yes dist gaussian",
                "fix integrate all nve",
                "thermo_style custom step temp pe etotal press",
                "thermo 0",
                f"run {WARMUP_STEPS}",
            ])
            t0 = time.perf_counter()
            lmp.command(f"run {nsteps} pre no post no")
            seconds = time.perf_counter() - t0
            natoms = int(lmp.get_natoms())
            nprocs = int(lmp.extract_setting("world_size"))
            version = int(lmp.version())
    finally:
        lmp.close()
    return {
        "seconds": seconds,
        "us_per_atom_step": seconds * 1e6 / (natoms * nsteps),
        "natoms": natoms,
        "nsteps": nsteps,
        "lammps_version": version,
        "nthreads": nthreads,
        "nprocs": nprocs,
    }


if __name__ == "__main__":
    from ase.build import bulk

    pot = os.path.normpath(os.path.join(_HERE, "..", "..", "shared", "data",
                                        "meam_spline", "Si_1.meam.spline"))
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(8)
    res = time_lammps_md(pot, ["Si"], si, 20)
    print(res)
