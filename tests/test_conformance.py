"""The conformance suite every model class runs: derivatives, invariances, sums, files.

Models come from models_for_tests.MODELS; a new rung adds itself there.
"""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

try:
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
except ImportError:     # ASE < 3.23 (pyproject allows ase>=3.22): the calculator's own methods
    def calculate_numerical_forces(atoms, eps):
        return atoms.calc.calculate_numerical_forces(atoms, d=eps)

    def calculate_numerical_stress(atoms, eps):
        return atoms.calc.calculate_numerical_stress(atoms, d=eps)

import snnp
from models_for_tests import MODELS, SMOOTH

PROPS = ("energy", "energies", "forces", "stress", "stresses")


@pytest.fixture(params=list(MODELS))
def case(request):
    make_model, make_atoms = MODELS[request.param]
    return request.param, make_model(), make_atoms()


def _compute(model, atoms):
    return model.compute(atoms, PROPS)


def test_forces_equal_finite_differences(case):
    _, model, atoms = case
    atoms.calc = model.calculator()
    forces = atoms.get_forces()
    numeric = calculate_numerical_forces(atoms, eps=1e-5)
    assert np.abs(forces).max() > 0.05
    assert np.abs(forces - numeric).max() <= 1e-6 * np.abs(forces).max()


def test_stress_equals_finite_differences(case):
    _, model, atoms = case
    atoms.calc = model.calculator()
    stress = atoms.get_stress()
    numeric = calculate_numerical_stress(atoms, eps=1e-6)
    assert np.abs(stress).max() > 1e-3
    assert np.abs(stress - numeric).max() <= 1e-6 * np.abs(stress).max()


def test_per_atom_energies_and_stresses_sum_to_totals(case):
    _, model, atoms = case
    r = _compute(model, atoms)
    assert r["energies"].sum() == pytest.approx(r["energy"], abs=1e-10)
    np.testing.assert_allclose(r["stresses"].sum(axis=0), r["stress"], atol=1e-12)
    np.testing.assert_allclose(r["forces"].sum(axis=0), 0.0, atol=1e-10)


def test_translation_rotation_permutation_and_image_invariance(case, rng):
    _, model, atoms = case
    ref = _compute(model, atoms)

    moved = atoms.copy()
    moved.positions += rng.normal(size=3) * 3.7
    r = _compute(model, moved)
    np.testing.assert_allclose(r["energies"], ref["energies"], atol=1e-11)
    np.testing.assert_allclose(r["forces"], ref["forces"], atol=1e-11)

    R = Rotation.random(random_state=7).as_matrix()
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.array @ R.T)
    rotated.positions = atoms.positions @ R.T
    r = _compute(model, rotated)
    np.testing.assert_allclose(r["energies"], ref["energies"], atol=1e-11)
    np.testing.assert_allclose(r["forces"], ref["forces"] @ R.T, atol=1e-11)
    from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress
    expected = full_3x3_to_voigt_6_stress(R @ voigt_6_to_full_3x3_stress(ref["stress"]) @ R.T)
    np.testing.assert_allclose(r["stress"], expected, atol=1e-12)

    perm = rng.permutation(len(atoms))
    r = _compute(model, atoms[perm])
    np.testing.assert_allclose(r["energies"], ref["energies"][perm], atol=1e-11)
    np.testing.assert_allclose(r["forces"], ref["forces"][perm], atol=1e-11)

    imaged = atoms.copy()
    imaged.positions += rng.integers(-2, 3, size=(len(atoms), 3)) @ atoms.cell.array
    r = _compute(model, imaged)
    np.testing.assert_allclose(r["energies"], ref["energies"], atol=1e-11)
    np.testing.assert_allclose(r["forces"], ref["forces"], atol=1e-11)
    np.testing.assert_allclose(r["stress"], ref["stress"], atol=1e-13)


def test_results_do_not_depend_on_thread_count(case):
    _, model, atoms = case
    atoms = atoms.repeat((1 + 600 // len(atoms), 1, 1))     # enough atoms for 2 threads to run
    try:
        results = []
        for threads in (1, 2):
            snnp.set_num_threads(threads)
            results.append(_compute(model, atoms))
    finally:
        snnp.set_num_threads(0)
    for key in ("energies", "forces", "stress"):
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=0, atol=1e-12)


def test_save_load_round_trip_is_exact(case, tmp_path):
    name, model, atoms = case
    path = tmp_path / f"{name}.json"
    model.save(path)
    loaded = snnp.load(path)
    assert type(loaded) is type(model) and loaded == model
    assert loaded.n_params == model.n_params
    np.testing.assert_array_equal(_compute(loaded, atoms)["forces"], _compute(model, atoms)["forces"])


@pytest.mark.parametrize("name", SMOOTH)
def test_energy_and_forces_are_continuous_across_the_cutoff(name):
    """A dimer pulled through the cutoff: energy and force go smoothly to zero."""
    from ase import Atoms
    model = MODELS[name][0]()
    rc = model.cutoff
    a, b = model.species[0], model.species[-1]
    energies, forces = [], []
    for r in rc + np.array([-2e-4, -1e-4, -1e-6, 1e-6]):
        dimer = Atoms(a + b, positions=[[0, 0, 0], [r, 0, 0]])
        res = model.compute(dimer, ("energy", "forces"))
        energies.append(res["energy"] - model.e0[[0, -1]].sum())
        forces.append(res["forces"][1, 0])
    energies, forces = np.array(energies), np.array(forces)
    assert energies[-1] == 0.0 and forces[-1] == 0.0
    # value and slope pinned: force vanishes linearly, energy quadratically at the cutoff
    assert abs(forces[0]) > 0 and abs(energies[0]) > 0
    assert abs(forces[2]) <= 0.02 * abs(forces[0])            # 100x closer: <= 1/50 the force
    assert abs(energies[2]) <= 1e-3 * abs(energies[0])        # 100x closer: <= 1/1000 the energy
    assert abs(energies[0]) > abs(energies[1]) > abs(energies[2])
