"""Rung 0 equals LAMMPS `pair_style meam/spline`, computed here by the real LAMMPS.

Tolerances from the foundation issue: energy 1e-8 eV/atom, forces 1e-8 eV/A, stress 1e-9 eV/A^3.
"""
import numpy as np
import pytest

import snnp
from conftest import potential
from structures import POTENTIALS, cases

E_TOL, F_TOL, S_TOL = 1e-8, 1e-8, 1e-9


def _model(pot):
    elements = POTENTIALS[pot][0]
    return snnp.SplineMEAM.from_lammps(potential(pot), species=elements)


@pytest.mark.parametrize("pot, name", list(cases()))
def test_equals_lammps(pot, name, lammps):
    elements, make = POTENTIALS[pot]
    atoms = make()[name]
    model = _model(pot)
    ours = model.compute(atoms, ("energy", "energies", "forces", "stress"))
    ref = lammps(atoms, potential(pot), elements)
    n = len(atoms)
    assert abs(ours["energy"] - ref["energy"]) / n <= E_TOL
    np.testing.assert_allclose(ours["energies"], ref["energies"], rtol=0, atol=E_TOL)
    np.testing.assert_allclose(ours["forces"], ref["forces"], rtol=0, atol=F_TOL)
    if ref["stress"] is not None:
        np.testing.assert_allclose(ours["stress"], ref["stress"], rtol=0, atol=S_TOL)
    # the structure must really exercise the potential
    assert np.abs(ours["energies"]).max() > 0.1


def test_known_lammps_value_si1_diamond():
    """The value the shared data README quotes for Si_1, without needing LAMMPS installed."""
    from ase.build import bulk
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    energy = _model("Si_1").compute(atoms, ("energy",))["energy"]
    assert energy == pytest.approx(-294.8348548680, abs=64 * 1e-10)


@pytest.mark.parametrize("pot, fmt", [(p, f) for p in POTENTIALS for f in ("new", "old")
                                      if f == "new" or len(POTENTIALS[p][0]) == 1])
def test_lammps_reads_written_files(pot, fmt, lammps, tmp_path):
    elements, make = POTENTIALS[pot]
    model = _model(pot)
    path = tmp_path / f"written.{fmt}.meam.spline"
    model.to_lammps(path, format=fmt)
    atoms = next(iter(make().values())) if pot != "TiO" else make()["O_interstitials_rattled"]
    original = lammps(atoms, potential(pot), elements)
    rewritten = lammps(atoms, path, elements)
    assert rewritten["energy"] == pytest.approx(original["energy"], abs=1e-10)
    np.testing.assert_allclose(rewritten["forces"], original["forces"], atol=1e-10)


def test_extrapolation_below_first_knot_equals_lammps(lammps):
    """A LAMMPS file has no core: below the first knot its splines continue linearly, as in
    LAMMPS; strict evaluation refuses the structure instead."""
    from ase.build import bulk
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.positions[1] = atoms.positions[0] + [1.1, 0.9, 0.8]      # 1.63 A, below Si_2's 2.07 A
    model = _model("Si_2")
    assert model.core is None
    with pytest.raises(ValueError, match="atoms 0 and 1 are 1.631 A apart"):
        model.compute(atoms, strict=True)
    ours = model.compute(atoms, ("energy", "forces"))
    assert ours["closest_pair"] == (pytest.approx(1.6309, abs=1e-4), 0, 1)
    ref = lammps(atoms, potential("Si_2"), ["Si"])
    assert ours["energy"] == pytest.approx(ref["energy"], abs=8 * E_TOL)
    np.testing.assert_allclose(ours["forces"], ref["forces"], atol=F_TOL)


@pytest.mark.parametrize("name", ["Mo/smeam", "Li/smeam", "Si/smeam"])
def test_fitted_zoo_rung_0_runs_in_lammps(name, lammps, tmp_path):
    """A fitted rung 0 exports to meam/spline (its e0 left out) and LAMMPS gives its forces,
    stress and, shifted by e0 per atom, its energy."""
    from ase.build import bulk
    model = snnp.load(name)
    el = name.split("/")[0]
    with pytest.raises(ValueError, match="drop_e0"):
        model.to_lammps(tmp_path / "x.meam.spline")
    path = tmp_path / f"{el}.meam.spline"
    model.to_lammps(path, drop_e0=True)
    lattice = {"Mo": ("bcc", 3.16), "Li": ("bcc", 3.44), "Si": ("diamond", 5.47)}[el]
    atoms = bulk(el, lattice[0], a=lattice[1], cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    ours = model.compute(atoms, ("energy", "forces", "stress"))
    ref = lammps(atoms, path, [el])
    assert ref["energy"] == pytest.approx(ours["energy"] - len(atoms) * model.e0[0], abs=1e-8)
    np.testing.assert_allclose(ref["forces"], ours["forces"], atol=1e-9)
    np.testing.assert_allclose(ref["stress"], ours["stress"], atol=1e-10)
