"""The ASE calculator: properties, conventions, caching, neighbour-list reuse, bad input."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import snnp
from conftest import potential


@pytest.fixture
def model():
    return snnp.SplineMEAM.from_lammps(potential("Si_1"))


@pytest.fixture
def atoms():
    a = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    a.rattle(0.05, seed=4)
    return a


def test_properties_follow_ase_conventions(model, atoms):
    atoms.calc = model.calculator()
    assert isinstance(atoms.calc, snnp.SNNPCalculator)
    assert set(snnp.SNNPCalculator.implemented_properties) == {
        "energy", "free_energy", "energies", "forces", "stress", "stresses", "extrapolation",
        "max_extrapolation"}
    e = atoms.get_potential_energy()
    assert atoms.get_potential_energy(force_consistent=True) == e
    assert atoms.get_potential_energies().sum() == pytest.approx(e, abs=1e-10)
    np.testing.assert_allclose(atoms.get_stresses().sum(axis=0), atoms.get_stress(), atol=1e-12)
    assert atoms.get_forces().shape == (64, 3)
    # ASE sign: a compressed crystal has negative (compressive) stress, a stretched one positive
    for scale, sign in ((0.97, -1), (1.03, 1)):
        strained = bulk("Si", "diamond", a=5.431 * scale, cubic=True)
        strained.calc = model.calculator()
        assert np.all(np.sign(strained.get_stress()[:3]) == sign)


def test_calculator_caches_results(model, atoms, monkeypatch):
    calls = []
    original = model.compute
    monkeypatch.setattr(model, "compute", lambda *a, **k: calls.append(1) or original(*a, **k))
    atoms.calc = model.calculator()
    atoms.get_potential_energy()
    atoms.get_forces()
    atoms.get_stress()
    assert len(calls) == 1
    atoms.positions[0] += 0.01
    atoms.get_forces()
    assert len(calls) == 2


def test_skin_reuse_gives_the_same_numbers_as_a_fresh_list(model, atoms):
    calc = model.calculator(skin=1.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        atoms.positions += 0.05 * rng.normal(size=atoms.positions.shape)
        calc.calculate(atoms, ["energy", "forces", "stress"])
        fresh = model.compute(atoms)
        assert calc.results["energy"] == pytest.approx(fresh["energy"], abs=1e-11)
        np.testing.assert_allclose(calc.results["forces"], fresh["forces"], atol=1e-12)
    assert calc.neighbors.n_builds < 5


def test_zero_volume_cell_gives_energy_but_no_stress(model):
    cluster = Atoms("Si3", positions=[[0, 0, 0], [2.3, 0, 0], [0, 2.3, 0.2]])
    cluster.calc = model.calculator()
    assert np.isfinite(cluster.get_potential_energy())
    with pytest.raises(ValueError, match="stress needs a cell with nonzero volume"):
        cluster.get_stress()


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.set_chemical_symbols(["O"] + ["Si"] * (len(a) - 1)),
     r"model knows only \['Si'\]; the structure contains O \(first at atom 0\)"),
    (lambda a: a.positions.__setitem__((3, 1), np.nan), "NaN or infinite .*atom 3"),
    (lambda a: a.set_cell(np.zeros((3, 3))), "zero volume"),
    (lambda a: a.positions.__setitem__(5, a.positions[6] + 0.5), "atoms 5 and 6 are 0.866 A apart, closer than the 1.5 A"),
])
def test_bad_structures_get_clear_errors(model, atoms, mutate, message):
    mutate(atoms)
    atoms.calc = model.calculator(strict=True)
    with pytest.raises(ValueError, match=message):
        atoms.get_forces()


def test_coincident_atoms_are_an_error_even_without_the_short_distance_check(model, atoms):
    atoms.positions[7] = atoms.positions[2]
    model.check_short_distances = False
    with pytest.raises(ValueError, match="atoms 2 and 7 sit at the same position"):
        model.compute(atoms)


def test_show_config_and_threads():
    cfg = snnp.show_config(file=open("/dev/null", "w"))
    assert isinstance(cfg["openmp"], bool) and cfg["max_threads"] >= 1
    snnp.set_num_threads(1)
    assert snnp.get_num_threads() == 1
    snnp.set_num_threads(0)
    assert snnp.get_num_threads() == cfg["max_threads"]
    with pytest.raises(ValueError):
        snnp.set_num_threads(-1)
