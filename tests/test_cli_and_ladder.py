"""The snnp command line, the built-in dataset, the mlearn loader and a small ladder scan."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import snnp
from conftest import data_path
from snnp import datasets
from snnp.cli import CLIError, main


def test_emt_copper_dataset_has_every_group_and_labels():
    ds = datasets.emt_copper(scale=0.25)
    assert ds.species == ["Cu"]
    assert ds.groups == ["Elastic", "MD", "Rattled", "Surface", "Vacancy"]
    for s in ds:
        assert s.energy is not None and s.forces.shape == (len(s.atoms), 3)
        assert s.stress is not None
    assert ds.sha256() == datasets.emt_copper(scale=0.25).sha256()      # reproducible


def test_mlearn_loader_verifies_checksums(tmp_path):
    src = data_path("mlearn", "Mo", "test.json")
    (tmp_path / "Mo").mkdir()
    shutil.copy(src, tmp_path / "Mo" / "test.json")
    ds = datasets.mlearn("Mo", "test", cache_dir=tmp_path, download=False)
    assert len(ds) == 23
    with open(tmp_path / "Mo" / "test.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(ValueError, match="does not match the published mlearn file"):
        datasets.mlearn("Mo", "test", cache_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match="no training set for 'Cu'"):
        datasets.mlearn("Cu", "training", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        datasets.mlearn("Si", "test", cache_dir=tmp_path, download=False)


def test_small_ladder_scan_writes_table_and_models(tmp_path):
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    rows = snnp.ladder.scan(train, test, presets=["smeam", "snnp_small"], cutoff=4.5,
                            max_iter=15, timing_atoms=200, out=tmp_path, log=None,
                            references={"GAP": (2.0, 0.1), "MTP": (2.5, 0.1)})
    assert [r["preset"] for r in rows] == ["smeam", "snnp_small"]
    for r in rows:
        assert np.isfinite(r["energy_rmse_meV_per_atom"]) and r["us_per_atom_step"] > 0
    doc = json.loads((tmp_path / "ladder.json").read_text())
    assert doc["rows"][1]["n_params"] == rows[1]["n_params"]
    assert "| smeam |" in (tmp_path / "ladder.md").read_text()
    assert "GAP 2 / 0.1; MTP 2.5 / 0.1" in (tmp_path / "ladder.md").read_text()
    assert doc["references"]["MTP"] == [2.5, 0.1]
    assert (tmp_path / "ladder.csv").read_text().startswith("preset,")
    assert snnp.load(tmp_path / "snnp_small.json").n_params == rows[1]["n_params"]
    pytest.importorskip("matplotlib")          # the plot extra (in the test extra too)
    for ext in ("png", "svg"):
        assert (tmp_path / f"pareto.{ext}").stat().st_size > 5000


def test_ladder_scan_climbs_from_rung_0_and_resumes(tmp_path):
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    kw = dict(presets=["smeam", "smeam_nn", "snnp_small"], cutoff=4.5, max_iter=12,
              timing_atoms=200, log=None, checkpoint_dir=tmp_path / "ckpt")
    rows = snnp.ladder.scan(train, test, out=tmp_path / "a", **kw)
    assert [r["iterations"] for r in rows] == [12, 6, 12]      # max_iter x EFFORT
    smeam, nn = (snnp.load(tmp_path / "a" / f"{n}.json") for n in ("smeam", "smeam_nn"))
    # rung 1 climbed: it carries rung 0's U (moved by its own fit only)
    assert np.any(nn.U[0].values != 0) and nn.U[0].n_knots == smeam.U[0].n_knots
    for r in rows:                                            # every fit left a checkpoint
        state = json.loads((tmp_path / "ckpt" / f"{r['preset']}.json").read_text())["state"]
        assert state["step"] == r["iterations"]
    # run again: every fit resumes from its finished checkpoint, and gives the same models
    again = snnp.ladder.scan(train, test, out=tmp_path / "b", **kw)
    for r, s in zip(rows, again):
        assert r["energy_rmse_meV_per_atom"] == s["energy_rmse_meV_per_atom"]
    rows_scratch = snnp.ladder.scan(train, test, out=tmp_path / "c", climb=False,
                                    **{**kw, "checkpoint_dir": None})
    assert rows_scratch[2]["energy_rmse_meV_per_atom"] != rows[2]["energy_rmse_meV_per_atom"]


def test_ladder_chain_climb_starts_each_snnp_where_the_rung_below_ended(tmp_path):
    """climb="chain": snnp_small grows from the fitted smeam_nn and snnp_medium from the fitted
    snnp_small (filters kept, network distilled from its energies), so each starts at the
    validation error the rung below ended with (seen, 12 iterations each: 62.2 against 63.1 and
    48.6 against 50.3 meV/atom, misfit 2-3 meV/atom); every row records
    its validation errors and where it climbed from, and rungs that do not improve on the one
    below are listed in ladder.md."""
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    rows = snnp.ladder.scan(train, test, presets=["smeam", "smeam_nn", "snnp_small", "snnp_medium"],
                            cutoff=4.5, max_iter=12, timing_atoms=200, log=None, climb="chain",
                            out=tmp_path)
    assert [r["climbed_from"] for r in rows] == ["", "smeam", "smeam_nn", "snnp_small"]
    models = {r["preset"]: snnp.load(tmp_path / f"{r['preset']}.json") for r in rows}
    val = train.split(0.1, seed=0)[1]
    for below, above in (("smeam_nn", "snnp_small"), ("snnp_small", "snnp_medium")):
        small = models[below]
        _, K_r, K_a, widths = snnp.models.LADDER[above]
        grown = snnp.SNNP.grown_from(small, K_r, K_a, widths, data=train.split(0.1, seed=0)[0])
        for bank_small, bank_grown in zip(small.filters.rho, grown.filters.rho):
            assert bank_grown[:len(bank_small)] == bank_small
        start = grown.score(val)["energy_meV_per_atom"]["rmse"]
        ended = small.score(val)["energy_meV_per_atom"]["rmse"]
        print(f"\n{above} grown from {below}: validation E {start:.3f} meV/atom at the start, "
              f"{below} ended at {ended:.3f}; distillation misfit "
              f"{1e3 * grown.distil_misfit:.3f} meV/atom")
        assert abs(start - ended) < 0.05 * ended and 1e3 * grown.distil_misfit < 0.2 * ended
    for r in rows:
        assert r["validation_energy_rmse_meV_per_atom"] > 0 and r["validation_force_rmse_eV_per_A"] > 0
    lines = snnp.ladder.not_improving(rows)
    text = (tmp_path / "ladder.md").read_text()
    assert all(line in text for line in lines)
    assert ("do not improve" in text) == bool(lines)
    fake = [{"preset": "a", "validation_energy_rmse_meV_per_atom": 2.0,
             "validation_force_rmse_eV_per_A": 0.1},
            {"preset": "b", "validation_energy_rmse_meV_per_atom": 2.5,
             "validation_force_rmse_eV_per_A": 0.09}]
    assert snnp.ladder.not_improving(fake) == [
        "b does not improve on a: validation energy RMSE 2.50 against 2.00 meV/atom"]
    # with per-structure errors the line names the structure that decides the order
    fake[0].update(validation_energy_errors=[2.0, -2.0, 2.0, None],
                   validation_structures=["s0 (A, 4 atoms)", "s1 (B, 2 atoms)",
                                          "s2 (A, 4 atoms)", "s3 (A, 4 atoms)"])
    fake[1].update(validation_energy_errors=[1.0, -4.0, 0.5, None],
                   validation_structures=fake[0]["validation_structures"])
    assert snnp.ladder.not_improving(fake) == [
        "b does not improve on a: validation energy RMSE 2.50 against 2.00 meV/atom; its "
        "largest error is on s1 (B, 2 atoms): -4.0 against -2.0 meV/atom, and without it "
        f"validation energy RMSE {snnp.ladder.format_error(np.sqrt(0.625))} against 2.00"]
    # the scan's rows hold them: one error per validation structure, from the saved model
    val = train.split(0.1, seed=0)[1]
    model = snnp.load(tmp_path / "smeam.json")
    assert len(rows[0]["validation_energy_errors"]) == len(val)
    assert snnp.ladder._rmse(rows[0]["validation_energy_errors"]) == pytest.approx(
        rows[0]["validation_energy_rmse_meV_per_atom"], rel=1e-9)
    k = int(np.argmax(np.abs(rows[0]["validation_energy_errors"])))
    st = val.structures[k]
    assert 1e3 * (model.compute(st.atoms, ("energy",))["energy"] - st.energy) / len(st.atoms) \
        == pytest.approx(rows[0]["validation_energy_errors"][k], rel=1e-9, abs=1e-9)
    assert rows[0]["validation_structures"][k].endswith(f"{len(st.atoms)} atoms)")
    with pytest.raises(ValueError, match="smeam_nn climbs from a fitted rung-0 SplineMEAM, "
                                         "not a SNNP"):
        snnp.ladder.climbed(models["snnp_small"], "smeam_nn", train)
    with pytest.raises(ValueError, match="grown_from climbs from a rung 1 or an s-NNP, not a "
                                         "SplineMEAM"):
        snnp.SNNP.grown_from(models["smeam"], 2, 2, (8,))
    with pytest.raises(ValueError, match="keeps every filter: it needs at least 12\\+4"):
        snnp.SNNP.grown_from(models["snnp_medium"], 2, 2, (8,))
    with pytest.raises(ValueError, match="climb must be True, False or 'chain'"):
        snnp.ladder.scan(train, test, climb="up")


def test_residual_ladder_keeps_rung_0s_embedding_and_starts_each_rung_where_the_one_below_ended(
        tmp_path):
    """scan(residual=True, climb="chain"): every s-NNP is a SplineMEAMNN that keeps rung 0's
    U.  snnp_small grows from rung 1 (the same depth) with exactly its energies, forces and
    stress, so its start is a checkpoint within rung 1's validation errors and the kept model
    is no worse than rung 1 in either; snnp_medium (another depth) starts from the small
    network's correction distilled on top of the same U.  Growing from rung 0 puts a zero
    network on its U (the same energies), and a start without U is refused."""
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    rows = snnp.ladder.scan(train, test, presets=["smeam", "smeam_nn", "snnp_small", "snnp_medium"],
                            cutoff=4.5, max_iter=12, timing_atoms=200, log=None, climb="chain",
                            residual=True, out=tmp_path)
    assert [r["class"] for r in rows] == ["SplineMEAM", "SplineMEAMNN", "SplineMEAMNN",
                                          "SplineMEAMNN"]
    assert [r["filters"] for r in rows] == ["1+1", "1+1", "2+2", "12+4"]
    assert json.loads((tmp_path / "ladder.json").read_text())["meta"]["residual"] == [
        "snnp_small", "snnp_medium", "snnp_large"]
    models = {r["preset"]: snnp.load(tmp_path / f"{r['preset']}.json") for r in rows}
    for name in ("snnp_small", "snnp_medium"):      # rung 0's U, carried up unchanged
        for u0, u in zip(models["smeam_nn"].U, models[name].U):
            assert u.x0 == u0.x0 and u.x1 == u0.x1
    fit_set, val = train.split(0.1, seed=0)
    grown = snnp.SplineMEAMNN.grown_from(models["smeam_nn"], 2, 2, (8,), data=fit_set)
    assert grown.distil_misfit == 0.0
    for st in val:
        a, b = (m.compute(st.atoms, ("energy", "forces", "stress"))
                for m in (models["smeam_nn"], grown))
        assert a["energy"] == pytest.approx(b["energy"], rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(a["forces"], b["forces"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a["stress"], b["stress"], rtol=1e-10, atol=1e-12)
    small, one = rows[2], rows[1]
    assert one["within_below"] is True       # rung 1's start, rung 0 on a zero network, is within
    assert small["within_below"] is True
    assert small["validation_energy_rmse_meV_per_atom"] <= one["validation_energy_rmse_meV_per_atom"]
    assert small["validation_force_rmse_eV_per_A"] <= one["validation_force_rmse_eV_per_A"]
    deeper = snnp.SplineMEAMNN.grown_from(models["snnp_small"], 12, 4, (16, 16), data=fit_set)
    ended = models["snnp_small"].score(val)["energy_meV_per_atom"]["rmse"]
    start = deeper.score(val)["energy_meV_per_atom"]["rmse"]
    print(f"\nresidual snnp_medium grown from snnp_small: validation E {start:.3f} meV/atom at "
          f"the start, snnp_small ended at {ended:.3f}; misfit {1e3 * deeper.distil_misfit:.3f}")
    assert 0 < 1e3 * deeper.distil_misfit < 0.2 * ended and abs(start - ended) < 0.1 * ended
    on_zero = snnp.SplineMEAMNN.grown_from(models["smeam"], 2, 2, (8,), data=fit_set)
    st = val.structures[0]
    assert on_zero.compute(st.atoms, ("energy",))["energy"] == pytest.approx(
        models["smeam"].compute(st.atoms, ("energy",))["energy"], rel=1e-12)
    plain = snnp.presets(["Cu"])["snnp_small"]
    with pytest.raises(ValueError, match="keeps the start's spline embedding U: it climbs from "
                                         "a rung 0, a rung 1 or a residual s-NNP, not a SNNP"):
        snnp.SplineMEAMNN.grown_from(plain, 12, 4, (16, 16))
    eam = models["smeam"].copy()
    eam.filters.f = eam.filters.g = None
    with pytest.raises(ValueError, match="has no angular filters to carry over into 2"):
        snnp.SplineMEAMNN.grown_from(eam, 2, 2, (8,))
    with pytest.raises(ValueError, match="angular_cutoff 3.0 is shorter than the start's "
                                         "angular filters"):
        snnp.ladder.climbed(models["smeam"], "snnp_small", fit_set, angular_cutoff=3.0,
                            residual=True)
    assert type(snnp.presets(["Cu"], residual=True)["snnp_large"]) is snnp.SplineMEAMNN


def test_ladder_with_only_snnp_small_residual_grows_plain_snnps_above_it(tmp_path):
    """scan(residual=["snnp_small"], climb="chain"): snnp_small keeps rung
    1's U and starts with exactly its energies; snnp_medium, without U, starts from a network
    distilled from the residual snnp_small's energies (within a fraction of the spread of
    the energies it copies), and snnp_large from snnp_medium exactly.  A residual preset
    above a plain s-NNP in the chain is refused before anything is fitted."""
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    rows = snnp.ladder.scan(train, test, cutoff=4.5, max_iter=12, timing_atoms=200, log=None,
                            climb="chain", residual=["snnp_small"], out=tmp_path)
    assert [r["class"] for r in rows] == ["SplineMEAM", "SplineMEAMNN", "SplineMEAMNN",
                                          "SNNP", "SNNP"]
    assert [r["climbed_from"] for r in rows] == ["", "smeam", "smeam_nn", "snnp_small",
                                                 "snnp_medium"]
    assert json.loads((tmp_path / "ladder.json").read_text())["meta"]["residual"] == [
        "snnp_small"]
    small = snnp.load(tmp_path / "snnp_small.json")
    fit_set, _ = train.split(0.1, seed=0)
    medium = snnp.ladder.climbed(small, "snnp_medium", fit_set)
    assert type(medium) is snnp.SNNP
    per_atom = np.concatenate([small.compute(st.atoms, ("energy",))["energies"] for st in fit_set])
    assert 0 < medium.distil_misfit < 0.2 * per_atom.std()
    large = snnp.ladder.climbed(snnp.load(tmp_path / "snnp_medium.json"), "snnp_large", fit_set)
    assert large.distil_misfit < 1e-9
    with pytest.raises(ValueError, match="residual snnp_large would chain-climb from an s-NNP "
                                         "without rung 0's U"):
        snnp.ladder.scan(train, test, climb="chain", residual=["snnp_small", "snnp_large"],
                         log=None)
    with pytest.raises(ValueError, match="residual names s-NNP presets .* not \\['smeam_nn'\\]"):
        snnp.ladder.scan(train, test, residual=["smeam_nn"], log=None)


def test_cli_fit_residual_builds_and_climbs_the_residual_preset(tmp_path, monkeypatch, capsys):
    """snnp fit PRESET --residual: a SplineMEAMNN with the preset's filters and network; with
    --from rung 0 it starts on that rung's U and fits on; a model file is refused."""
    monkeypatch.chdir(tmp_path)
    common = ["--data", "emt-cu", "--max-iter", "5", "--cutoff", "4.5", "--quiet"]
    assert main(["fit", "smeam", "--out", "r0.json"] + common) == 0
    assert main(["fit", "snnp_small", "--residual", "--from", "r0.json", "--out", "s.json"]
                + common) == 0
    small, rung0 = snnp.load("s.json"), snnp.load("r0.json")
    assert type(small) is snnp.SplineMEAMNN and (small.n_radial, small.n_angular) == (2, 2)
    assert small.mlp.widths == (8,)
    assert main(["fit", "snnp_medium", "--residual", "--out", "m.json"] + common) == 0
    assert type(snnp.load("m.json")) is snnp.SplineMEAMNN
    assert main(["fit", "s.json", "--residual", "--out", "n.json"] + common) == 2
    assert "--residual builds an s-NNP preset with rung 0's U; 's.json' is a model file" \
        in capsys.readouterr().err


def test_ladder_scan_with_a_prior_fits_the_climbed_presets_towards_rung_0(tmp_path):
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    kw = dict(presets=["smeam", "snnp_small"], cutoff=4.5, max_iter=12, timing_atoms=200,
              log=None)
    rows = snnp.ladder.scan(train, test, out=tmp_path / "p", prior=0.5, **kw)
    assert [r["prior"] for r in rows] == [0.0, 0.5]          # rung 0 has nothing to lean on
    model = snnp.load(tmp_path / "p" / "snnp_small.json")
    assert model.provenance["fit"]["loss"]["prior"] == 0.5
    for bad in (dict(climb=False), dict(loss=snnp.Loss(prior=0.5))):
        with pytest.raises(ValueError, match="prior"):
            snnp.ladder.scan(train, test, prior=0.5 if "climb" in bad else 0.0, **kw, **bad)
    for term in ("repulsion", "cleavage"):      # refused before rung 0 is fitted
        with pytest.raises(ValueError, match=f"cannot be combined with Loss\\({term}"):
            snnp.ladder.scan(train, test, prior=0.5, loss=snnp.Loss(**{term: 1e-3}),
                             out=tmp_path / term, **kw)
        assert not (tmp_path / term).exists()
    plain = snnp.ladder.scan(train, test, out=tmp_path / "q", **kw)
    assert plain[0]["energy_rmse_meV_per_atom"] == rows[0]["energy_rmse_meV_per_atom"]
    assert plain[1]["energy_rmse_meV_per_atom"] != rows[1]["energy_rmse_meV_per_atom"]


def test_ladder_scan_holds_e0_and_the_angular_reach(tmp_path):
    """scan(e0=..., angular_cutoff=...): every preset, rung 0 and the climbed ones, keeps e0 at
    EMT's isolated Cu atom (3.51 eV) and its angular filters inside the first neighbour shell
    (3.2 A), and records both in its row, the table's meta and its file."""
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    rows = snnp.ladder.scan(train, test, presets=["smeam", "snnp_small"], cutoff=4.5,
                            max_iter=12, timing_atoms=200, log=None, out=tmp_path / "e",
                            e0={"Cu": 3.51}, angular_cutoff=3.2)
    assert [r["e0"] for r in rows] == ["Cu=3.51", "Cu=3.51"]
    assert [r["angular_cutoff"] for r in rows] == [3.2, 3.2]
    for name in ("smeam", "snnp_small"):
        model = snnp.load(tmp_path / "e" / f"{name}.json")
        assert model.e0.tolist() == [3.51] and model.provenance["fit"]["e0"] == [3.51]
        assert {s.x1 for bank in model.filters.f for s in bank} == {3.2}
        assert model.cutoff == 4.5 and np.isfinite(rows[0]["energy_rmse_meV_per_atom"])
    meta = json.loads((tmp_path / "e" / "ladder.json").read_text())["meta"]
    assert meta["e0"] == {"Cu": 3.51} and meta["angular_cutoff"] == 3.2


def test_free_atom_estimate_adds_the_cohesive_energy_to_the_lowest_crystal():
    """snnp.reference.free_atom_estimate: per element, the lowest energy per atom of its
    elemental structures plus Kittel's cohesive energy; None and the reason where a compound
    set has no elemental structure or the element no table entry."""
    from ase.build import bulk
    from snnp.reference import COHESIVE_ENERGY, free_atom_estimate
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    data = [snnp.Structure(cu, -3.0 * len(cu)), snnp.Structure(cu.repeat(2), -2.5 * 32),
            snnp.Structure(cu)]                                  # unlabelled: not counted
    estimate, why = free_atom_estimate(data, ["Cu"])
    assert why is None and estimate == {"Cu": pytest.approx(-3.0 + 3.49)}
    assert COHESIVE_ENERGY["Si"] == 4.63 and COHESIVE_ENERGY["Mo"] == 6.82
    alloy = cu.copy()
    alloy[0].symbol = "Au"
    estimate, why = free_atom_estimate(data + [snnp.Structure(alloy, -12.0)], ["Au", "Cu"])
    assert estimate is None and "no energy-labelled structure of ['Au'] alone" in why
    og = bulk("Og", "fcc", a=5.0)
    estimate, why = free_atom_estimate([snnp.Structure(og, -1.0)], ["Og"])
    assert estimate is None and "no cohesive energy known for ['Og']" in why


def test_ladder_scan_chooses_e0_on_rung_0_validation(tmp_path):
    """scan(e0="auto"): rung 0 is fitted with e0 fitted and with e0 at the free-atom estimate,
    the one of lower validation loss is kept (its loss recomputed from the saved model), and
    the climbed preset follows the choice; the row's fit time covers both fits."""
    from snnp.reference import free_atom_estimate
    from snnp.training import Batch, loss_and_gradient
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    loss = snnp.Loss(energy=1.0, forces=0.002, stress=1e-4)
    rows = snnp.ladder.scan(train, test, presets=["smeam", "snnp_small"], cutoff=4.5,
                            max_iter=12, timing_atoms=200, log=None, out=tmp_path, e0="auto",
                            loss=loss)
    search = rows[0]["e0_search"]
    fit_set, val_set = train.split(0.1, seed=0)
    estimate, _ = free_atom_estimate(fit_set.structures, ["Cu"])
    assert search["free_atom_estimate"] == pytest.approx(estimate)
    assert estimate["Cu"] == pytest.approx(3.51, abs=0.1)      # EMT's isolated Cu atom
    scores = search["validation_loss"]
    chosen = min(scores, key=scores.get)
    assert search["chosen"] == chosen and scores["fitted"] != scores["free atom"]
    rung0 = snnp.load(tmp_path / "smeam.json")
    kept = loss_and_gradient(rung0, Batch(val_set.structures, rung0), loss, gradient=False)[0]
    assert kept == pytest.approx(scores[chosen], rel=1e-9)
    if chosen == "free atom":
        assert [r["e0"] for r in rows] == [f"Cu={estimate['Cu']:g}"] * 2
    else:
        assert [r["e0"] for r in rows] == ["", ""]
    assert "e0_search" not in rows[1]
    meta = json.loads((tmp_path / "ladder.json").read_text())["meta"]
    assert meta["e0_rule"] == "auto"
    with pytest.raises(ValueError, match="None or 'auto', got 'free'"):
        snnp.ladder.scan(train, test, e0="free")


def _labelled(atoms, energy=-1.0):
    from snnp import Structure
    return Structure(atoms, energy * len(atoms))


def test_angular_reach_ends_at_the_first_coordination_shell(tmp_path):
    """snnp.filters.angular_reach: the next shell after the first gap, wider than a quarter of
    the nearest-neighbour distance, between the median k-th neighbour distances.  Diamond (4 neighbours at 2.35 A, the next 12
    at 3.84 A): 3.84; fcc (12 at a/sqrt2, 6 at a): a; bcc, whose 8 + 6 first neighbours are one
    shell: the third shell a sqrt2; no gap inside the cutoff, or no energies: None.  The
    ladder's "auto" records the reach it chose in every row and the table's meta."""
    from ase.build import bulk
    from snnp.filters import angular_reach
    si = [_labelled(bulk("Si", "diamond", a=5.43, cubic=True))]
    cu = [_labelled(bulk("Cu", "fcc", a=3.61, cubic=True))]
    mo = [_labelled(bulk("Mo", "bcc", a=3.16, cubic=True))]
    assert angular_reach(si, 5.0) == pytest.approx(5.43 / np.sqrt(2))
    assert angular_reach(cu, 5.0) == pytest.approx(3.61)
    assert angular_reach(mo, 5.0) == pytest.approx(3.16 * np.sqrt(2))
    assert angular_reach(mo, 4.0) is None                 # the third shell lies beyond 4 A
    assert angular_reach([snnp.Structure(si[0].atoms)], 5.0) is None     # no energy labels
    # the lowest-energy structures are the ones measured: a hot cell (0.3 A rattle) holding
    # most of their atoms fills the gap, and is left out when it is not among them
    hot = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    hot.rattle(0.3, seed=0)
    both = si + [_labelled(hot, energy=-0.5)]
    assert angular_reach(both, 5.0, n_lowest=1) == pytest.approx(5.43 / np.sqrt(2))
    assert angular_reach(both, 5.0) is None
    train = datasets.emt_copper(scale=0.3, seed=1)
    test = datasets.emt_copper(scale=0.15, seed=2)
    reach = angular_reach(train.structures, 4.5)
    assert 3.3 < reach < 3.65                            # EMT Cu: a = 3.61, rattled cells
    rows = snnp.ladder.scan(train, test, presets=["smeam"], cutoff=4.5, max_iter=5,
                            timing_atoms=100, log=None, out=tmp_path, angular_cutoff="auto")
    assert rows[0]["angular_cutoff"] == reach
    meta = json.loads((tmp_path / "ladder.json").read_text())["meta"]
    assert meta["angular_cutoff"] == reach and meta["angular_reach"] == "auto"
    assert {s.x1 for bank in snnp.load(tmp_path / "smeam.json").filters.f for s in bank} == {reach}
    with pytest.raises(ValueError, match="a distance, None or 'auto'"):
        snnp.ladder.scan(train, test, angular_cutoff="first shell")


def test_cli_auto_recipe_fills_only_the_options_the_user_left_unset(tmp_path):
    from snnp.cli import AUTO_RECIPE, _apply_config, _auto_recipe, build_parser

    def resolved(argv):
        parser = build_parser()
        args = _apply_config(parser, parser.parse_args(argv), argv)
        _auto_recipe(args)
        return args.angular_cutoff, args.max_iter, args.patience

    def e0(argv):
        parser = build_parser()
        args = _apply_config(parser, parser.parse_args(argv), argv)
        _auto_recipe(args)
        return args.e0

    assert resolved(["ladder", "--data", "emt-cu", "--auto", "--max-iter", "50"]) == ("auto", 50, 3)
    assert resolved(["ladder", "--data", "emt-cu", "--auto"]) == ("auto", 2400, 3)
    assert e0(["ladder", "--data", "emt-cu", "--auto"]) == ["auto"]
    assert e0(["ladder", "--data", "emt-cu", "--auto", "--e0", "Cu=3.5"]) == ["Cu=3.5"]

    def chain(argv):
        parser = build_parser()
        args = _apply_config(parser, parser.parse_args(argv), argv)
        _auto_recipe(args)
        return args.chain

    assert chain(["ladder", "--data", "emt-cu", "--auto"]) is True
    assert build_parser().parse_args(["ladder", "--data", "emt-cu"]).chain is False
    assert chain(["ladder", "--data", "emt-cu", "--auto", "--no-climb"]) is False
    assert chain(["ladder", "--data", "emt-cu", "--auto", "--no-chain"]) is False
    # --e0 fitted: e0 by least squares, also under --auto
    from snnp.cli import _parse_e0
    assert e0(["ladder", "--data", "emt-cu", "--auto", "--e0", "fitted"]) == ["fitted"]
    assert _parse_e0(["fitted"], auto=True) is None and _parse_e0(None) is None
    # a value equal to the default is still the user's choice, on the command line or in a file
    assert resolved(["ladder", "--data", "emt-cu", "--auto", "--max-iter", "300"])[1] == 300
    cfg = tmp_path / "run.yaml"
    cfg.write_text("max-iter: 300\npatience: 2\n")
    assert resolved(["ladder", "--data", "emt-cu", "--auto", "--config", str(cfg)]) == \
        ("auto", 300, 2)
    assert AUTO_RECIPE["max_iter"] == (300, 2400)
    # --residual: none, all, or the s-NNPs named, on the command line or in a file
    from snnp.cli import _parse_residual

    def residual(argv):
        parser = build_parser()
        args = _apply_config(parser, parser.parse_args(argv), argv)
        if args.auto:
            _auto_recipe(args)
        return _parse_residual(args.residual)

    assert residual(["ladder", "--data", "emt-cu", "--auto"]) is False
    assert residual(["ladder", "--data", "emt-cu", "--auto", "--residual", "snnp_small"]) == \
        ["snnp_small"]
    assert residual(["ladder", "--data", "emt-cu"]) is False
    assert residual(["ladder", "--data", "emt-cu", "--residual"]) is True
    assert residual(["ladder", "--data", "emt-cu", "--auto", "--residual", "none"]) is False
    assert residual(["ladder", "--data", "emt-cu", "--auto", "--residual"]) is True
    cfg.write_text("residual: false\n")              # the form ladder.yaml had before
    assert residual(["ladder", "--data", "emt-cu", "--auto", "--config", str(cfg)]) is False
    cfg.write_text("residual: true\n")
    assert residual(["ladder", "--data", "emt-cu", "--config", str(cfg)]) is True
    cfg.write_text("residual: [snnp_small, snnp_medium]\n")
    assert residual(["ladder", "--data", "emt-cu", "--config", str(cfg)]) == \
        ["snnp_small", "snnp_medium"]
    with pytest.raises(CLIError, match="cannot go with preset names"):
        _parse_residual(["none", "snnp_small"])
    args = build_parser().parse_args(["ladder", "--data", "emt-cu", "--angular-cutoff", "3.5"])
    assert args.angular_cutoff == 3.5 and not args.auto


@pytest.mark.parametrize("argv, message", [
    (["ladder", "--prior", "-1"], "--prior must be >= 0, got -1.0"),
    (["ladder", "--prior", "1", "--no-climb"], "it needs the climb"),
    (["ladder", "--prior", "1", "--presets", "snnp_small"], "it needs the climb"),
    (["ladder", "--prior", "1", "--repulsion-weight", "1e-3"], "cannot be combined with --repulsion"),
    (["ladder", "--prior", "1", "--cleavage-weight", "1e-3"], "cannot be combined with --cleavage"),
    (["ladder", "--e0", "Si"], "--e0 takes ELEMENT=NUMBER pairs (e.g. Si=-0.80), got 'Si'"),
    (["ladder", "--e0", "auto", "Si=-0.8"], "--e0 auto stands alone, got auto Si=-0.8"),
    (["ladder", "--e0", "fitted", "Si=-0.8"], "--e0 fitted stands alone, got fitted Si=-0.8"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "x.json", "--e0", "auto"],
     "--e0 auto chooses e0 on a ladder's validation"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "x.json", "--e0", "Cu=low"], "got 'Cu=low'"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "x.json", "--e0", "Si=-0.8"],
     "e0 names elements ['Si'] that the model does not have"),
    (["eval", "missing.json", "--data", "emt-cu"], "model file 'missing.json' does not exist"),
    (["eval", "snnp_small", "--data", "emt-cu"], "is a preset name"),
    (["fit", "nonsense", "--data", "emt-cu", "--out", "x.json"], "neither a preset"),
    (["fit", "smeam", "--data", "nowhere.xyz", "--out", "x.json"], "does not exist"),
    (["fit", "smeam", "--data", "mlearn:Xx", "--out", "x.json"], "mlearn has no training set for 'Xx'"),
])
def test_cli_bad_input_is_one_line_and_nonzero(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_rejects_unknown_preset(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ladder", "--presets", "huge"])
    assert exc.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["ladder", "--angular-cutoff", "far"])
    assert exc.value.code == 2
    assert "expected a distance in Å or 'auto', got 'far'" in capsys.readouterr().err


def test_cli_dataset_without_labels(tmp_path, capsys):
    import ase.io
    from ase.build import bulk
    ase.io.write(tmp_path / "nolabels.xyz", [bulk("Cu", cubic=True)], format="extxyz")
    assert main(["fit", "smeam", "--data", str(tmp_path / "nolabels.xyz"), "--out",
                 str(tmp_path / "m.json")]) == 2
    assert "no energy or force labels" in capsys.readouterr().err


def test_cli_fit_eval_export_round_trip(tmp_path, capsys):
    import ase.io
    ds = datasets.emt_copper(scale=0.2)
    images = []
    for s in ds:
        a = s.atoms.copy()
        a.info["energy"] = s.energy
        a.arrays["forces"] = s.forces
        images.append(a)
    ase.io.write(tmp_path / "cu.xyz", images, format="extxyz")
    model = tmp_path / "m.json"
    assert main(["fit", "smeam", "--data", str(tmp_path / "cu.xyz"), "--out", str(model),
                 "--max-iter", "5", "--cutoff", "4.5", "--quiet"]) == 0
    assert main(["eval", str(model), "--data", str(tmp_path / "cu.xyz"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"energy_meV_per_atom"' in out
    m = snnp.load(model)
    assert m.e0[0] != 0.0                        # a fitted model has a reference energy
    assert main(["export", str(model), str(tmp_path / "cu.meam.spline")]) == 2
    assert "--drop-e0" in capsys.readouterr().err
    assert main(["export", str(model), str(tmp_path / "cu.meam.spline"), "--drop-e0"]) == 0
    assert main(["export", "--lammps", str(model), str(tmp_path / "cu.snnp")]) == 0
    from snnp.io.lammps_snnp import read_kernel_tables
    assert read_kernel_tables(tmp_path / "cu.snnp")["species"] == ["Cu"]
    again = snnp.SplineMEAM.from_lammps(tmp_path / "cu.meam.spline")
    atoms = ds[0].atoms
    np.testing.assert_allclose(again.compute(atoms)["energy"],
                               m.compute(atoms)["energy"] - len(atoms) * m.e0[0], rtol=1e-12)
    assert main(["export", "Mo/smeam", str(tmp_path / "mo.meam.spline"), "--drop-e0"]) == 0
    # climb from the fitted rung 0, with and without the prior
    data = ["--data", str(tmp_path / "cu.xyz"), "--max-iter", "3", "--quiet"]
    for extra, name in (([], "c.json"), (["--prior", "0.5"], "p.json")):
        assert main(["fit", "snnp_small", "--from", str(model), "--out", str(tmp_path / name)]
                    + extra + data) == 0
    plain, pulled = snnp.load(tmp_path / "c.json"), snnp.load(tmp_path / "p.json")
    assert plain.n_radial == 2 and plain.cutoff == m.cutoff     # carried from rung 0
    assert "prior" not in plain.provenance["fit"]["loss"]
    assert pulled.provenance["fit"]["loss"]["prior"] == 0.5
    # an s-NNP climbs from a fitted smaller s-NNP too: its filters first
    assert main(["fit", "snnp_medium", "--from", str(tmp_path / "c.json"), "--out",
                 str(tmp_path / "g.json")] + data) == 0
    grown = snnp.load(tmp_path / "g.json")
    assert (grown.n_radial, grown.n_angular, grown.mlp.widths) == (12, 4, (16, 16))
    capsys.readouterr()
    for argv, message in (
            (["fit", "snnp_small", "--prior", "1"], "--prior needs --from"),
            (["fit", "snnp_small", "--from", str(tmp_path / "c.json")], "already snnp_small-sized"),
            (["fit", "smeam_nn", "--from", str(tmp_path / "c.json")], "not a SNNP"),
            (["fit", "smeam", "--from", str(model)], "not a preset above rung 0"),
            (["fit", str(model), "--from", str(model)], "name a preset")):
        assert main(argv + ["--out", str(tmp_path / "x.json")] + data) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_interpretability_plots_and_contributions(tmp_path):
    from snnp import plotting
    model = snnp.presets(["Cu"], cutoff=4.5)["snnp_small"]
    data = datasets.emt_copper(scale=0.2)
    model.fit(data, max_iter=10, log=False)
    names, contrib, species = plotting.filter_contributions(model, data)
    assert names == ["R1", "R2", "A1", "A2"] and contrib.shape == (data.n_atoms, 4)
    # ablating a filter the network does not use changes nothing
    model.mlp.weights[0][0][0][:, 0] = 0.0
    model.invalidate()
    _, contrib, _ = plotting.filter_contributions(model, data)
    assert np.abs(contrib[:, 0]).max() < 1e-12 and np.abs(contrib[:, 1]).max() > 0
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.json"
    model.save(path)
    assert main(["plot", str(path), "--data", "emt-cu", "--out", str(tmp_path / "plots")]) == 0
    for name in ("filters", "embedding", "contributions"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 5000


def test_zoo_models_load_by_name(tmp_path, monkeypatch):
    (tmp_path / "Cu").mkdir()
    model = snnp.presets(["Cu"], cutoff=4.5)["smeam"]
    model.save(tmp_path / "Cu" / "smeam.json")
    monkeypatch.setattr(snnp, "_zoo_dir", lambda: str(tmp_path))
    assert snnp.zoo() == ["Cu/smeam"]
    assert snnp.load("Cu/smeam") == model
    with pytest.raises(FileNotFoundError, match="no zoo model of that name; zoo models: \\['Cu/smeam'\\]"):
        snnp.load("Cu/huge")


@pytest.mark.parametrize("element", ["Li", "Mo", "Si"])
def test_zoo_table_holds_what_its_models_give(element):
    """Every installed zoo model of an element, scored again on the mlearn test set and on the
    zoo's validation split (10% of the training set, seed 0), gives the energy and force RMSEs
    that the repository's models_zoo/zoo.json (and so the README table) records for it, and
    carries the test data's hash in its provenance; and the element's ladder is monotone in
    validation force RMSE: every preset's is at most the one below's (energy: the next test)."""
    test = snnp.Dataset.from_mlearn(data_path("mlearn", element, "test.json"))
    val = snnp.Dataset.from_mlearn(data_path("mlearn", element, "training.json")).split(
        0.1, seed=0)[1]
    table = Path(__file__).resolve().parents[1] / "models_zoo" / "zoo.json"
    rows = [r for r in json.loads(table.read_text())["rows"] if r["element"] == element]
    assert [r["preset"] for r in rows] == list(snnp.models.LADDER)
    for row in rows:
        model = snnp.load(f"{element}/{row['preset']}")
        for data, prefix in ((test, ""), (val, "validation_")):
            score = model.score(data)
            assert score["energy_meV_per_atom"]["rmse"] == pytest.approx(
                row[prefix + "energy_rmse_meV_per_atom"], rel=1e-9), (prefix, row["preset"])
            assert score["forces_eV_per_A"]["rmse"] == pytest.approx(
                row[prefix + "force_rmse_eV_per_A"], rel=1e-9), (prefix, row["preset"])
        assert model.provenance["test_data_sha256"] == test.sha256()
    for below, above in zip(rows, rows[1:]):
        key = "validation_force_rmse_eV_per_A"
        assert above[key] <= below[key], (above["preset"], below["preset"])


@pytest.mark.parametrize("element", ["Li", "Mo", "Si"])
def test_zoo_ladder_is_monotone_in_validation_energy(element):
    """Up each element's zoo ladder the validation energy RMSE (models_zoo/zoo.json, which the
    test above checks against the models) never rises."""
    table = Path(__file__).resolve().parents[1] / "models_zoo" / "zoo.json"
    rows = [r for r in json.loads(table.read_text())["rows"] if r["element"] == element]
    key = "validation_energy_rmse_meV_per_atom"
    assert all(a[key] <= b[key] for b, a in zip(rows, rows[1:])), [r[key] for r in rows]
