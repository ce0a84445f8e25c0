"""InP cost: MD cost of SNAP beside snnp models in one run, and snnp's training cost on the InP set.

MD cost (default mode)
----------------------
One zinc-blende InP cell (a = 5.87 A, ``--repeat`` 8 -> 8x8x8 cubic cells = 4 096 atoms, rattled
0.05 A), LAMMPS NVE (1 fs, velocities drawn at 300 K, ``units metal``, default neighbour
settings) on 1 MPI rank and 1 thread, in-process through the ``lammps`` python module:

* SNAP as ``../shared/data/README.md`` runs it (``pair_style hybrid/overlay zbl 4.0 4.2 snap``,
  ``InP_pot.snapcoeff``/``.snapparam``, types 1 = In, 2 = P);
* every snnp model with ``pair_style snnp`` (the plugin of lammps_plugin/, kernel tables from
  ``model.to_lammps_plugin``);
* every snnp model through snnp's own ASE path (``snnp.ladder.time_model``: energy + forces,
  atoms moving each step, Verlet-skin list reused, 1 thread).

A 10-step warm-up does the LAMMPS setup; the timed part is ``run STEPS pre no post no`` and the
figure is LAMMPS's own loop time ("Loop time of ..." in the log) per atom-step (the python wall
clock is kept beside it).  LAMMPS styles are interleaved over the repeats and the fastest
repeat is kept; ratios snnp/SNAP come from the same run.  The potential energies at step 0 of
the plugin and of the ASE path are checked to agree.

Which snnp models: ``--models DIR`` (every ``*.json`` model file in DIR, e.g. a ladder output
folder), else the zoo's InP models (``InP/...`` in ``snnp.zoo()``), else the unfitted ladder
presets ``snnp.presets(["In", "P"], cutoff=5.0)`` given nonzero parameters as in
bench_ladder.py (cost does not depend on the parameter values); the JSON says which.

Results: ``benchmarks/results/inp_cost.json``.

Training cost (``--training-cost``)
-----------------------------------
Seconds per full-batch ``snnp.training.loss_and_gradient(model, Batch(structures, model),
snnp.Loss())`` and peak resident memory for each ladder preset on 25 %, 50 % and 100 % of the
whole InP set (1894 structures, 118 214 atoms; nested seeded random subsets of structures),
each (preset, size) in a fresh subprocess so peaks do not mix: read the (cached) data, build
the batch (neighbour lists; ``setup_s``), one warm-up gradient, then ``--gradients`` timed ones
(fastest kept), 1 thread, BLAS limited to 1 thread as ``fit`` does.  ``rss_after_load_MB`` is
the peak before the batch is built (python, numpy, the data set), so ``peak - after_load`` is
what the fit itself costs.  Results: ``benchmarks/results/inp_training_cost.json``.

Run
---
    python benchmarks/bench_inp.py                        # MD cost, about 3 minutes
    python benchmarks/bench_inp.py --models /work/exp/inp/ladder
    python benchmarks/bench_inp.py --training-cost        # about 10 minutes
    python benchmarks/bench_inp.py --quick                # smoke test (writes *_quick.json)
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "lammps_plugin"))
sys.path.insert(0, os.path.join(REPO, "scripts"))

from lammps_timing import WARMUP_STEPS, time_pair_style  # noqa: E402

ELEMENTS = ["In", "P"]
PRESETS = ["smeam", "smeam_nn", "snnp_small", "snnp_medium", "snnp_large"]
LATTICE = 5.87


# -- MD cost -----------------------------------------------------------------------------------

def inp_cell(repeat=8, rattle=0.05, seed=1):
    from ase.build import bulk
    atoms = bulk("InP", "zincblende", a=LATTICE, cubic=True).repeat(repeat)
    atoms.rattle(rattle, seed=seed)
    return atoms


def snnp_models(models_dir, cutoff):
    """[(name, model)], and a description of where they came from."""
    import snnp
    from bench_ladder import activate
    if models_dir:
        files = sorted(glob.glob(os.path.join(models_dir, "*.json")))
        out = []
        for f in files:
            try:
                m = snnp.load(f)
            except Exception as exc:  # noqa: BLE001  (ladder folders hold other JSON too)
                print(f"  skipping {f}: {type(exc).__name__}: {exc}")
                continue
            out.append((os.path.splitext(os.path.basename(f))[0], m))
        order = {p: k for k, p in enumerate(PRESETS)}
        out.sort(key=lambda nm: (order.get(nm[0], len(order)), nm[0]))
        if not out:
            raise SystemExit(f"no snnp model files in {models_dir}")
        return out, {"source": "model files", "dir": os.path.abspath(models_dir),
                     "files": [n + ".json" for n, _ in out]}
    zoo = [z for z in snnp.zoo() if z.startswith("InP/")]
    if zoo:
        return ([(z.split("/", 1)[1], snnp.load(z)) for z in zoo],
                {"source": "zoo", "names": zoo})
    presets = snnp.presets(ELEMENTS, cutoff=cutoff)
    return ([(n, activate(m)) for n, m in presets.items()],
            {"source": "unfitted ladder presets (nonzero parameters; cost does not depend on "
                       "their values)", "call": f"snnp.presets({ELEMENTS}, cutoff={cutoff})"})


def md_cost(args):
    import benchinfo
    import build_plugin
    import lammps_ref
    import inp_snap
    import snnp
    if not lammps_ref.lammps_available():
        raise SystemExit(f"LAMMPS unavailable: {lammps_ref.LAMMPS_MISSING_REASON}")
    snnp.set_num_threads(1)
    started = time.time()
    atoms = inp_cell(args.repeat)
    models, origin = snnp_models(args.models, args.cutoff)
    print(f"{len(atoms)}-atom zinc-blende InP; snnp models ({origin['source']}): "
          f"{', '.join(n for n, _ in models)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_inp_") as tmp:
        plugin = args.plugin or build_plugin.build(os.path.join(tmp, "plugin"))
        styles = {"SNAP": inp_snap.pair_commands(inp_snap.snap_dir())}
        for name, model in models:
            path = os.path.join(tmp, f"{name}.snnp")
            model.to_lammps_plugin(path)
            styles[name] = ["pair_style snnp", f'pair_coeff * * "{path}" In P']
        best = {k: None for k in styles}
        for r in range(args.repeats):
            for key, cmds in styles.items():
                steps = args.snap_steps if key == "SNAP" else args.steps
                res = time_pair_style(cmds, atoms, ELEMENTS, steps, tmp, plugin,
                                      temperature=300.0)
                if best[key] is None or res["us_per_atom_step"] < best[key]["us_per_atom_step"]:
                    best[key] = dict(res, steps=steps)
                print(f"  repeat {r + 1}: {key:12s} {res['us_per_atom_step']:8.3f} us/atom/step "
                      f"(LAMMPS loop time; wall {res['wall_us_per_atom_step']:.3f})", flush=True)
    ase = {}
    for name, model in models:
        ase[name] = snnp.ladder.time_model(model, atoms, steps=args.ase_steps,
                                           repeats=args.repeats)
        a = atoms.copy()
        a.calc = model.calculator()
        ase[name + "/pe0"] = float(a.get_potential_energy())
        print(f"  ASE path: {name:12s} {ase[name]:8.3f} us/atom/step", flush=True)
    snap = best["SNAP"]["us_per_atom_step"]
    version = best["SNAP"]["lammps_version"]
    rows = []
    print(f"\nLAMMPS {version}, {len(atoms)}-atom InP, 1 rank, 1 thread, NVE from 300 K, fastest "
          f"of {args.repeats}; SNAP {args.snap_steps} steps, snnp plugin {args.steps} steps, "
          f"ASE path {args.ase_steps} steps")
    print(f"{'model':14s} {'params':>7s} {'plugin us':>10s} {'x SNAP':>7s} {'ASE us':>8s} "
          f"{'x SNAP':>7s} {'pe0 plugin-ASE':>15s}")
    print(f"{'SNAP':14s} {'':>7s} {snap:10.3f} {1.0:7.3f}")
    for name, model in models:
        b = best[name]
        dpe = (b["pe0_eV"] - ase[name + "/pe0"]) / len(atoms)
        rows.append({"model": name, "class": type(model).__name__, "n_params": model.n_params,
                     "cutoff_A": float(model.cutoff),
                     "filters": [model.n_radial, model.n_angular],
                     "mlp": list(model.mlp.widths) if model.mlp else None,
                     "plugin_us_per_atom_step": b["us_per_atom_step"],
                     "plugin_wall_us_per_atom_step": b["wall_us_per_atom_step"],
                     "plugin_ratio_to_snap": b["us_per_atom_step"] / snap,
                     "ase_us_per_atom_step": ase[name],
                     "ase_ratio_to_snap": ase[name] / snap,
                     "plugin_pe0_eV": b["pe0_eV"], "ase_pe0_eV": ase[name + "/pe0"],
                     "pe0_plugin_minus_ase_eV_per_atom": dpe,
                     "plugin_md_end": {"etotal_eV": b["etotal_end_eV"],
                                       "temperature_K": b["temperature_end_K"]}})
        print(f"{name:14s} {model.n_params:7d} {b['us_per_atom_step']:10.3f} "
              f"{b['us_per_atom_step'] / snap:7.3f} {ase[name]:8.3f} {ase[name] / snap:7.3f} "
              f"{dpe:15.2e}")
    doc = {
        "benchmark": "MD cost on InP: SNAP (LAMMPS) beside snnp models (LAMMPS pair_style snnp "
                     "and the ASE path), same run",
        "command": benchinfo.command(), "date": benchinfo.now(),
        "machine": benchinfo.machine(lammps_version=version),
        "settings": {"system": f"zinc-blende InP, a = {LATTICE} A, {args.repeat}^3 cubic cells, "
                               "rattled 0.05 A (seed 1)",
                     "natoms": len(atoms), "lammps": "1 MPI rank, 1 thread, NVE 1 fs from 300 K, "
                                                     "units metal, default neighbour settings",
                     "timing": "LAMMPS loop time of `run STEPS pre no post no` after a "
                               f"{WARMUP_STEPS}-step warm-up; fastest of the repeats, styles "
                               "interleaved",
                     "snap_steps": args.snap_steps, "plugin_steps": args.steps,
                     "ase_steps": args.ase_steps, "repeats": args.repeats,
                     "ase_path": "snnp.ladder.time_model (energy + forces, 1 thread, Verlet "
                                 "skin 1 A, atoms kicked 0.005 A each step)",
                     "snap": {"pair_commands": inp_snap.pair_commands("<shared/data/InP>"),
                              "note": "SNAP cutoff (R_In + R_P) * rcutfac ~ 7.6 A, twojmax 6, "
                                      "chemflag 1"}},
        "snnp_models": origin,
        "snap_us_per_atom_step": snap, "snap_wall_us_per_atom_step":
            best["SNAP"]["wall_us_per_atom_step"], "snap_pe0_eV": best["SNAP"]["pe0_eV"],
        "elapsed_s": time.time() - started,
        "results": rows,
    }
    name = "inp_cost_quick.json" if args.quick else "inp_cost.json"
    benchinfo.save(name, doc)
    print(f"saved benchmarks/results/{name} ({time.time() - started:.0f} s)")


# -- training cost -----------------------------------------------------------------------------

def subset(n, fraction, seed=0):
    """The first round(fraction * n) of a seeded permutation: nested subsets."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:max(1, int(round(fraction * n)))])


def training_worker(preset, fraction, gradients, cutoff):
    import snnp
    from threadpoolctl import threadpool_limits
    from snnp.training import Batch, initialise_embedding_inputs, loss_and_gradient
    from bench_ladder import activate
    snnp.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")
    t0 = time.perf_counter()
    data = snnp.datasets.inp("all")
    structures = [data.structures[i] for i in subset(len(data.structures), fraction)]
    load_s = time.perf_counter() - t0
    rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = activate(snnp.presets(ELEMENTS, cutoff=cutoff)[preset])
    t0 = time.perf_counter()
    batch = Batch(structures, model)
    initialise_embedding_inputs(model, batch)
    setup = time.perf_counter() - t0
    loss = snnp.Loss()
    t0 = time.perf_counter()
    value, _ = loss_and_gradient(model, batch, loss)  # warm-up
    warm = time.perf_counter() - t0
    times = []
    for _ in range(gradients):
        t = time.perf_counter()
        loss_and_gradient(model, batch, loss)
        times.append(time.perf_counter() - t)
    best = min(times)
    n_atoms = int(sum(len(s.atoms) for s in structures))
    return {"preset": preset, "fraction": fraction, "n_params": model.n_params,
            "structures": len(structures), "atoms": n_atoms,
            "pairs_in_lists": int(len(batch.neighbors)),
            "load_s": load_s, "setup_s": setup, "warmup_gradient_s": warm,
            "seconds_per_gradient": best, "all_seconds": times,
            "us_per_atom_per_gradient": best * 1e6 / n_atoms,
            "loss_finite": bool(np.isfinite(value)),
            "rss_after_load_MB": rss_load,
            "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def training_cost(args):
    import benchinfo
    started = time.time()
    rows = []
    print(f"{'preset':12s} {'frac':>5s} {'atoms':>7s} {'params':>6s} {'setup s':>8s} "
          f"{'s/grad':>7s} {'us/atom':>8s} {'peak MB':>8s} {'-load MB':>8s}", flush=True)
    for preset in args.presets:
        for fraction in args.fractions:
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--tc-worker", preset, repr(fraction),
                 "--gradients", str(args.gradients), "--cutoff", repr(args.cutoff)],
                capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"worker {preset} {fraction} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"{preset:12s} {fraction:5.2f} {r['atoms']:7d} {r['n_params']:6d} "
                  f"{r['setup_s']:8.2f} {r['seconds_per_gradient']:7.2f} "
                  f"{r['us_per_atom_per_gradient']:8.2f} {r['peak_rss_MB']:8.0f} "
                  f"{r['peak_rss_MB'] - r['rss_after_load_MB']:8.0f}", flush=True)
    scaling = {}
    for preset in args.presets:
        rs = sorted((r for r in rows if r["preset"] == preset), key=lambda r: r["atoms"])
        if len(rs) >= 2:
            x = np.array([r["atoms"] for r in rs], float)
            t = np.array([r["seconds_per_gradient"] for r in rs])
            m = np.array([r["peak_rss_MB"] - r["rss_after_load_MB"] for r in rs])
            # log-log slopes: 1 = linear
            scaling[preset] = {
                "time_exponent": float(np.polyfit(np.log(x), np.log(t), 1)[0]),
                "memory_exponent": (float(np.polyfit(np.log(x), np.log(np.maximum(m, 1)), 1)[0])),
                "time_ratio_full_over_quarter": float(t[-1] / t[0]),
                "atoms_ratio": float(x[-1] / x[0])}
    for p, s in scaling.items():
        print(f"  {p:12s} time ~ atoms^{s['time_exponent']:.2f}, fit memory ~ "
              f"atoms^{s['memory_exponent']:.2f}")
    doc = {"benchmark": "training cost on the InP set: seconds per full-batch loss-and-gradient "
                        "and peak memory vs data size",
           "command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(),
           "settings": {"data": "snnp.datasets.inp('all'): 1894 structures, 118 214 atoms; "
                                "nested seeded random subsets of structures (seed 0)",
                        "fractions": args.fractions, "cutoff_A": args.cutoff, "threads": 1,
                        "blas": "one thread (threadpoolctl), as fit() runs it",
                        "loss": "snnp.Loss() defaults (energy 1, forces 0.01, stress 1e-4)",
                        "gradients": f"1 warm-up + {args.gradients} timed (fastest kept)",
                        "models": "unfitted ladder presets with nonzero parameters "
                                  "(bench_ladder.activate); cost does not depend on the values",
                        "memory": "ru_maxrss of a fresh subprocess per (preset, size); "
                                  "rss_after_load_MB is the peak before the batch is built"},
           "scaling": scaling, "elapsed_s": time.time() - started, "results": rows}
    name = "inp_training_cost_quick.json" if args.quick else "inp_training_cost.json"
    benchinfo.save(name, doc)
    print(f"saved benchmarks/results/{name} ({time.time() - started:.0f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="a folder of snnp model files (*.json)")
    parser.add_argument("--cutoff", type=float, default=5.0, help="cutoff of the presets")
    parser.add_argument("--repeat", type=int, default=8, help="cubic cells per side (8: 4096)")
    parser.add_argument("--steps", type=int, default=100, help="plugin MD steps per repeat")
    parser.add_argument("--snap-steps", type=int, default=20, help="SNAP MD steps per repeat")
    parser.add_argument("--ase-steps", type=int, default=10, help="ASE-path steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plugin", help="an already built snnpplugin.so")
    parser.add_argument("--training-cost", action="store_true",
                        help="time full-batch gradients on 25/50/100%% of the InP set instead")
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--gradients", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke test; writes *_quick.json")
    parser.add_argument("--tc-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tc_worker:
        print(json.dumps(training_worker(args.tc_worker[0], float(args.tc_worker[1]),
                                         args.gradients, args.cutoff)))
        return
    if args.quick:
        args.steps, args.snap_steps, args.ase_steps, args.repeats = 5, 2, 2, 1
        if args.training_cost:
            args.presets, args.fractions = ["smeam", "snnp_medium"], [0.05, 0.1]
        else:
            args.repeat = min(args.repeat, 4)
    (training_cost if args.training_cost else md_cost)(args)


if __name__ == "__main__":
    main()
