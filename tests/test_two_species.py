"""Every two-species path on the built-in Cu-Au set (``snnp.datasets.emt_cuau``, spec emt-cuau).

Fits of every rung lower the held-out energy and force errors well below the baselines (e0 by
composition alone; zero forces) and give each species its e0 and each species pair its core;
the climb from a fitted two-species rung 0 starts at rung 0's energies; save/load is bit for
bit; the meam/spline export of rung 0 equals LAMMPS ``pair_style meam/spline`` and the
``pair_style snnp`` plugin equals Python for rungs 0 and 2 on 1 and 2 MPI ranks, with the
species in reverse order in LAMMPS's types; ``snnp ladder --data emt-cuau`` runs.  A filter
bank shared across the two species (``presets(..., shared_filters=True)``) makes descriptors
blind to the neighbours' elements, keeps its copies identical through fits, climbs and files,
and is what ``snnp fit --shared-filters`` builds.
Where LAMMPS or a compiler is absent those tests skip with the reason (fail under CI=true).
"""
import json
import warnings

import numpy as np
import pytest

import snnp
from snnp import datasets
from snnp.cli import load_data, main
from snnp.filters import pair_keys
from test_lammps_plugin import (_compare, _python, _squeezed, lammps_module,  # noqa: F401
                                nktv2p, plugin, run_inprocess, run_mpirun)

SPECIES = ["Au", "Cu"]
CUTOFF = 4.5
REL_TOL = 1e-10
PROPS = ("energy", "energies", "forces", "stress")


# -- data and fitted models, made once per module -------------------------------------------------

@pytest.fixture(scope="module")
def cuau():
    return datasets.emt_cuau()


@pytest.fixture(scope="module")
def split(cuau):
    return cuau.split(0.2, seed=0)


def _baseline(train, test):
    """Held-out errors of the model that knows only composition: energies from per-species
    e0 by least squares on ``train`` (meV/atom), forces zero (eV/A)."""
    comp = lambda ds: np.array([[s.atoms.get_chemical_symbols().count(e) for e in SPECIES]
                                for s in ds], dtype=float)
    e0 = np.linalg.lstsq(comp(train), [s.energy for s in train], rcond=None)[0]
    n = np.array([len(s.atoms) for s in test])
    de = (comp(test) @ e0 - np.array([s.energy for s in test])) / n
    f = np.concatenate([s.forces.ravel() for s in test])
    return 1000 * np.sqrt(np.mean(de ** 2)), np.sqrt(np.mean(f ** 2))


def _errors(model, data):
    s = model.score(data)
    return s["energy_meV_per_atom"]["rmse"], s["forces_eV_per_A"]["rmse"]


@pytest.fixture(scope="module")
def rung0(split):
    """Rung 0 fitted on the training part (40 L-BFGS iterations, about 2 s)."""
    model = snnp.presets(SPECIES, cutoff=CUTOFF)["smeam"]
    return model.fit(split[0], max_iter=40, log=False)


@pytest.fixture(scope="module")
def rung2(rung0, split):
    """snnp_small climbed from the fitted rung 0 and fitted 20 iterations more."""
    model = snnp.ladder.climbed(rung0, "snnp_small", split[0])
    return model.fit(split[0], max_iter=20, log=False)


def _energies(model, data):
    return np.array([model.compute(s.atoms, ("energy",))["energy"] for s in data])


# -- the dataset ----------------------------------------------------------------------------------

def test_emt_cuau_dataset_covers_the_alloy_and_is_reproducible(cuau):
    assert cuau.species == SPECIES and len(cuau) == 55 and cuau.n_atoms == 1706
    assert cuau.groups == ["Elastic", "MD", "Ordered", "Rattled", "SolidSolution", "Surface",
                           "Vacancy"]
    x_au = {s.group: [] for s in cuau}
    for s in cuau:
        symbols = s.atoms.get_chemical_symbols()
        x_au[s.group].append(symbols.count("Au") / len(symbols))
        assert s.energy is not None and s.forces.shape == (len(s.atoms), 3)
        assert np.all(np.isfinite(s.forces))
        # stresses on the periodic cells; the slabs are open along z and carry none
        assert (s.stress is None) == (s.group == "Surface")
        assert (s.group == "Surface") == (not s.atoms.pbc.all())
    assert sorted(set(x_au["Ordered"])) == [0.25, 0.5, 0.75]           # Cu3Au, CuAu, CuAu3
    assert min(x_au["SolidSolution"]) == 0.0 and max(x_au["SolidSolution"]) == 1.0
    assert all(0 < x < 1 for g in ("Elastic", "Vacancy", "Surface", "MD") for x in x_au[g])
    # the perfect ordered cells are at EMT's equilibrium: no forces, stresses below 0.2 GPa
    for s in list(cuau)[:3]:
        assert np.abs(s.forces).max() < 1e-10 and np.abs(s.stress).max() < 1.5e-3
    assert cuau.sha256() == datasets.emt_cuau().sha256() == load_data("emt-cuau").sha256()
    assert datasets.emt_cuau(seed=1).sha256() != cuau.sha256()
    small = datasets.emt_cuau(scale=0.25)
    assert small.groups == cuau.groups and len(small) == 14


# -- fitting every rung ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, iterations", [("smeam", 40), ("smeam_nn", 30),
                                              ("snnp_small", 30)])
def test_every_rung_fits_two_species(name, iterations, split):
    """Held-out errors after a short fit (seen: smeam 15.5 meV/atom and 0.23 eV/A, smeam_nn
    28.7 and 0.28, snnp_small 18.8 and 0.34) against the composition-only baseline's 103
    meV/atom and the labels' 0.90 eV/A RMS; each species its own e0, each species pair a core at its
    shortest distance in the training data."""
    train, test = split
    e_base, f_base = _baseline(train, test)
    model = snnp.presets(SPECIES, cutoff=CUTOFF)[name]
    assert model.species == SPECIES
    model.fit(train, max_iter=iterations, log=False)
    e_rmse, f_rmse = _errors(model, test)
    print(f"\n{name}: held-out {e_rmse:.1f} meV/atom, {f_rmse:.3f} eV/A (baseline "
          f"{e_base:.1f}, {f_base:.3f})")
    assert e_rmse < 0.4 * e_base and f_rmse < 0.45 * f_base
    assert e_base > 50 and f_base > 0.5                   # the baseline is a real hurdle
    assert model.e0.shape == (2,) and model.e0[0] != model.e0[1]
    score = model.score(test)
    assert set(score["groups"]) <= set(train.groups) and len(score["groups"]) >= 5
    # a ZBL core per species pair, r_out at that pair's shortest distance in the training set
    from snnp.core import shortest_distances
    shortest = shortest_distances(SPECIES, train.structures, CUTOFF)
    assert sorted(model.core.radii) == pair_keys(2) == sorted(shortest)
    for key, (r_in, r_out) in model.core.radii.items():
        assert r_out == pytest.approx(shortest[key]) and r_in < r_out
    assert len({r_out for _, r_out in model.core.radii.values()}) == 3


# -- the climb ------------------------------------------------------------------------------------

def test_climb_from_a_two_species_rung_0_starts_at_its_energies(rung0, split):
    """Rung 1 climbed equals rung 0 to rounding; the s-NNP, whose networks are distilled from
    each species' U (500 iterations, the climb's default), to a few per cent of the embedding
    energy (seen: 1.8 meV/atom RMS, 5.2 at most, of up to 117 meV/atom; one species, emt-cu,
    does the same: 3.9 and 5.6 of 114); fitting on from there lowers the loss."""
    from snnp.training import Batch, loss_and_gradient
    train, test = split
    e_r0 = _energies(rung0, test)
    rung1 = snnp.ladder.climbed(rung0, "smeam_nn", train)
    np.testing.assert_allclose(_energies(rung1, test), e_r0, rtol=1e-12, atol=1e-10)
    net = snnp.ladder.climbed(rung0, "snnp_small", train)
    assert net.species == SPECIES and net.mlp.n_species == 2
    # the embedding part of rung 0's energies: everything but e0, pair term and core
    no_U = snnp.SNNP.from_spline_meam(rung0, net.n_radial, net.n_angular, net.mlp.widths)
    embedding = e_r0 - _energies(no_U, test)
    n = np.array([len(s.atoms) for s in test])
    gap = np.abs(_energies(net, test) - e_r0) / n
    scale = np.abs(embedding / n).max()
    print(f"\nclimbed snnp_small: start {1000 * np.sqrt(np.mean(gap ** 2)):.2f} meV/atom RMS, "
          f"{1000 * gap.max():.2f} at most, from rung 0 (embedding up to {1000 * scale:.0f})")
    assert scale > 0.05                           # rung 0's U carries real energy
    assert np.sqrt(np.mean(gap ** 2)) < 0.03 * scale and gap.max() < 0.08 * scale
    for climbed in (rung1, net):
        assert np.array_equal(climbed.e0, rung0.e0)
        assert climbed.core.radii == rung0.core.radii
        assert sorted(climbed.pair) == pair_keys(2)
        loss = lambda m: loss_and_gradient(m, Batch(train.structures, m), snnp.Loss(),
                                           gradient=False)[0]
        start = loss(climbed)
        climbed.fit(train, max_iter=10, log=False)
        assert loss(climbed) < start


# -- save and load --------------------------------------------------------------------------------

def test_two_species_models_save_and_load_bit_for_bit(rung0, rung2, split, tmp_path):
    test = split[1]
    for model in (rung0, rung2):
        path = tmp_path / f"{type(model).__name__}.json"
        model.save(path)
        back = snnp.load(path)
        assert type(back) is type(model) and back.species == SPECIES
        assert np.array_equal(back.e0, model.e0) and back.e0[0] != back.e0[1]
        assert np.array_equal(back.get_params(), model.get_params())
        assert back.core.radii == model.core.radii
        assert sorted(back.pair) == sorted(model.pair) == pair_keys(2)
        for key in model.pair:
            assert np.array_equal(back.pair[key].values, model.pair[key].values)
            assert (back.pair[key].x0, back.pair[key].x1) == (model.pair[key].x0,
                                                              model.pair[key].x1)
        assert sorted(back.filters.g) == sorted(model.filters.g) == pair_keys(2)
        for a, b in zip(back.filters.rho + back.filters.f, model.filters.rho + model.filters.f):
            assert all(np.array_equal(s.values, t.values) for s, t in zip(a, b))
        for s in (test[0], test[-1]):
            x, y = back.compute(s.atoms, PROPS), model.compute(s.atoms, PROPS)
            for key in PROPS:
                assert np.array_equal(x[key], y[key]), key
        same = lambda d: json.dumps(d, sort_keys=True, default=float)   # NaN == NaN here
        assert same(back.score(test)) == same(model.score(test))


# -- filters shared across the species -----------------------------------------------------------

def _tied_copies_equal(model):
    groups = model.filters.tied()
    assert groups and all(len(g) in (2, 3) for g in groups)      # species or pairs
    return all(np.array_equal(s.values, g[0].values) and (s.d0, s.dN) == (g[0].d0, g[0].dN)
               for g in groups for s in g[1:])


def test_a_shared_bank_sees_neighbours_whatever_their_element(cuau):
    """Descriptors of an atom do not change when its neighbours change element (they do with
    the unshared bank); the parameter vector holds each tied filter once."""
    atoms = next(s.atoms for s in cuau if s.group == "SolidSolution").copy()
    swapped = atoms.copy()
    symbols = np.array(swapped.get_chemical_symbols())
    symbols[1:] = np.where(symbols[1:] == "Cu", "Au", "Cu")     # atom 0 keeps its element
    swapped.set_chemical_symbols(symbols)
    for shared in (True, False):
        model = snnp.presets(SPECIES, cutoff=CUTOFF, shared_filters=shared)["snnp_medium"]
        G, G_swapped = model.descriptors(atoms)[0], model.descriptors(swapped)[0]
        if shared:
            np.testing.assert_allclose(G_swapped, G, rtol=1e-12, atol=1e-12)
        else:
            bank = model.filters
            for s in bank.rho[0] + bank.f[0]:               # make the banks differ
                s.values[:-1] *= 1.5
            model.invalidate()
            assert np.abs(model.descriptors(swapped)[0] - model.descriptors(atoms)[0]).max() > 1e-3
    one = snnp.presets(SPECIES, cutoff=CUTOFF)["snnp_medium"]
    tied = snnp.presets(SPECIES, cutoff=CUTOFF, shared_filters=True)["snnp_medium"]
    # rho 12 x 12 and f 4 x 12 per species, g 4 x 12 per pair: 528 parameters, tied 240
    assert (one.filters.n_params, tied.filters.n_params) == (528, 240)
    assert one.n_params - tied.n_params == 288
    assert not snnp.presets(["Cu"], shared_filters=True)["snnp_small"].filters.tied()
    # a shared two-species bank and a one-species bank have one layout: share_filters moves it
    one_species = snnp.training.share_filters(tied, snnp.presets(["Ag"], cutoff=CUTOFF)["snnp_medium"])
    bank = tied.param_groups()["radial"]
    np.testing.assert_array_equal(one_species.get_params()[one_species.param_groups()["radial"]],
                                  tied.get_params()[bank])
    with pytest.raises(ValueError, match="filter banks differ in size"):
        snnp.training.share_filters(one, snnp.presets(["Ag"], cutoff=CUTOFF)["snnp_medium"])


def test_shared_filters_stay_tied_through_fit_climb_and_file(split, tmp_path):
    train, test = split
    e_base, f_base = _baseline(train, test)
    rung0 = snnp.presets(SPECIES, cutoff=CUTOFF, shared_filters=True)["smeam"]
    rung0.fit(train, max_iter=30, log=False)
    assert rung0.filters.shared and _tied_copies_equal(rung0)
    net = snnp.ladder.climbed(rung0, "snnp_small", train).fit(train, max_iter=20, log=False)
    assert net.filters.shared and _tied_copies_equal(net)
    e_rmse, f_rmse = _errors(net, test)
    print(f"\nshared snnp_small: held-out {e_rmse:.1f} meV/atom, {f_rmse:.3f} eV/A "
          f"(baseline {e_base:.1f}, {f_base:.3f})")
    assert e_rmse < 0.5 * e_base and f_rmse < 0.6 * f_base
    path = tmp_path / "shared.json"
    net.save(path)
    assert json.loads(path.read_text())["model"]["filters"]["shared"] is True
    back = snnp.load(path)
    assert back.filters.shared and np.array_equal(back.get_params(), net.get_params())
    x, y = back.compute(test[0].atoms, PROPS), net.compute(test[0].atoms, PROPS)
    assert all(np.array_equal(x[k], y[k]) for k in PROPS)
    # a file whose "shared" bank is not one function is refused, naming the rule
    doc = json.loads(path.read_text())
    doc["model"]["filters"]["rho"]["Cu"][0]["values"][0] += 0.1
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="shared filter bank needs the same filters"):
        snnp.load(path)


def test_cli_fit_shared_filters(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "smeam", "--data", "emt-cuau", "--shared-filters", "--max-iter", "5",
                 "--cutoff", str(CUTOFF), "--out", "m.json", "--quiet"]) == 0
    model = snnp.load("m.json")
    assert model.filters.shared and _tied_copies_equal(model)
    assert main(["fit", "m.json", "--data", "emt-cuau", "--shared-filters",
                 "--out", "n.json"]) == 2
    assert "--shared-filters builds a preset" in capsys.readouterr().err


# -- LAMMPS ---------------------------------------------------------------------------------------

def _structures(data):
    """An alloy MD snapshot, a vacancy cell (both periodic) and an open-z slab."""
    pick = lambda group: next(s.atoms for s in data if s.group == group)
    return {g: pick(g) for g in ("MD", "Vacancy", "Surface")}


@pytest.mark.lammps
def test_rung_0_exports_to_meam_spline_and_equals_lammps(rung0, cuau, lammps, tmp_path):
    """meam/spline holds the splines (not e0, not the core): the exported file, read by LAMMPS,
    gives the energies of the model without its core, less e0 per atom of each species, and
    its forces and stress to 1e-10 relative.  LAMMPS types follow the file's element order
    (Au 1, Cu 2): meam/spline checks pair_coeff's element names but indexes its splines by
    type, so a reordered list gives wrong numbers (docs/formats.md); the plugin tests below
    reverse the order."""
    with pytest.warns(UserWarning, match="meam/spline cannot hold this model's short-range core"):
        rung0.to_lammps(tmp_path / "cored.meam.spline", drop_e0=True)
    assert "core: pair_style hybrid/overlay meam/spline zbl" in \
        (tmp_path / "cored.meam.spline").read_text()
    bare = rung0.copy()
    bare.core = None
    path = tmp_path / "CuAu.meam.spline"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bare.to_lammps(path, drop_e0=True)
    again = snnp.SplineMEAM.from_lammps(path)
    assert again.species == SPECIES and again.core is None and not np.any(again.e0)
    worst = {}
    for group, atoms in _structures(cuau).items():
        ours = bare.compute(atoms, PROPS)
        shift = sum(bare.e0[SPECIES.index(el)] for el in atoms.get_chemical_symbols())
        ref = lammps(atoms, path, SPECIES)
        assert again.compute(atoms, ("energy",))["energy"] == pytest.approx(
            ours["energy"] - shift, rel=1e-12)
        rel = lambda a, b: float(np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300))
        e0_atoms = bare.e0[[SPECIES.index(el) for el in atoms.get_chemical_symbols()]]
        diffs = {"energy": rel(ref["energy"], ours["energy"] - shift),
                 "energies": rel(ref["energies"], ours["energies"] - e0_atoms),
                 "forces": rel(ref["forces"], ours["forces"])}
        if ref["stress"] is not None:
            diffs["stress"] = rel(ref["stress"], ours["stress"])
        assert (ref["stress"] is None) == (group == "Surface")
        assert np.abs(ours["forces"]).max() > 0.1
        worst[group] = max(diffs.values())
        assert max(diffs.values()) <= REL_TOL, (group, diffs)
    print("\nmeam/spline vs LAMMPS, max relative difference: "
          + ", ".join(f"{g} {v:.1e}" for g, v in worst.items()))


@pytest.mark.lammps
@pytest.mark.parametrize("nprocs", [1, 2])
@pytest.mark.parametrize("rung", [0, 2])
def test_plugin_equals_python_for_fitted_two_species_models(rung, nprocs, rung0, rung2, cuau,
                                                            plugin, nktv2p, tmp_path):
    """The fitted models (each with its ZBL core, radii per species pair, and extrapolation
    grade) in ``pair_style snnp``, Au and Cu as LAMMPS types 2 and 1, equal ``model.compute``
    to 1e-10 on an alloy MD snapshot with atoms pushed into the cores (1.5 A), their switching
    ranges and clamps (2.0-2.15 A)."""
    model = rung0 if rung == 0 else rung2
    assert model.core is not None and model.extrapolation is not None
    atoms = _squeezed(_structures(cuau)["MD"].repeat((2, 1, 1)), (2.0, 2.1, 2.15, 1.5), 3)
    r_in = min(r for r, _ in model.core.radii.values())
    ref = _python(model, atoms)
    assert ref["closest_pair"][0] < r_in
    if nprocs == 1:
        out = run_inprocess(plugin, model, atoms, str(tmp_path), nktv2p, reverse_types=True)
        assert abs(out["atom_virial"].sum(axis=0) - out["virial"]).max() <= \
            REL_TOL * np.abs(out["virial"]).max()
    else:
        out = run_mpirun(plugin, model, atoms, str(tmp_path), nktv2p, nprocs,
                         reverse_types=True)
        assert out["nprocs"] == nprocs
    _compare(f"fitted CuAu rung {rung}", nprocs, out, ref)
    bare = model.copy()
    bare.core = None                    # the core is in the file and matters here
    assert abs(bare.compute(atoms, ("energy",))["energy"] - ref["energy"]) > 1.0


# -- the command line -----------------------------------------------------------------------------

def test_cli_ladder_on_emt_cuau(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ladder"
    assert main(["ladder", "--data", "emt-cuau", "--presets", "smeam", "snnp_small",
                 "--max-iter", "10", "--cutoff", str(CUTOFF), "--timing-atoms", "256",
                 "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "ladder.json").read_text())
    rows = doc["rows"]
    assert [r["preset"] for r in rows] == ["smeam", "snnp_small"]
    for r in rows:
        assert np.isfinite(r["energy_rmse_meV_per_atom"]) and r["us_per_atom_step"] > 0
    table = (out / "ladder.md").read_text()
    assert "Data: emt-cuau (Cu-Au (EMT))" in table
    assert "| preset | Elastic | MD | Ordered | Rattled | SolidSolution | Surface | Vacancy |" \
        in table
    assert "| snnp_small |" in capsys.readouterr().out
    for name in ("smeam", "snnp_small"):
        model = snnp.load(out / f"{name}.json")
        assert model.species == SPECIES and model.e0.shape == (2,)
        assert sorted(model.core.radii) == pair_keys(2)
