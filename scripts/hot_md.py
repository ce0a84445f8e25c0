"""Hot molecular dynamics with zoo models: does a run that a physical potential survives survive?

    python scripts/hot_md.py [--steps 20000] [--nve-steps 5000] [--out benchmarks/results]

Two runs, as a user would start them in ASE:

- Si/snnp_large, 64 atoms of diamond Si, Langevin at 3000 K (1 fs, friction 0.02): the crystal
  melts; then NVE from the last state.
- Mo/snnp_medium, 128 atoms of bcc Mo, Langevin at 6000 K; then NVE.

For each: whether it finished, the shortest pair distance met, how many steps came closer than
the training data (the calculator's ``close_approaches``), the largest extrapolation grade seen,
and the NVE energy drift (eV/atom/ps, a linear fit of the total energy).  For Si it also writes
the radial distribution function of the melt beside the crystal's (``liquid_si_rdf.png``).
Results go to ``OUT/hot_md.json`` with the machine and the command; with ``--runs`` naming
some runs only, the file keeps the others' results (``commands`` says which command made each).
"""
import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list

import snnp
from snnp.io.atomic import atomic_write

RUNS = {
    "Si": {"model": "Si/snnp_large", "atoms": lambda: bulk("Si", "diamond", a=5.431, cubic=True).repeat(2),
           "temperature": 3000.0},
    "Mo": {"model": "Mo/snnp_medium", "atoms": lambda: bulk("Mo", "bcc", a=3.16, cubic=True).repeat(4),
           "temperature": 6000.0},
}


def rdf(images, r_max=5.0, bins=100):
    """Radial distribution function g(r) averaged over images of one cell."""
    edges = np.linspace(0.0, r_max, bins + 1)
    hist = np.zeros(bins)
    for a in images:
        hist += np.histogram(neighbor_list("d", a, r_max), bins=edges)[0]
    n, volume = len(images[0]), images[0].get_volume()
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / len(images) / n / (shell * n / volume)
    return 0.5 * (edges[1:] + edges[:-1]), g


def run(name, steps, nve_steps, seed=1):
    spec = RUNS[name]
    model = snnp.load(spec["model"])
    atoms = spec["atoms"]()
    calc = model.calculator(extrapolation=True)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=spec["temperature"],
                                 rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, units.fs, temperature_K=spec["temperature"], friction=0.02,
                   rng=np.random.default_rng(seed))
    log = {"rmin": np.inf, "grade_max": 0.0, "snapshots": []}

    def watch():
        d = neighbor_list("d", atoms, 3.0)
        log["rmin"] = min(log["rmin"], float(d.min()) if d.size else np.inf)
        log["grade_max"] = max(log["grade_max"], calc.results["max_extrapolation"])

    def keep():
        if dyn.nsteps >= steps // 2:
            log["snapshots"].append(atoms.copy())

    dyn.attach(watch, interval=1)
    dyn.attach(keep, interval=max(1, steps // 100))
    out = {"model": spec["model"], "atoms": len(atoms), "temperature_K": spec["temperature"],
           "langevin_steps": steps, "timestep_fs": 1.0}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", snnp.CloseApproachWarning)
        try:
            dyn.run(steps)
            out["finished"] = True
        except Exception as exc:           # what a user would see: the run aborts
            out["finished"], out["error"] = False, f"{type(exc).__name__}: {exc}"
    out["langevin_seconds"] = time.perf_counter() - start
    out["shortest_pair_A"] = log["rmin"]
    out["close_approach_steps"] = calc.close_approaches
    out["closest_approach_A"] = None if calc.closest_approach is None else calc.closest_approach[0]
    out["max_extrapolation_grade"] = log["grade_max"]
    out["short_range_limit_A"] = model.short_range_limit
    if out["finished"] and nve_steps:
        energies = []
        nve = VelocityVerlet(atoms, units.fs)
        nve.attach(lambda: energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy()),
                   interval=10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", snnp.CloseApproachWarning)
            nve.run(nve_steps)
        t_ps = np.arange(len(energies)) * 10 * 1e-3
        e = np.array(energies) / len(atoms)
        slope = np.polyfit(t_ps, e, 1)[0]
        out["nve_steps"] = nve_steps
        out["nve_drift_eV_per_atom_per_ps"] = float(slope)
        out["nve_energy_std_eV_per_atom"] = float(e.std())
        out["nve_temperature_K"] = float(atoms.get_temperature())
    return out, log["snapshots"], spec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--nve-steps", type=int, default=5000)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "benchmarks",
                                                 "results"))
    p.add_argument("--plot-dir", default=os.path.join(os.path.dirname(__file__), "..", "docs",
                                                      "figures"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    snnp.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "hot_md.json")
    command = " ".join(["scripts/hot_md.py"] + sys.argv[1:])
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "threads": args.threads}, "command": command, "runs": {}}
    if os.path.exists(path) and set(args.runs) != set(RUNS):   # a subset: keep the other runs
        with open(path) as fh:
            kept = json.load(fh)
        results["runs"] = {k: v for k, v in kept.get("runs", {}).items() if k not in args.runs}
        made_by = kept.get("commands") or {k: kept.get("command") for k in kept.get("runs", {})}
        results["commands"] = {k: v for k, v in made_by.items() if k in results["runs"]}
    results.setdefault("commands", {}).update({name: command for name in args.runs})
    for name in args.runs:
        out, snaps, spec = run(name, args.steps, args.nve_steps)
        results["runs"][name] = out
        print(json.dumps(out), flush=True)
        if name == "Si" and snaps:
            crystal = spec["atoms"]()
            crystal.rattle(0.05, seed=2)
            r, g_liquid = rdf(snaps)
            _, g_crystal = rdf([crystal])
            out["rdf"] = {"r": r.tolist(), "liquid": g_liquid.tolist(), "crystal": g_crystal.tolist()}
            try:
                import matplotlib
                matplotlib.use("Agg")
                import matplotlib.pyplot as plt
            except ImportError:
                continue
            os.makedirs(args.plot_dir, exist_ok=True)
            fig, ax = plt.subplots(figsize=(5.5, 3.4))
            ax.plot(r, g_crystal / max(g_crystal.max(), 1e-12) * 4, color="0.6", lw=1,
                    label="diamond crystal (scaled)")
            ax.plot(r, g_liquid, color="C0", label=f"{spec['model']}, {spec['temperature']:.0f} K")
            ax.axvline(out["short_range_limit_A"], color="C3", ls="--", lw=0.8,
                       label="shortest training pair")
            ax.set_xlabel("r (A)")
            ax.set_ylabel("g(r)")
            ax.set_title(f"liquid Si, 64 atoms, second half of {args.steps} Langevin steps",
                         fontsize=9)
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(os.path.join(args.plot_dir, "liquid_si_rdf.png"), dpi=130)
    with atomic_write(path) as fh:
        json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
