"""The ladder is one family: rungs reduce to each other, filters match the NumPy splines."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import snnp
from conftest import potential
from models_for_tests import alloy, random_ladder_model, si_cell, tio_cell

PROPS = ("energy", "energies", "forces", "stress")


@pytest.mark.parametrize("name, make_atoms", [("Si_1", si_cell), ("TiO", tio_cell)])
def test_zero_mlp_correction_equals_spline_meam(name, make_atoms):
    smeam = snnp.SplineMEAM.from_lammps(potential(name))
    climbed = snnp.SplineMEAMNN.from_spline_meam(smeam, widths=(8, 8))
    assert np.all(climbed.mlp.weights[0][-1][0] == 0)
    atoms = make_atoms()
    a, b = smeam.compute(atoms, PROPS), climbed.compute(atoms, PROPS)
    for key in PROPS:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-14, atol=1e-13)
    assert climbed.n_params > smeam.n_params


def test_snnp_reproduces_a_spline_meam_with_the_same_filters():
    """SNNP with the single radial and angular filters of a spline-MEAM and a network set to
    the embedding U(n) = c n gives the spline-MEAM's energies, forces and stress."""
    base = snnp.SplineMEAM.from_lammps(potential("Si_1"))
    c = -1.7
    linear_U = [snnp.Spline(-5.0, 5.0, [-5.0 * c, 5.0 * c], c, c)]
    smeam = snnp.SplineMEAM(["Si"], base.phi, base.rho, linear_U, base.f, base.g)
    mlp = snnp.MLPEmbedding(1, 2, widths=(1,), activation="linear",
                            weights=[[([[1.0, 1.0]], [0.0]), ([[c]], [0.0])]])
    net = snnp.SNNP(["Si"], smeam.filters, mlp, pair=smeam.pair)
    atoms = si_cell()
    a, b = smeam.compute(atoms, PROPS), net.compute(atoms, PROPS)
    for key in PROPS:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-12)
    assert abs(a["energy"]) > 1.0


def test_descriptors_equal_numpy_spline_sums():
    """G_i of a trimer from the kernel equals sums of NumPy-evaluated filters."""
    model = random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 2, seed=3)
    atoms = Atoms("CuAgAg", positions=[[0, 0, 0], [2.4, 0.2, 0], [-0.5, 2.6, 0.4]])
    G = model.descriptors(atoms)
    x = atoms.positions
    F = model.filters
    for i in range(3):
        others = [j for j in range(3) if j != i]
        sp = model.species_indices(atoms.get_chemical_symbols())
        d = [x[j] - x[i] for j in others]
        r = [np.linalg.norm(v) for v in d]
        R = sum(np.array([s(r[n]) for s in F.rho[sp[j]]]) for n, j in enumerate(others))
        cos = np.dot(d[0], d[1]) / (r[0] * r[1])
        j, l = others
        key = (min(sp[j], sp[l]), max(sp[j], sp[l]))
        A = np.array([F.f[sp[j]][k](r[0]) * F.f[sp[l]][k](r[1]) * F.g[key][k](cos)
                      for k in range(F.n_angular)])
        np.testing.assert_allclose(G[i], np.concatenate([R, A]), rtol=1e-12, atol=1e-14)


def test_descriptors_with_a_short_angular_cutoff_equal_numpy_sums():
    """Angular filters ending at 3.4 A inside a 4.6 A cutoff: the kernel skips pairs beyond
    3.4 A in its triplets; G must still equal the full NumPy sums over every pair."""
    from ase.neighborlist import neighbor_list
    model = random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 3, seed=18, angular_cutoff=3.4)
    assert model.filters.f[0][0].x1 == 3.4 and model.cutoff == 4.6
    atoms = alloy(["Cu", "Ag"], 13)
    G = model.descriptors(atoms)
    F, sp = model.filters, model.species_indices(atoms.get_chemical_symbols())
    i_list, j_list, D = neighbor_list("ijD", atoms, model.cutoff)
    for i in range(len(atoms)):
        sel = i_list == i
        js, ds = j_list[sel], D[sel]
        rs = np.linalg.norm(ds, axis=1)
        R = sum(np.array([s(r) for s in F.rho[sp[j]]]) for j, r in zip(js, rs))
        A = np.zeros(F.n_angular)
        beyond = 0
        for a in range(len(js)):
            for b in range(a):
                beyond += max(rs[a], rs[b]) > 3.4
                cos = np.dot(ds[a], ds[b]) / (rs[a] * rs[b])
                key = (min(sp[js[a]], sp[js[b]]), max(sp[js[a]], sp[js[b]]))
                A += [F.f[sp[js[a]]][k](rs[a]) * F.f[sp[js[b]]][k](rs[b]) * F.g[key][k](cos)
                      for k in range(F.n_angular)]
        assert beyond > 0
        np.testing.assert_allclose(G[i], np.concatenate([R, A]), rtol=1e-11, atol=1e-12)


def test_presets_with_an_angular_cutoff_end_every_rungs_angular_filters_there():
    full = snnp.presets(["Si"], cutoff=5.0)
    short = snnp.presets(["Si"], cutoff=5.0, angular_cutoff=3.5)
    for name, model in short.items():
        assert {s.x1 for bank in model.filters.f for s in bank} == {3.5}, name
        assert {s.x1 for bank in model.filters.rho for s in bank} == {5.0}, name
        assert model.n_params == full[name].n_params and model.cutoff == 5.0
    with pytest.raises(ValueError, match="angular_cutoff must lie in"):
        snnp.presets(["Si"], cutoff=5.0, angular_cutoff=6.0)


def test_embedding_gradient_matches_finite_differences():
    model = random_ladder_model(snnp.SplineMEAMNN, ["Cu", "Ag"], 2, 2, seed=5)
    rng = np.random.default_rng(1)
    G = rng.normal(size=(5, 4))
    e, dG = model.embedding_energy(G, species=1)
    h = 1e-6
    for k in range(4):
        step = np.zeros(4)
        step[k] = h
        fd = (model.embedding_energy(G + step, 1)[0] - model.embedding_energy(G - step, 1)[0]) / (2 * h)
        np.testing.assert_allclose(dG[:, k], fd, rtol=1e-7, atol=1e-9)
    # an isolated atom (G = 0) has zero embedding energy on every rung
    assert np.abs(model.embedding_energy(np.zeros((1, 4)), 0)[0]).max() < 1e-14


def test_presets_form_a_ladder():
    ladder = snnp.presets(species=["Mo"], cutoff=5.2)
    assert list(ladder) == ["smeam", "smeam_nn", "snnp_small", "snnp_medium", "snnp_large"]
    classes = [type(m) for m in ladder.values()]
    assert classes == [snnp.SplineMEAM, snnp.SplineMEAMNN, snnp.SNNP, snnp.SNNP, snnp.SNNP]
    sizes = [m.n_params for m in ladder.values()]
    assert sizes == sorted(sizes) and sizes[0] < 100 < sizes[-1]
    medium = ladder["snnp_medium"]
    assert (medium.n_radial, medium.n_angular, medium.mlp.widths) == (12, 4, (16, 16))
    atoms = bulk("Mo", "bcc", a=3.16, cubic=True).repeat(2)
    for name, model in ladder.items():
        assert model.cutoff == pytest.approx(5.2)
        res = model.compute(atoms, PROPS)          # unfitted: every energy term starts at zero
        assert res["energy"] == 0.0, name
    # two species double the per-species parts
    assert snnp.presets(species=["Ti", "O"])["snnp_medium"].n_params > medium.n_params


def test_invalid_ladder_models_are_rejected():
    bank = snnp.FilterBank.initial(["Si"], 2, 2, 5.0)
    mlp = snnp.MLPEmbedding(1, 4, (8,))
    with pytest.raises(ValueError, match="SNNP takes no 'U'"):
        snnp.SNNP.__mro__[1].__init__(snnp.SNNP.__new__(snnp.SNNP), ["Si"], bank, mlp=mlp,
                                      U=[snnp.Spline(0, 1, [0, 0])])
    with pytest.raises(ValueError, match="MLP must have 1 species and 4 inputs"):
        snnp.SNNP(["Si"], bank, snnp.MLPEmbedding(1, 3, (8,)))
    with pytest.raises(ValueError, match="activation must be one of"):
        snnp.MLPEmbedding(1, 4, (8,), activation="relu")
    with pytest.raises(ValueError, match="pinned radial filters must end with value 0"):
        snnp.FilterBank(["Si"], [[snnp.Spline(1.0, 5.0, [1.0, 0.5])]])
    with pytest.raises(ValueError, match="share a knot grid"):
        snnp.FilterBank(["Si"], [[snnp.Spline(1.0, 5.0, [1.0, 0.0]),
                                  snnp.Spline(1.0, 4.0, [1.0, 0.0])]])
    with pytest.raises(ValueError, match="MLP limited to 8 layers of at most 128 units"):
        snnp.SNNP(["Si"], bank, snnp.MLPEmbedding(1, 4, (256,))).tables


def test_snnp_climbs_from_rung_0_with_its_filters():
    rung0 = snnp.SplineMEAM.from_lammps(potential("Si_1"))
    net = snnp.SNNP.from_spline_meam(rung0, n_radial=3, n_angular=2, widths=(8,))
    atoms = si_cell()
    G0, G = rung0.descriptors(atoms), net.descriptors(atoms)
    np.testing.assert_allclose(G[:, 0], G0[:, 0], rtol=1e-14)        # rung 0's radial filter
    np.testing.assert_allclose(G[:, 3], G0[:, 1], rtol=1e-14)        # and its angular filter
    assert G.shape == (len(atoms), 5)
    # the network starts at zero: energies are the pair term alone
    pair_only = snnp.SplineMEAM(["Si"], rung0.phi, rung0.rho,
                                [snnp.Spline(-5, 5, [0.0, 0.0])], rung0.f, rung0.g)
    np.testing.assert_allclose(net.compute(atoms)["forces"], pair_only.compute(atoms)["forces"],
                               atol=1e-12)
    # added filters end at zero with zero slope on their own grid, however rung 0's filters end
    for bank in net.filters.rho + net.filters.f:
        for s in bank[1:]:
            assert s.values[-1] == 0.0 and s.dN == 0.0


def test_angular_channels_list_leg_pairs_and_degrees():
    from snnp.filters import angular_channels
    assert angular_channels(3) == [(0, 0, 0), (1, 1, 1), (2, 2, 2)]
    assert angular_channels(6, legs=2) == [(0, 0, 0), (0, 1, 0), (1, 1, 0),
                                           (0, 0, 1), (0, 1, 1), (1, 1, 1)]
    assert len(angular_channels(12, legs=3)) == 12 and angular_channels(12, 3)[-1] == (2, 2, 1)
    with pytest.raises(ValueError, match="multiple of it, got 8"):
        angular_channels(8, legs=2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="angular_legs must be a whole number"):
            angular_channels(6, legs=bad)
    with pytest.raises(ValueError, match="multiple"):
        snnp.FilterBank.initial(["Si"], 2, 4, 5.0, angular_legs=2)


def test_default_angular_basis_is_one_decay_and_one_legendre_degree_per_filter():
    bank = snnp.FilterBank.initial(["Si"], 2, 3, 5.0, r_min=1.5, angular_cutoff=3.5)
    knots = bank.f[0][0].knots
    taper = snnp.filters._taper(knots, 3.5, 0.3 * 2.0)
    for k, lam in enumerate([0.5, 1.0, 1.5]):                 # span 2.0 x (0.25 + 0.5 k / 2)
        np.testing.assert_allclose(bank.f[0][k].values[:-1],
                                   (np.exp(-(knots - 1.5) / lam) * taper)[:-1], rtol=1e-14)
        c = np.zeros(k + 1)
        c[k] = 1.0
        np.testing.assert_allclose(bank.g[(0, 0)][k].values,
                                   np.polynomial.legendre.legval(bank.g[(0, 0)][k].knots, c),
                                   rtol=1e-13, atol=1e-15)


def test_mixed_leg_three_body_sums_follow_from_the_leg_pair_channels():
    """With angular_legs, channel (a, b, c) has leg (f_a + f_b)/2: by polarisation
    X_ab = sum_{j<l} [f_a(r_j) f_b(r_l) + f_b(r_j) f_a(r_l)] g_c = 4 A_(a,b) - A_(a,a) - A_(b,b),
    checked against that sum done in NumPy over every pair of neighbours."""
    from ase.neighborlist import neighbor_list
    from snnp.filters import angular_channels
    bank = snnp.FilterBank.initial(["Si"], 1, 6, 4.0, r_min=1.5, angular_cutoff=3.6,
                                   angular_legs=2)
    model = snnp.SNNP(["Si"], bank, snnp.MLPEmbedding(1, bank.n_filters, (4,), seed=0))
    atoms = bulk("Si", "diamond", a=5.43).repeat(2)
    atoms.rattle(0.15, seed=4)
    A = model.descriptors(atoms)[:, 1:]
    ch = {key: k for k, key in enumerate(angular_channels(6, 2))}
    i_list, j_list, D = neighbor_list("ijD", atoms, 4.0)
    fa, fb = (lambda r, lam=lam: np.exp(-(r - 1.5) / lam) for lam in (0.525, 1.575))
    taper = lambda r: snnp.filters._taper(r, 3.6, 0.3 * 2.1)
    for c in (0, 1):
        g = bank.g[(0, 0)][ch[(0, 1, c)]]
        mixed = 4 * A[:, ch[(0, 1, c)]] - A[:, ch[(0, 0, c)]] - A[:, ch[(1, 1, c)]]
        for i in range(0, len(atoms), 5):
            ds = D[i_list == i]
            rs = np.linalg.norm(ds, axis=1)
            # the bank's splines interpolate f_a taper, f_b taper: compare with their sums
            la = bank.f[0][ch[(0, 0, c)]](rs)
            lb = bank.f[0][ch[(1, 1, c)]](rs)
            X = sum((la[p] * lb[q] + lb[p] * la[q]) * g(np.dot(ds[p], ds[q]) / (rs[p] * rs[q]))
                    for p in range(len(rs)) for q in range(p))
            np.testing.assert_allclose(mixed[i], X, rtol=1e-10, atol=1e-12)
            # and the legs are the decays they are meant to be (within interpolation)
            inside = rs < 3.0
            np.testing.assert_allclose(la[inside], (fa(rs) * taper(rs))[inside], atol=2e-3)
            np.testing.assert_allclose(lb[inside], (fb(rs) * taper(rs))[inside], atol=2e-3)
