"""Where the data end: the ZBL core, the clamp of the learned terms, close approaches and the
extrapolation grade (docs/theory.md, "Where the data end")."""
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.stats import spearmanr

import snnp
from conftest import data_path
from models_for_tests import alloy, random_ladder_model, random_spline_meam, with_core
from snnp.core import ZBLCore, zbl, zbl_switched
from snnp.curves import crystal_pair_curve, dimer_curve, eos_curve, inward_drop, trimer_curve

ZOO = [f"{el}/{p}" for el in ("Li", "Mo", "Si") for p in snnp.models.LADDER]


def test_switched_zbl_reaches_zero_smoothly_and_matches_its_derivative():
    r_in, r_out = 1.6, 2.0
    r = np.linspace(0.2, 2.2, 4001)
    e, de = zbl_switched(r, 14, 8, r_in, r_out)
    h = 1e-6
    num = (zbl_switched(r + h, 14, 8, r_in, r_out)[0] - zbl_switched(r - h, 14, 8, r_in, r_out)[0]) / (2 * h)
    inside = np.abs(r - r_in) > 2 * h
    np.testing.assert_allclose(de[inside], num[inside], rtol=1e-6, atol=1e-6)
    assert np.all(de[r < r_out] < 0)                   # repulsive everywhere below r_out
    assert np.all(e[r >= r_out] == 0)
    near = zbl_switched(np.array([r_out - 1e-4]), 14, 8, r_in, r_out)
    assert abs(near[0][0]) < 1e-9 and abs(near[1][0]) < 1e-5   # value ~ d^3, slope ~ d^2
    # far inside, the shift is the only difference from the bare ZBL
    assert e[0] - zbl(0.2, 14, 8) == pytest.approx(e[100] - zbl(r[100], 14, 8), rel=1e-12)


@pytest.mark.parametrize("species", [["Si"], ["Si", "O"]])
def test_the_kernel_core_equals_the_numpy_reference(species):
    """An unfitted preset has zero splines: its energy is the core's alone."""
    model = snnp.presets(species, cutoff=4.0)["snnp_small"]
    n = len(species)
    model.core = ZBLCore(species, {(a, b): (1.2 + 0.1 * (a + b), 1.7 + 0.1 * (a + b))
                                   for a in range(n) for b in range(a, n)})
    pair = species[-1]
    for r in (0.3, 0.8, 1.25, 1.5, 1.75, 1.85):
        atoms = Atoms([species[0], pair], positions=[[0, 0, 0], [r, 0, 0]])
        res = model.compute(atoms, ("energy", "forces"))
        e, de = model.core.energy(np.array([r]), 0, n - 1)
        assert res["energy"] == pytest.approx(e[0], rel=1e-12, abs=1e-12)
        assert res["forces"][1, 0] == pytest.approx(-de[0], rel=1e-12, abs=1e-12)


def test_learned_terms_are_frozen_below_the_clamp_and_untouched_above_it():
    model = with_core(random_spline_meam(["Cu"], 7), r_in=1.9, r_out=2.2, clamp_width=0.2)
    bare = model.copy()
    bare.core = None
    r = np.linspace(0.5, 3.5, 61)
    _, e = dimer_curve(model, r)
    _, e_bare = dimer_curve(bare, r)
    core = model.core.energy(r)[0]
    learned = e - core
    below = r <= 2.0                                   # r_c = r_out - w
    np.testing.assert_allclose(learned[below], learned[below][-1], atol=1e-12)
    assert np.ptp(learned[(r > 2.0) & (r < 2.2)]) > 1e-6  # the clamp's window moves them
    above = r >= 2.2                                   # from r_out up: the bare model
    np.testing.assert_allclose(e[above], e_bare[above], rtol=0, atol=1e-12)


def test_close_approach_warns_once_counts_and_strict_raises():
    model = snnp.load("Si/smeam")
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.positions[1] = atoms.positions[0] + [0.9, 0.0, 0.0]
    calc = model.calculator()
    atoms.calc = calc
    with pytest.warns(snnp.CloseApproachWarning, match="atoms 0 and 1 are 0.9 A apart"):
        e1 = atoms.get_potential_energy()
    atoms.positions[1, 0] -= 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no second warning
        e2 = atoms.get_potential_energy()
    assert np.isfinite([e1, e2]).all() and e2 > e1      # closer is higher
    assert calc.close_approaches == 2 and calc.closest_approach[0] == pytest.approx(0.8)
    atoms.calc = model.calculator(strict=True)
    with pytest.raises(ValueError, match="atoms 0 and 1 are 0.8 A apart, closer than the 1.829 A"):
        atoms.get_forces()
    atoms.calc = model.calculator()
    atoms.positions[1] = atoms.positions[0]
    with pytest.raises(ValueError, match="sit at the same position"):
        atoms.get_forces()


@pytest.mark.parametrize("name", ZOO)
def test_zoo_models_push_atoms_apart_below_their_data(name):
    """Below the clamp (r_c = r_out - w, where the learned radial terms are frozen) every zoo
    model's energy rises strictly as a pair comes together, down to 0.3 A, alone (dimer),
    beside a third atom (trimer) and inside the crystal, with repulsive forces.  From the
    crystal's nearest-neighbour distance in, the crystal pair rises all the way, the dimer and
    trimer to within 1 meV; the crystal compressed from V/V0 = 1 to 0.4 rises too
    (scripts/short_range_report.py)."""
    model = snnp.load(name)
    r_c = model.short_range_limit - model.core.clamp_width
    crystal = snnp.curves.reference_crystal(model.species[0])
    nn = snnp.curves._nearest_neighbour(crystal)
    r = np.linspace(0.3, nn, 160)
    below = r <= r_c
    for curve in (dimer_curve, trimer_curve, crystal_pair_curve):
        x, e = curve(model, r)
        assert np.all(np.diff(e[below]) < 0), f"{curve.__name__} not rising inward below {r_c:.3f} A"
        if curve is crystal_pair_curve:
            assert inward_drop(x, e)[0] == 0.0
        else:
            assert inward_drop(x, e)[0] < 1e-3, curve.__name__
    atoms = Atoms([model.species[0]] * 2, positions=[[0, 0, 0], [0.3, 0, 0]])
    assert model.compute(atoms, ("forces",))["forces"][1, 0] > 0      # pushed apart
    v, e = eos_curve(model, np.linspace(0.4, 1.0, 31))
    assert inward_drop(v, e)[0] == 0.0


@pytest.mark.parametrize("name", ZOO)
def test_zoo_crystals_cost_energy_to_cleave_all_the_way_apart(name):
    """Every one-element zoo model's reference crystal cleaved along (100), (110) and (111)
    (``snnp.curves.cleavage_curve``, out to the cutoff plus 1 A): a positive surface energy,
    reached without the energy falling on the way out by more than 5% of it (the largest such
    drop in the zoo is Si ``snnp_medium``'s 0.05 J/m^2 on (100), 3%)."""
    rep = snnp.curves.short_range_report(snnp.load(name))
    for plane in ("cleavage_100", "cleavage_110", "cleavage_111"):
        gamma, drop = rep[plane]["surface_energy"], rep[plane]["inward_drop"]
        assert gamma > 0.1, f"{plane}: surface energy {gamma:.3f} J/m^2"
        assert drop <= 0.05 * gamma, f"{plane}: falls {drop:.3f} J/m^2 on the way out " \
                                     f"(at {rep[plane]['drop_at']:.2f} A apart)"


def test_cleavage_probes_are_met_by_a_fit_that_carries_them():
    """Rung 0 on EMT copper, 40 iterations: fitted on the labels (and the repulsion probes)
    alone, its crystal cleaved along (100), (110) and (111) falls in energy on the way apart
    (seen with ASE 3.29: cleavage penalty 7.3 (eV/A)^2); with Loss(cleavage=1e-3) the penalty
    falls 29-fold (0.25) and the test errors stay within 20% (seen: 16.4 meV/atom and
    0.351 eV/A against 23.8 and 0.387)."""
    from snnp.probes import build_cleavages
    from snnp.training import Batch, Loss, repulsion_penalty
    train, test = snnp.datasets.emt_copper(seed=2).split(0.2, seed=0)
    penalty, errors = {}, {}
    for weight in (0.0, 1e-3):
        model = snnp.presets(["Cu"], cutoff=4.6)["smeam"]
        model.fit(train, max_iter=40, log=False,
                  loss=Loss(forces=0.01, repulsion=1e-4, cleavage=weight))
        cleavages = build_cleavages(train.structures, model.cutoff)
        penalty[weight] = repulsion_penalty(model, Batch(cleavages, model), Loss(cleavage=1.0))
        score = model.score(test)
        errors[weight] = (score["energy_meV_per_atom"]["rmse"], score["forces_eV_per_A"]["rmse"])
        fit = model.provenance["fit"]
        assert fit["loss"].get("cleavage", 0.0) == weight
        assert len(fit.get("probe_cleavages", [])) == (27 if weight else 0)
    assert penalty[0.0] > 1.0, f"premise: labels alone violate the cleavages ({penalty[0.0]})"
    assert penalty[1e-3] < 0.1 * penalty[0.0]
    assert errors[1e-3][0] < 1.2 * errors[0.0][0] and errors[1e-3][1] < 1.2 * errors[0.0][1]
    with pytest.raises(ValueError, match="Loss\\(cleavage=...\\) cannot be combined"):
        snnp.presets(["Cu"], cutoff=4.6)["smeam"].fit(
            train, max_iter=1, log=False, loss=Loss(prior=0.1, cleavage=1e-3),
            prior=snnp.presets(["Cu"], cutoff=4.6)["smeam"])
    molecules = snnp.Dataset([snnp.Structure(Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]]),
                                             energy=-1.0)])
    with pytest.raises(ValueError, match="no periodic cell"):
        snnp.presets(["Cu"], cutoff=4.6)["smeam"].fit(molecules, max_iter=1, log=False,
                                                       loss=Loss(cleavage=1e-3))


def test_pair_approach_probes_reach_from_below_the_data_edge_to_the_first_shell():
    """Dimers and trimers (third atom at the data's first-shell distance d) with the pair at
    r_out - 2w .. d, at most w/2 apart: the fit sees a pair pushed in from where the crystal
    holds it down to below the core's outer radius."""
    from snnp.probes import _first_shell, approach_distances, build_probes
    train = snnp.datasets.emt_copper(scale=0.2, seed=2)
    model = snnp.presets(["Cu"], cutoff=4.5)["smeam"]
    model.core = ZBLCore.from_data(["Cu"], train.structures)
    (_, r_out), w = model.core.radii[(0, 0)], model.core.clamp_width
    shell = _first_shell(train.structures, model.cutoff)
    assert shell > r_out + w                              # the premise: the range is widened
    r = approach_distances(r_out, w, shell)
    assert r[0] == pytest.approx(r_out - 2 * w) and r[-1] == pytest.approx(shell)
    assert np.all(np.diff(r) <= 0.5 * w + 1e-12) and np.all(np.diff(r) > 0)
    np.testing.assert_allclose(approach_distances(r_out, w), np.linspace(r_out - 2 * w,
                                                                         r_out + w, 7))
    probes = build_probes(model.species, model.core, train.structures, model.cutoff)
    dimers = [p for p in probes if p.kind.startswith("dimer")]
    trimers = [p for p in probes if p.kind.startswith("trimer")]
    assert len(dimers) == len(trimers) == len(r)
    for p, x in zip(dimers, r):
        assert p.distance == pytest.approx(x) and p.atoms.get_distance(0, 1) == pytest.approx(x)
    for p in trimers:
        assert p.atoms.get_distance(0, 2) == pytest.approx(shell)


@pytest.mark.parametrize("hkl, face_coordination", [((1, 0, 0), 2), ((1, 1, 0), 3),
                                                      ((1, 1, 1), 3)])
def test_cleavage_slab_cuts_diamond_where_fewest_bonds_break_and_keeps_the_bulk_registry(
        hkl, face_coordination):
    """Diamond silicon cleaved along (100), (110) and (111): the cut breaks the fewest bonds
    (two per face atom on (100), one on (110) and on (111), the shuffle plane), the two halves
    sit in bulk registry (together, only the outer faces are short of neighbours), and pulled
    apart beyond a bond length the inner faces lose the same bonds as the outer ones."""
    from ase.build import bulk
    from ase.neighborlist import neighbor_list
    from snnp.probes import cleavage_slab
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    shell = 5.43 * np.sqrt(3) / 4
    together, upper = cleavage_slab(crystal, hkl, 4.0, shell, 0.0)
    apart, upper_apart = cleavage_slab(crystal, hkl, 4.0, shell, 1.5 * shell)
    assert len(together) == len(apart) and upper.sum() == len(together) // 2
    np.testing.assert_array_equal(upper, upper_apart)

    def coordination(atoms):
        return np.bincount(neighbor_list("i", atoms, 1.1 * shell), minlength=len(atoms))

    c0, c1 = coordination(together), coordination(apart)
    assert set(c0) == {face_coordination, 4} and set(c1) == {face_coordination, 4}
    faces = np.count_nonzero(c0 < 4)
    assert np.count_nonzero(c1 < 4) == 2 * faces        # the inner faces are new
    thickness = np.ptp(apart.positions @ apart.cell.array[2] / np.linalg.norm(apart.cell[2]))
    assert apart.cell.lengths()[2] > thickness + 4.0   # the vacuum exceeds the cutoff


def test_cleavage_probes_rise_under_a_physical_potential_and_ask_only_for_a_rise():
    """The cleavage probes of EMT copper: an fcc crystal pulled apart along (100), (110) and
    (111) at 0.1 .. 1.5 first shells.  Under EMT itself (a physical potential) the energy
    rises along every probe's direction (dE/dlambda = -sum F.u >= 0; 0 once the halves are
    beyond its cutoff), so a cleavage's hinge (margin 0) is met."""
    from ase.calculators.emt import EMT
    from snnp.probes import (CLEAVAGE_PLANES, CLEAVAGE_SEPARATIONS, CLEAVAGE_MARGIN,
                             build_cleavages)
    train = snnp.datasets.emt_copper(scale=0.2, seed=2)
    probes = build_cleavages(train.structures, 4.5)
    assert len(probes) == len(CLEAVAGE_PLANES) * len(CLEAVAGE_SEPARATIONS)
    assert all(p.cleavage and p.margin == CLEAVAGE_MARGIN == 0.0 and p.distance is None
               for p in probes)
    slopes = []
    for p in probes:
        atoms = p.atoms.copy()
        atoms.calc = EMT()
        slopes.append(-np.sum(atoms.get_forces() * p.approach))
    # beyond EMT's cutoff the halves no longer interact: a slope of zero to round-off
    assert min(slopes) > -1e-9, slopes
    per_plane = np.reshape(slopes, (len(CLEAVAGE_PLANES), len(CLEAVAGE_SEPARATIONS)))
    assert np.all(per_plane[:, :3] > 0.1)           # a bond length apart: a real pull back
    assert np.all(per_plane[:, 1] > per_plane[:, -1])


def test_repulsion_probes_are_met_by_a_fit_that_carries_them():
    """Rung 0 on EMT copper, 40 iterations: fitted on the labels alone its dimers, trimers and
    compressed cells violate the probes' rise (seen with ASE 3.29: penalty 90 in GPa^2 and
    (eV/A)^2 over 36 pair approaches and 44 cells); fitted with Loss(repulsion=1e-4) the
    penalty falls 600-fold (0.14) and the test errors stay within 20% (seen: 23.8 meV/atom and
    0.387 eV/A against 21.8 and 0.391).
    Whether labels alone violate depends on the data: EMT copper of seed 2 does (seeds 0 and 1
    give 0.02 and 0.2), so the first assertion checks the premise."""
    from snnp.probes import build_probes
    from snnp.training import Batch, Loss, repulsion_penalty
    train, test = snnp.datasets.emt_copper(seed=2).split(0.2, seed=0)
    penalty, errors = {}, {}
    for weight in (0.0, 1e-4):
        model = snnp.presets(["Cu"], cutoff=4.6)["smeam"]
        model.fit(train, max_iter=40, log=False, loss=Loss(forces=0.01, repulsion=weight))
        probes = build_probes(model.species, model.core, train.structures, model.cutoff)
        approaches = [p for p in probes if p.approach is not None]
        assert len(probes) - len(approaches) == 4 * 11   # 4 cells x 11 volumes
        penalty[weight] = repulsion_penalty(model, Batch(probes, model), Loss(repulsion=1.0))
        score = model.score(test)
        errors[weight] = (score["energy_meV_per_atom"]["rmse"], score["forces_eV_per_A"]["rmse"])
        assert model.provenance["fit"]["loss"].get("repulsion", 0.0) == weight
    assert penalty[0.0] > 10, f"premise: labels alone violate the probes ({penalty[0.0]})"
    assert penalty[1e-4] < 1e-2 * penalty[0.0]
    assert errors[1e-4][0] < 1.2 * errors[0.0][0] and errors[1e-4][1] < 1.2 * errors[0.0][1]
    with pytest.raises(ValueError, match="cannot be combined"):
        snnp.presets(["Cu"], cutoff=4.6)["smeam"].fit(
            train, max_iter=1, log=False, loss=Loss(prior=0.1, repulsion=1e-3),
            prior=snnp.presets(["Cu"], cutoff=4.6)["smeam"])
    with pytest.raises(ValueError, match="short-range core"):
        snnp.presets(["Cu"], cutoff=4.6, core=False)["smeam"].fit(
            train, max_iter=1, log=False, loss=Loss(repulsion=1e-3), core=None)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_energy_does_not_dip_where_the_core_takes_over(name):
    """Between r_c and r_out (the shortest training distance) the learned terms fade out and
    the core fades in: the energy of a dimer and of a trimer rises there as the pair closes."""
    model = snnp.load(name)
    r_out = model.short_range_limit
    r = np.linspace(r_out - 2 * model.core.clamp_width, r_out, 200)
    for curve in (dimer_curve, trimer_curve):
        x, e = curve(model, r)
        assert inward_drop(x, e)[0] < 1e-3, curve.__name__


def test_kernel_grade_equals_the_reference_and_bounds_training_atoms():
    model = random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 2, seed=3)
    data = [alloy(["Cu", "Ag"], s) for s in range(4)]
    grade = snnp.ExtrapolationGrade.from_data(model, data, n_centres=16)
    model.extrapolation = grade
    for atoms in data:
        res = model.compute(atoms, ("energy", "extrapolation"))
        ref = grade.grade_filters(model.descriptors(atoms), model._atoms_species(atoms))
        np.testing.assert_allclose(res["extrapolation"], ref, rtol=1e-12, atol=1e-12)
        assert res["max_extrapolation"] <= 1.0 + 1e-12
    squeezed = alloy(["Cu", "Ag"], 9)
    squeezed.set_cell(squeezed.cell.array * 0.85, scale_atoms=True)
    assert model.compute(squeezed, ("extrapolation",))["max_extrapolation"] > 1.5
    atoms = alloy(["Cu", "Ag"], 9)
    atoms.calc = model.calculator(extrapolation=True)
    atoms.get_potential_energy()
    assert atoms.calc.results["extrapolation"].shape == (len(atoms),)
    plain = random_spline_meam(["Cu"], 1)
    with pytest.raises(ValueError, match="no extrapolation grade reference"):
        plain.compute(bulk("Cu", cubic=True), ("energy", "extrapolation"))
    with pytest.raises(ValueError, match="extrapolation=True needs a model"):
        plain.calculator(extrapolation=True)


def test_grade_ranks_the_si_test_structures_by_energy_error():
    """Si/snnp_large's largest per-atom grade of each mlearn Si test structure ranks with the
    structure's energy error no worse than FilterCoverage (a k-d tree over every training atom)
    on the same model, to 0.05, a third of the figures' standard error over 25 structures, and
    positively (seen: 0.34 and 0.36 on the zoo's force-weighted fit, 0.47 and 0.48 on the fit
    it continued; how well errors follow the data's edge depends on the model, docs/accuracy.md,
    "Does the grade rank errors?"; scripts/short_range_report.py)."""
    from snnp.coverage import FilterCoverage
    test = snnp.Dataset.from_mlearn(data_path("mlearn", "Si", "test.json"))
    model = snnp.load("Si/snnp_large")
    err, grade = [], []
    for st in test:
        res = model.compute(st.atoms, ("energy", "extrapolation"))
        err.append(abs(res["energy"] - st.energy) / len(st.atoms))
        grade.append(res["max_extrapolation"])
    train = snnp.Dataset.from_mlearn(data_path("mlearn", "Si", "training.json"))
    cover = FilterCoverage(model, train)
    reference = [cover.grade(st.atoms).max() for st in test]
    rho, rho_reference = spearmanr(err, grade)[0], spearmanr(err, reference)[0]
    assert rho > 0 and rho >= rho_reference - 0.05


def test_fit_sets_the_core_from_the_data_and_attaches_a_grade():
    data = snnp.datasets.emt_copper(scale=0.2, seed=2)
    model = snnp.presets(["Cu"], cutoff=4.5)["smeam"]
    assert model.core is not None and model.core.auto
    model.fit(data, max_iter=5, log=False)
    shortest = min(snnp.core.shortest_distances(["Cu"], data.structures).values())
    assert model.core.radii[(0, 0)][1] == pytest.approx(shortest) and not model.core.auto
    assert model.extrapolation is not None and model.extrapolation.n_centres == 24
    grades = np.concatenate([model.compute(s.atoms, ("extrapolation",))["extrapolation"]
                             for s in data])
    assert grades.max() <= 1.0 + 1e-9
    # a core the user set is kept; core=None leaves the model without one
    mine = ZBLCore(["Cu"], {(0, 0): (1.5, 1.9)})
    model.core = mine
    model.fit(data, max_iter=2, log=False)
    assert model.core == mine
    bare = snnp.presets(["Cu"], cutoff=4.5, core=False)["smeam"]
    bare.fit(data, max_iter=2, core=None, extrapolation=0, log=False)
    assert bare.core is None and bare.extrapolation is None


INP_ZOO = [f"InP/{p}" for p in snnp.models.LADDER]


@pytest.mark.parametrize("name", INP_ZOO)
def test_inp_zoo_models_push_every_pair_apart_below_their_data(name):
    """The two-element zoo models: below each pair's r_c (its own shortest training distance
    less the clamp width) the In-In, In-P and P-P dimers and trimers rise as the pair comes
    together, down to 0.3 A; inside zinc-blende InP an In-P bond pushed in rises all the way
    from the nearest-neighbour distance."""
    model = snnp.load(name)
    crystal = snnp.curves.reference_crystal("InP")
    nn = snnp.curves._nearest_neighbour(crystal)
    for (a, b), (_, r_out) in model.core.radii.items():
        pair = (model.species[a], model.species[b])
        r = np.linspace(0.3, r_out - model.core.clamp_width, 60)
        x, e = dimer_curve(model, r, species=pair)
        assert np.all(np.diff(e) < 0), f"{'-'.join(pair)} dimer not rising inward"
        x, e = trimer_curve(model, r, species=[*pair, "P" if pair[0] == "In" else "In"],
                            r_fixed=nn)
        assert np.all(np.diff(e) < 0), f"{'-'.join(pair)} trimer not rising inward"
    x, e = crystal_pair_curve(model, np.linspace(0.3, nn, 80), crystal)
    assert inward_drop(x, e)[0] == 0.0
