"""What `snnp eval --out DIR` writes (issue 18, item 3): predictions.extxyz in MACE's key names,
errors.json and parity.png; the fit log (snnp.fitlog) and the learning-curve plot."""
import json
import math
import struct
import sys

import numpy as np
import pytest

import snnp
from conftest import data_path
from snnp import cli
from snnp.cli import main

SI_MODEL = "Si/snnp_small"


def _png_size(path):
    """(width, height) of a PNG file, from its IHDR chunk."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", head[16:24])


def _same_json(a, b):
    """Equal as JSON documents (NaN equal to NaN, as both files write it)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.fixture
def si_test():
    return str(data_path("mlearn", "Si", "test.json"))


def test_eval_out_writes_predictions_errors_and_parity(tmp_path, capsys, si_test):
    import ase.io
    out = tmp_path / "eval"
    assert main(["eval", SI_MODEL, "--data", si_test, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = ("predictions.extxyz", "errors.json", "parity.png")
    wrote = [line for line in printed.splitlines() if line.startswith("wrote ")]
    assert wrote == ["wrote " + ", ".join(str(out / n) for n in names)]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)     # no temporary files left

    model, data = snnp.load(SI_MODEL), cli.load_data(si_test, "test")
    frames = ase.io.read(out / "predictions.extxyz", ":")
    assert len(frames) == len(data) == 25
    for atoms, st in zip(frames, data):
        res = model.compute(st.atoms, ("energy", "forces", "stress", "energies", "extrapolation"),
                            strict=False)
        assert atoms.calc is None                          # nothing renamed into a calculator
        assert not {"energy", "forces", "stress"} & (set(atoms.info) | set(atoms.arrays))
        assert len(atoms) == len(st.atoms) and list(atoms.numbers) == list(st.atoms.numbers)
        np.testing.assert_allclose(atoms.positions, st.atoms.positions, atol=1e-8)
        # the model's predictions
        assert atoms.info["snnp_energy"] == pytest.approx(res["energy"], rel=1e-12, abs=0)
        np.testing.assert_allclose(atoms.info["snnp_stress"], res["stress"], rtol=1e-12, atol=0)
        np.testing.assert_allclose(atoms.arrays["snnp_forces"], res["forces"], atol=1e-8)
        np.testing.assert_allclose(atoms.arrays["snnp_energies"], res["energies"], atol=1e-8)
        assert atoms.arrays["snnp_energies"].sum() == pytest.approx(res["energy"], abs=1e-6)
        assert atoms.info["snnp_max_extrapolation"] == pytest.approx(res["max_extrapolation"],
                                                                     rel=1e-12)
        np.testing.assert_allclose(atoms.arrays["snnp_extrapolation"], res["extrapolation"],
                                   atol=1e-8)
        # the reference labels, under MACE's names
        assert atoms.info["REF_energy"] == st.energy
        np.testing.assert_array_equal(atoms.info["REF_stress"], st.stress)
        np.testing.assert_allclose(atoms.arrays["REF_forces"], st.forces, atol=1e-8)
        assert atoms.info["config_type"] == atoms.info["group"] == st.group

    errors = json.loads((out / "errors.json").read_text())
    assert errors["model"] == SI_MODEL and errors["data"] == si_test
    assert errors["n_structures"] == 25 and errors["n_atoms"] == data.n_atoms
    assert set(errors["groups"]) == set(data.groups)
    assert errors["extrapolation"]["structures_above_1"] >= 0
    assert main(["eval", SI_MODEL, "--data", si_test, "--json"]) == 0
    assert _same_json(errors, json.loads(capsys.readouterr().out))
    score = model.score(data)
    assert errors["energy_meV_per_atom"]["rmse"] == score["energy_meV_per_atom"]["rmse"]

    width, height = _png_size(out / "parity.png")
    assert 1200 <= width <= 3000 and 400 <= height <= 1200
    assert (out / "parity.png").stat().st_size > 30_000


def test_eval_json_with_out_keeps_stdout_json(tmp_path, capsys, si_test):
    out = tmp_path / "eval"
    assert main(["eval", SI_MODEL, "--data", si_test, "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)                   # nothing but the JSON on stdout
    assert _same_json(printed, json.loads((out / "errors.json").read_text()))
    assert f"wrote {out / 'predictions.extxyz'}" in captured.err
    # predictions.extxyz is data in MACE's convention: the same errors, stresses included
    assert main(["eval", SI_MODEL, "--data", str(out / "predictions.extxyz"), "--json",
                 "--energy-key", "REF_energy", "--forces-key", "REF_forces",
                 "--stress-key", "REF_stress"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["n_structures"] == printed["n_structures"]
    assert set(again["groups"]) == set(printed["groups"])          # from config_type
    for key in ("energy_meV_per_atom", "forces_eV_per_A", "stress_GPa"):
        assert again[key]["n"] == printed[key]["n"] > 0
        assert again[key]["rmse"] == pytest.approx(printed[key]["rmse"], rel=1e-6)


def test_eval_of_a_mace_style_file_with_a_cluster(tmp_path, capsys):
    """REF_* labels read with --energy-key/--forces-key; a cluster without a cell gets no
    stress; predictions.extxyz read back as data gives the same errors."""
    pytest.importorskip("matplotlib")
    import ase.io
    from ase.calculators.emt import EMT
    from ase.cluster import Icosahedron
    from models_for_tests import random_spline_meam
    from snnp import plotting
    ds = snnp.datasets.emt_copper(scale=0.15)
    images = []
    for s in ds:
        a = s.atoms.copy()
        a.info.clear()
        a.info.update(REF_energy=s.energy, config_type=s.group)
        a.arrays["REF_forces"] = s.forces
        images.append(a)
    cluster = Icosahedron("Cu", 2)
    cluster.rattle(0.05, seed=1)
    cluster.calc = EMT()
    cluster.info.update(REF_energy=cluster.get_potential_energy(), config_type="cluster")
    cluster.arrays["REF_forces"] = cluster.get_forces()
    cluster.calc = None
    images.append(cluster)
    ase.io.write(tmp_path / "cu.xyz", images, format="extxyz")
    model = random_spline_meam(["Cu"], seed=3)
    model.save(tmp_path / "cu.json")
    keys = ["--energy-key", "REF_energy", "--forces-key", "REF_forces"]
    out = tmp_path / "eval"
    assert main(["eval", str(tmp_path / "cu.json"), "--data", str(tmp_path / "cu.xyz"),
                 "--out", str(out)] + keys) == 0
    capsys.readouterr()
    frames = ase.io.read(out / "predictions.extxyz", ":")
    assert len(frames) == len(images)
    assert [f.info["config_type"] for f in frames] == [a.info["config_type"] for a in images]
    last = frames[-1]
    assert not last.pbc.any() and "snnp_stress" not in last.info and "REF_stress" not in last.info
    assert all("snnp_stress" in f.info for f in frames[:-1])      # periodic cells: stress
    assert "snnp_max_extrapolation" not in last.info               # no grade reference
    np.testing.assert_allclose(last.arrays["REF_forces"], images[-1].arrays["REF_forces"],
                               atol=1e-8)
    # predictions.extxyz is itself data in MACE's convention
    assert main(["eval", str(tmp_path / "cu.json"), "--data", str(out / "predictions.extxyz"),
                 "--json"] + keys) == 0
    again = json.loads(capsys.readouterr().out)
    errors = json.loads((out / "errors.json").read_text())
    for key in ("energy_meV_per_atom", "forces_eV_per_A"):
        assert again[key]["rmse"] == pytest.approx(errors[key]["rmse"], rel=1e-6)
    assert math.isnan(errors["stress_GPa"]["rmse"])          # no stress labels at all

    # the parity figure: units, RMSEs in titles and legends, the stress panel skipped
    from snnp.ladder import format_error
    fig = plotting.plot_parity(out / "predictions.extxyz", tmp_path / "parity.png")
    energy, forces, stress = fig.axes[:3]
    assert energy.get_xlabel() == "reference energy (eV/atom)"
    assert energy.get_ylabel() == "snnp energy (eV/atom)"
    assert forces.get_xlabel() == "reference force component (eV/Å)"
    assert (f"RMSE {format_error(errors['energy_meV_per_atom']['rmse'])} meV/atom"
            in energy.get_title())
    groups = sorted({a.info["config_type"] for a in images}, key=str.lower)
    for ax, key in ((energy, "energy_meV_per_atom"), (forces, "forces_eV_per_A")):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert [label.split(":")[0] for label in labels] == groups     # one entry per group
        shown = dict(label.split(": ") for label in labels)
        for g in set(groups) - {"cluster"}:          # the file's 8 decimals: 1e-8 eV/Å apart
            rmse = errors["groups"][g][key]["rmse"]
            assert float(shown[g]) == pytest.approx(rmse, rel=2e-3, abs=1e-7)
    assert stress.get_legend() is None
    assert any("panel skipped" in t.get_text() for t in stress.texts)


def test_eval_out_refused_before_any_work(tmp_path, capsys, monkeypatch, si_test):
    def no_work(*args, **kwargs):
        raise AssertionError("the model or data were loaded before --out was checked")
    monkeypatch.setattr(cli, "_load_model", no_work)
    monkeypatch.setattr(cli, "load_data", no_work)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, message in (("/proc/eval-out", "cannot write to /proc/eval-out"),
                         (str(a_file / "sub"), "is a file, not a folder")):
        assert main(["eval", SI_MODEL, "--data", si_test, "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("snnp eval: error: ") and message in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_eval_without_matplotlib_writes_the_rest(tmp_path, capsys, monkeypatch, si_test):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # find_spec -> None, import fails
    out = tmp_path / "eval"
    assert main(["eval", SI_MODEL, "--data", si_test, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["errors.json", "predictions.extxyz"]
    assert f"skipped {out / 'parity.png'}: Matplotlib is not installed" in printed
    assert f"wrote {out / 'predictions.extxyz'}, {out / 'errors.json'}\n" in printed


# -- the fit log and the learning curve -------------------------------------------------------

def _history(n=4, validation=True):
    rows = []
    for k in range(n):
        rows.append({"step": 25 * k, "seconds": 0.1 + 1.7 * k, "objective": 1.0 / (k + 1) + 0.1,
                     "train_energy_rmse": 40.0 / (k + 1) + 0.2,
                     "train_force_rmse": 0.3 / (k + 1) + 0.01,
                     "validation_energy_rmse": 45.0 / (k + 1) if validation else None,
                     "validation_force_rmse": 0.35 / (k + 1) if validation else None})
    return rows


def test_fit_log_round_trip(tmp_path):
    from snnp.fitlog import COLUMNS, read_fit_log, write_fit_log
    history = _history(5) + [{**_history(1, validation=False)[0], "step": 200,
                              "seconds": 0.1 + 0.2, "extra": "ignored"}]
    path = tmp_path / "fit-log.csv"
    write_fit_log(history, path)
    assert [p.name for p in tmp_path.iterdir()] == ["fit-log.csv"]       # written atomically
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["step", "seconds", "objective", "train_energy_rmse_meV_per_atom",
                      "train_force_rmse_eV_per_A", "validation_energy_rmse_meV_per_atom",
                      "validation_force_rmse_eV_per_A", "checkpoint"] == [c for _, c in COLUMNS]
    back = read_fit_log(path)
    expected = [{k: row.get(k) for k, _ in COLUMNS} for row in history]
    assert back == expected                                        # floats bit for bit
    assert back[-1]["validation_energy_rmse"] is None and isinstance(back[-1]["step"], int)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not an snnp fit log"):
        read_fit_log(tmp_path / "other.csv")
    write_fit_log([], tmp_path / "empty.csv")
    assert read_fit_log(tmp_path / "empty.csv") == []


def test_plot_learning_one_point_and_no_validation(tmp_path):
    pytest.importorskip("matplotlib")
    from snnp import plotting
    from snnp.fitlog import read_fit_log, write_fit_log
    # one checkpoint: drawn as points, a readable axis
    fig = plotting.plot_learning(_history(1), tmp_path / "one.png")
    energy, forces = fig.axes
    assert energy.get_yscale() == forces.get_yscale() == "log"
    assert energy.get_ylabel() == "energy RMSE (meV/atom)"
    assert forces.get_ylabel() == "force RMSE (eV/Å)" and energy.get_xlabel() == "step"
    assert [t.get_text().split(" ")[0] for t in energy.get_legend().get_texts()] == \
        ["train", "validation"]
    assert _png_size(tmp_path / "one.png")[0] > 800
    # no validation data: only the training curves; train solid, validation dashed
    fig = plotting.plot_learning(_history(6, validation=False), tmp_path / "train.png")
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 1 and lines[0].get_linestyle() == "-"
        assert [t.get_text() for t in ax.get_legend().get_texts()][0].startswith("train")
    fig = plotting.plot_learning(_history(6), tmp_path / "both.png")
    assert [line.get_linestyle() for line in fig.axes[0].get_lines()] == ["-", "--"]
    # what the fit log holds plots the same; a zero or NaN error (log axis) is left out
    write_fit_log(_history(3), tmp_path / "fit-log.csv")
    history = read_fit_log(tmp_path / "fit-log.csv")
    history[1]["train_force_rmse"] = 0.0
    history[2]["validation_force_rmse"] = float("nan")
    fig = plotting.plot_learning(history, tmp_path / "log.png")
    assert [len(line.get_xdata()) for line in fig.axes[1].get_lines()] == [2, 2]
    # no checkpoints at all (a fit that recorded none): a figure that says so, no error
    fig = plotting.plot_learning([], tmp_path / "none.png")
    assert all(any("no checkpoints recorded" in t.get_text() for t in ax.texts)
               for ax in fig.axes)
