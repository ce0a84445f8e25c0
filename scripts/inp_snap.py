"""SNAP (Cusentino et al. 2020, on a ZBL core) on the InP DFT set, evaluated through LAMMPS.

What it does
------------
Evaluates the SNAP potential of ``../shared/data/InP`` (``InP_pot.snapcoeff``,
``InP_pot.snapparam``) in-process through the ``lammps`` python module (``units metal``,
``atom_style atomic``, ``boundary p p p``) on every structure of the InP training and test parts
of ``snnp.datasets.inp`` (and, with ``--all``, the validation part too), as
``../shared/data/README.md`` prescribes::

    pair_style hybrid/overlay zbl 4.0 4.2 snap
    pair_coeff 1 1 zbl 49 49
    pair_coeff 1 2 zbl 49 15
    pair_coeff 2 2 zbl 15 15
    pair_coeff * * snap InP_pot.snapcoeff InP_pot.snapparam In P

Each cell is brought into LAMMPS's lower-triangular frame by ``tests/lammps_ref.py`` (QR
rotation, tilt reduction by lattice vectors, positions wrapped); forces and the stress tensor
are rotated back to the structure's own frame.

SNAP's energy zero differs per species (FitSNAP's ``[ESHIFT]``), so the DFT energy is modelled
as ``E_SNAP + n_In * c_In + n_P * c_P``; the two offsets are fitted by least squares on the
training part only and applied to the test part.  Errors use the definitions of
``snnp.training.errors`` (energy per atom in meV/atom, force components in eV/A, the six
stress components in GPa; RMSE and MAE, overall and per ``config_type`` group), so they read
directly against the ladder's scores.  SNAP was fitted to all 1894 structures, the test part
included: its test errors are really training errors.

``--check`` first verifies the conversion: a random rotation of triclinic cells and a 2x1x1
supercell leave energy per atom, forces and stress unchanged, and the stress matches a finite
difference of the energy under strain.

Results: ``benchmarks/results/inp_snap.json`` (machine, LAMMPS version, command, offsets,
test errors overall and per group, training and, with ``--all``, all-data errors beside
FitSNAP's own metrics) and ``benchmarks/results/inp_snap_test.npz`` (per-structure SNAP
predictions on the test part, offsets applied: ``energy`` (eV), ``forces`` (eV/A,
concatenated in structure order, ``offsets`` indexes them), ``stress`` (eV/A^3, ASE sign,
Voigt), with the DFT labels, ``n_atoms``, ``names``, ``groups`` and the raw ``energy_snap``).

Run
---
    python scripts/inp_snap.py --check --all    # about 2 minutes on 1 core
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

import snnp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import benchinfo  # noqa: E402
import lammps_ref  # noqa: E402

ELEMENTS = ["In", "P"]
EV_A3_TO_GPA = snnp.training.EV_A3_TO_GPA
FITSNAP_METRICS = {"energy_meV_per_atom_rmse": 7.37, "forces_eV_per_A_rmse": 0.306,
                   "Shear_forces_eV_per_A_rmse": 1.94,
                   "note": "FitSNAP's own training errors on all 1894 structures "
                           "(../shared/data/InP/InP_metrics.md), with its own energy shift"}


def snap_dir():
    return os.path.dirname(snnp.datasets.find_inp())


def pair_commands(directory):
    coeff = os.path.join(directory, "InP_pot.snapcoeff")
    param = os.path.join(directory, "InP_pot.snapparam")
    return ["pair_style hybrid/overlay zbl 4.0 4.2 snap",
            "pair_coeff 1 1 zbl 49 49",
            "pair_coeff 1 2 zbl 49 15",
            "pair_coeff 2 2 zbl 15 15",
            f'pair_coeff * * snap "{coeff}" "{param}" In P']


class SNAP:
    """One LAMMPS instance, cleared between structures."""

    def __init__(self, directory=None):
        self.lmp = lammps_ref.new_lammps()
        self.pair = pair_commands(directory or snap_dir())
        self.version = int(self.lmp.version())
        self.tmp = tempfile.TemporaryDirectory(prefix="inp_snap_")
        self.masses = lammps_ref.type_masses(ELEMENTS)

    def close(self):
        self.lmp.close()
        self.tmp.cleanup()

    def __call__(self, atoms):
        """(energy eV, forces N x 3 eV/A, stress Voigt eV/A^3 ASE sign), in atoms' frame."""
        lmp = self.lmp
        n = len(atoms)
        geom = lammps_ref.lammps_geometry(atoms)
        if geom["periodic_count"] != 3:
            raise ValueError("the InP structures are all periodic")
        data = os.path.join(self.tmp.name, "atoms.data")
        lammps_ref.write_lammps_data(data, geom, lammps_ref.atom_types(atoms, ELEMENTS),
                                     self.masses)
        lmp.command("clear")
        lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                           "boundary p p p", f'read_data "{data}"'] + self.pair + [
            "compute vir all pressure NULL virial",
            "thermo_style custom step pe c_vir[1]", "thermo_modify norm no", "run 0"])
        out = lammps_ref.read_results(lmp, geom, n)
        return out["energy"], out["forces"], out["stress"]


def composition(structures):
    return np.array([[np.sum(np.array(s.atoms.get_chemical_symbols()) == el) for el in ELEMENTS]
                     for s in structures], float)


def evaluate(snap, structures, label):
    t0 = time.perf_counter()
    out = [snap(s.atoms) for s in structures]
    print(f"  SNAP on {len(structures)} {label} structures "
          f"({sum(len(s.atoms) for s in structures)} atoms): {time.perf_counter() - t0:.1f} s",
          flush=True)
    return out


stats = snnp.training.error_stats


def errors(structures, preds, offsets):
    """Errors as snnp.training.errors defines them, overall and per group."""
    comp = composition(structures)
    n = comp.sum(axis=1)
    e_pred = np.array([p[0] for p in preds]) + comp @ offsets
    e_ref = np.array([s.energy for s in structures])
    de = 1e3 * (e_pred - e_ref) / n
    df = [p[1] - s.forces for p, s in zip(preds, structures)]
    ds = [EV_A3_TO_GPA * (p[2] - s.stress) for p, s in zip(preds, structures)]
    groups = np.array([s.group for s in structures], dtype=object)

    def block(sel):
        idx = np.flatnonzero(sel)
        return {"energy_meV_per_atom": stats(de[idx]),
                "forces_eV_per_A": stats(np.concatenate([df[i].ravel() for i in idx])),
                "stress_GPa": stats(np.concatenate([ds[i] for i in idx]))}

    out = block(np.ones(len(structures), bool))
    out["groups"] = {g: block(groups == g) for g in sorted(set(groups), key=str)}
    return out


def fit_offsets(structures, preds):
    comp = composition(structures)
    resid = np.array([s.energy for s in structures]) - np.array([p[0] for p in preds])
    c, *_ = np.linalg.lstsq(comp, resid, rcond=None)
    return c


def check_conversion(snap, structures, rng):
    """Rotation / supercell invariance and stress vs a finite difference, on triclinic cells."""
    tri = [s for s in structures if np.abs(np.triu(s.atoms.cell[:], 1)).max() > 1e-9]
    picks = [tri[i] for i in rng.choice(len(tri), size=min(4, len(tri)), replace=False)]
    report = []
    for s in picks:
        a = s.atoms.copy()
        e, f, st = snap(a)
        # random rotation (proper) of cell and positions
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        b = a.copy()
        b.set_cell(a.cell[:] @ q.T, scale_atoms=False)
        b.set_positions(a.get_positions() @ q.T)
        e2, f2, st2 = snap(b)
        S2 = np.array([[st2[0], st2[5], st2[4]], [st2[5], st2[1], st2[3]],
                       [st2[4], st2[3], st2[2]]])
        S2 = q.T @ S2 @ q
        st2 = np.array([S2[0, 0], S2[1, 1], S2[2, 2], S2[1, 2], S2[0, 2], S2[0, 1]])
        c = a.repeat((2, 1, 1))
        e3, f3, st3 = snap(c)
        # finite-difference stress: sigma_ij = (1/V) dE/d eps_ij (symmetric strain)
        h = 1e-5
        fd = np.zeros(6)
        for k, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
            em = []
            for sign in (+1, -1):
                eps = np.zeros((3, 3))
                eps[i, j] = eps[j, i] = sign * (h if i == j else h / 2)
                d = a.copy()
                d.set_cell(a.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
                em.append(snap(d)[0])
            fd[k] = (em[0] - em[1]) / (2 * h) / a.get_volume()  # dE = V sigma_ij h either way
        row = {"name": s.name, "group": s.group, "natoms": len(a),
               "rotation_dE_eV": abs(e2 - e), "rotation_max_dF": float(np.abs(f2 @ q - f).max()),
               "rotation_max_dstress_GPa": float(EV_A3_TO_GPA * np.abs(st2 - st).max()),
               "supercell_dE_per_atom_eV": abs(e3 / len(c) - e / len(a)),
               "supercell_max_dF": float(np.abs(f3[:len(a)] - f).max()),
               "stress_vs_finite_difference_max_GPa": float(EV_A3_TO_GPA * np.abs(fd - st).max())}
        report.append(row)
        print("  check", {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in row.items()},
              flush=True)
    worst = {k: max(r[k] for r in report) for k in report[0] if k not in ("name", "group",
                                                                          "natoms")}
    ok = (worst["rotation_max_dF"] < 1e-6 and worst["supercell_max_dF"] < 1e-6
          and worst["rotation_max_dstress_GPa"] < 1e-5
          and worst["stress_vs_finite_difference_max_GPa"] < 1e-2)
    return {"structures": report, "worst": worst, "passed": bool(ok)}


def table(err, title):
    print(f"\n{title}")
    print(f"{'group':10s} {'n':>5s} {'E meV/atom':>11s} {'F eV/A':>8s} {'S GPa':>7s}")
    rows = [("ALL", err)] + list(err["groups"].items())
    for g, b in rows:
        print(f"{g:10s} {b['energy_meV_per_atom']['n']:5d} "
              f"{b['energy_meV_per_atom']['rmse']:11.2f} {b['forces_eV_per_A']['rmse']:8.3f} "
              f"{b['stress_GPa']['rmse']:7.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the cell conversion first")
    parser.add_argument("--all", action="store_true",
                        help="also evaluate the validation part and report all-data errors")
    parser.add_argument("--quick", action="store_true",
                        help="every 10th structure only; writes *_quick files")
    args = parser.parse_args()
    if not lammps_ref.lammps_available():
        raise SystemExit(f"LAMMPS unavailable: {lammps_ref.LAMMPS_MISSING_REASON}")
    started = time.time()
    parts = {p: snnp.datasets.inp(p).structures for p in
             (["training", "validation", "test"] if args.all else ["training", "test"])}
    if args.quick:
        parts = {p: s[::10] for p, s in parts.items()}
    snap = SNAP()
    try:
        check = None
        if args.check:
            check = check_conversion(snap, parts["test"], np.random.default_rng(0))
            print(f"  conversion check {'passed' if check['passed'] else 'FAILED'}: "
                  f"{check['worst']}")
        preds = {p: evaluate(snap, s, p) for p, s in parts.items()}
        version = snap.version
    finally:
        snap.close()
    offsets = fit_offsets(parts["training"], preds["training"])
    err = {p: errors(parts[p], preds[p], offsets) for p in parts}
    if args.all:
        everything = sum(parts.values(), [])
        err["all"] = errors(everything, sum(preds.values(), []), offsets)
    table(err["test"], "SNAP on the InP test part (offsets fitted on training)")
    print(f"offsets (eV/atom, added to E_SNAP): In {offsets[0]:+.4f}, P {offsets[1]:+.4f}")
    if args.all:
        a = err["all"]
        print(f"all 1894 structures: E {a['energy_meV_per_atom']['rmse']:.2f} meV/atom, "
              f"F {a['forces_eV_per_A']['rmse']:.3f} eV/A (Shear "
              f"{a['groups']['Shear']['forces_eV_per_A']['rmse']:.3f}), "
              f"S {a['stress_GPa']['rmse']:.2f} GPa; FitSNAP's metrics: E 7.37, F 0.306 "
              f"(Shear 1.94)")

    suffix = "_quick" if args.quick else ""
    test = parts["test"]
    comp = composition(test)
    n_atoms = np.array([len(s.atoms) for s in test])
    os.makedirs(benchinfo.RESULTS, exist_ok=True)
    npz = os.path.join(benchinfo.RESULTS, f"inp_snap_test{suffix}.npz")
    np.savez_compressed(
        npz,
        names=np.array([s.name for s in test]), groups=np.array([s.group for s in test]),
        n_atoms=n_atoms, offsets=np.concatenate([[0], np.cumsum(n_atoms)]),
        symbols=np.concatenate([s.atoms.get_chemical_symbols() for s in test]),
        energy=np.array([p[0] for p in preds["test"]]) + comp @ offsets,
        energy_snap=np.array([p[0] for p in preds["test"]]),
        forces=np.concatenate([p[1] for p in preds["test"]]),
        stress=np.array([p[2] for p in preds["test"]]),
        energy_dft=np.array([s.energy for s in test]),
        forces_dft=np.concatenate([s.forces for s in test]),
        stress_dft=np.array([s.stress for s in test]),
        species_offsets_eV=offsets, species=np.array(ELEMENTS))
    doc = {
        "benchmark": "SNAP (ZBL core) on the InP test part, through LAMMPS",
        "command": benchinfo.command(), "date": benchinfo.now(),
        "machine": benchinfo.machine(lammps_version=version),
        "lammps_version": version,
        "potential": {"files": ["InP_pot.snapcoeff", "InP_pot.snapparam"],
                      "directory": snap_dir(), "pair_commands": pair_commands("<dir>"),
                      "types": {"1": "In", "2": "P"}},
        "split": {p: {"structures": len(s), "atoms": int(sum(len(x.atoms) for x in s))}
                  for p, s in parts.items()},
        "offsets_eV_per_atom": {"In": float(offsets[0]), "P": float(offsets[1]),
                                "model": "E_DFT ~ E_SNAP + n_In*In + n_P*P, least squares on "
                                         "the training part"},
        "units": {"energy": "meV/atom", "forces": "eV/A (components)",
                  "stress": "GPa (6 Voigt components)"},
        "note": "SNAP was fitted to all 1894 structures, the test part included, so these "
                "test errors favour SNAP; its fit gave stresses almost no weight.",
        "test": err["test"], "training": err["training"],
        "all": err.get("all"), "fitsnap_metrics": FITSNAP_METRICS,
        "conversion_check": check,
        "predictions_npz": os.path.relpath(npz, REPO),
        "elapsed_s": time.time() - started,
    }
    if "validation" in err:
        doc["validation"] = err["validation"]
    path = benchinfo.save(f"inp_snap{suffix}.json", doc)
    print(f"saved {os.path.relpath(path, REPO)} and {os.path.relpath(npz, REPO)} "
          f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
