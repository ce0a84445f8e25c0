"""Config files, logging and learning curves of ``snnp fit`` and ``snnp ladder`` (issue 18),
and a fit that diverges partway through (issue 16)."""
import ast
import json
import os

import numpy as np
import pytest
import yaml

import snnp
from snnp import cli
from snnp.fitlog import read_fit_log

FIT = ["fit", "smeam", "--data", "emt-cu", "--max-iter", "12", "--checkpoint-every", "4",
       "--forces-weight", "0.02", "--extrapolation", "8"]


def run(args, capsys):
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_writes_its_config_and_repeats_bit_for_bit(tmp_path, capsys):
    first = tmp_path / "a" / "model.json"
    first.parent.mkdir()
    code, out, _ = run(FIT + ["--out", first, "--quiet"], capsys)
    assert code == 0
    config_path = tmp_path / "a" / "model.config.yaml"
    config = yaml.safe_load(config_path.read_text())
    assert config["max_iter"] == 12 and config["forces_weight"] == 0.02
    assert config["model"] == "smeam" and config["data"] == "emt-cu"
    assert config["threads"] == snnp.get_num_threads()        # the count used, not 0
    fitted = snnp.load(first)
    stored = {k: v for k, v in fitted.provenance["config"].items() if k != "command"}
    assert stored == config                                    # the same record in the model
    again = tmp_path / "b" / "model.json"
    again.parent.mkdir()
    assert run(["fit", "--config", config_path, "--out", again, "--quiet"], capsys)[0] == 0
    repeated = snnp.load(again)
    assert np.array_equal(fitted.get_params(), repeated.get_params())     # bit for bit
    assert fitted.provenance["history"] == [
        {**h, "seconds": g["seconds"]} for h, g in
        zip(repeated.provenance["history"], fitted.provenance["history"])]


def test_command_line_overrides_the_config(tmp_path, capsys):
    cfg = tmp_path / "fit.yaml"
    cfg.write_text("model: smeam\ndata: emt-cu\nmax-iter: 12\ncheckpoint_every: 4\n"
                   "e0: {Cu: -0.5}\nextrapolation: 0\n")
    out = tmp_path / "m.json"
    assert run(["fit", "--config", cfg, "--max-iter", "4", "--out", out, "--quiet"],
               capsys)[0] == 0
    model = snnp.load(out)
    assert model.provenance["steps"] == 4
    assert model.provenance["config"]["max_iter"] == 4
    assert model.e0.tolist() == [-0.5]                         # e0 as a mapping in YAML
    written = yaml.safe_load((tmp_path / "m.config.yaml").read_text())
    assert written["max_iter"] == 4 and written["e0"] == ["Cu=-0.5"]


@pytest.mark.parametrize("text, message", [
    ("max_iters: 5\n", "unknown key 'max_iters' for snnp fit"),
    ("max_iter: abc\n", "max_iter: must be a positive integer, got 'abc'"),
    ("max_iter: 0\n", "max_iter: must be a positive integer, got '0'"),
    ("quiet: 3\n", "quiet: must be true or false, got 3"),
    ("freeze: [radia]\n", "freeze: 'radia' is not one of"),
    ("optimizer: sgd\n", "optimizer: 'sgd' is not one of lbfgs, adam"),
    ("forces_weight: [1, 2]\n", "forces_weight: takes one value"),
    ("data: 5\n", "data: must be text, got 5"),
    ("max_iter: [1\n", "is not valid YAML (line 2)"),
    ("- 1\n- 2\n", "must hold a mapping of option: value, not a list"),
])
def test_a_bad_config_is_one_line_naming_the_key(tmp_path, capsys, text, message):
    cfg = tmp_path / "fit.yaml"
    cfg.write_text(text)
    code, out, err = run(["fit", "--config", cfg, "--data", "emt-cu", "--out",
                          tmp_path / "m.json"], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "m.config.yaml").exists()


def test_missing_required_options_name_the_config_key(tmp_path, capsys):
    code, _, err = run(["fit", "smeam", "--out", tmp_path / "m.json"], capsys)
    assert code == 2 and "--data is required (on the command line or as 'data:' in --config)" in err


def test_log_file_levels_and_quiet(tmp_path, capsys):
    out = tmp_path / "m.json"
    code, printed, _ = run(FIT + ["--out", out, "--quiet"], capsys)
    assert code == 0
    assert "iter" not in printed and f"saved {out}" in printed     # quiet: results only
    log = (tmp_path / "m.log").read_text()
    assert "INFO snnp.cli: fitting smeam: SplineMEAM Cu, 61 parameters" in log
    assert log.count("INFO snnp.training: iter") == 3               # every 4 of 12 iterations
    assert f"saved {out}" in log
    quiet_log = tmp_path / "w.json"
    code, printed, _ = run(FIT + ["--out", quiet_log, "--log-level", "warning"], capsys)
    assert code == 0 and "iter" not in printed
    assert "snnp.training" not in (tmp_path / "w.log").read_text()    # results only
    code, printed, _ = run(FIT + ["--out", tmp_path / "v.json"], capsys)
    assert printed.count("iter ") == 3 and printed.startswith("fitting smeam")
    assert snnp.cli.logging.getLogger("snnp").handlers == []         # handlers removed after


def test_fit_log_and_learning_curve_are_written(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert run(FIT + ["--out", out, "--quiet"], capsys)[0] == 0
    history = snnp.load(out).provenance["history"]
    rows = read_fit_log(tmp_path / "m.fit-log.csv")
    # a point every iteration (a tenth of --checkpoint-every 4, at least 1), the objective at
    # the checkpoints
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert [r["step"] for r in rows if r["checkpoint"]] == [4, 8, 12]
    assert all((r["objective"] is None) == (not r["checkpoint"]) for r in rows)
    assert len(rows) == len(history)
    for row, h in zip(rows, history):
        for key in ("objective", "train_energy_rmse", "train_force_rmse",
                    "validation_energy_rmse", "validation_force_rmse"):
            assert row[key] == h[key]
    assert history[-1]["validation_force_rmse"] > 0
    pytest.importorskip("matplotlib")
    png = tmp_path / "m.learning.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_ladder_config_round_trip(tmp_path, capsys):
    first = tmp_path / "one"
    args = ["ladder", "--presets", "smeam", "--max-iter", "6", "--forces-weight", "0.004",
            "--timing-atoms", "64", "--iterations", "smeam=5", "--out", first, "--quiet"]
    assert run(args, capsys)[0] == 0
    config = yaml.safe_load((first / "ladder.yaml").read_text())
    assert config["forces_weight"] == 0.004 and config["iterations"] == ["smeam=5"]
    assert config["presets"] == ["smeam"]
    model = snnp.load(first / "smeam.json")
    assert model.provenance["preset"] == "smeam" and model.provenance["steps"] == 5
    assert (first / "smeam.fit-log.csv").exists()
    assert "snnp.ladder: [1/1] smeam" in (first / "ladder.log").read_text()
    second = tmp_path / "two"
    assert run(["ladder", "--config", first / "ladder.yaml", "--out", second, "--quiet"],
               capsys)[0] == 0
    assert np.array_equal(model.get_params(), snnp.load(second / "smeam.json").get_params())
    rows = [json.loads((d / "ladder.json").read_text())["rows"][0] for d in (first, second)]
    assert rows[0]["energy_rmse_meV_per_atom"] == rows[1]["energy_rmse_meV_per_atom"]


def test_a_fit_that_diverges_stops_naming_the_step(tmp_path):
    train, val = snnp.datasets.emt_copper().split(0.1)
    model = snnp.models.presets(["Cu"])["snnp_small"]
    start = model.get_params().copy()
    ckpt = tmp_path / "ckpt.json"
    with np.errstate(all="ignore"), pytest.raises(snnp.training.FitDivergedError,
                                                  match="diverged at epoch 1"):
        model.fit(train, val, optimizer="adam", epochs=3, learning_rate=1e200,
                  checkpoint=ckpt, log=False)
    params = model.get_params()
    assert np.isfinite(params).all()
    assert not ckpt.exists()                    # no non-finite state was saved
    assert params.shape == start.shape


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_cli_fit_exits_2(tmp_path, capsys):
    code, _, err = run(["fit", "snnp_small", "--data", "emt-cu", "--optimizer", "adam",
                        "--epochs", "2", "--learning-rate", "1e200", "--out",
                        tmp_path / "m.json"], capsys)
    assert code == 2 and "diverged at epoch 1" in err
    assert not (tmp_path / "m.json").exists()


def test_the_library_does_not_print():
    """Library code reports through ``logging``; only the command lines (cli.py, the ``main``
    of a module run with python -m, the zoo's build script) and ``show_config`` print."""
    root = os.path.dirname(snnp.__file__)
    offenders = []
    for folder, _, files in os.walk(root):
        if os.path.basename(folder) == "models_zoo":        # scripts beside the zoo's files
            continue
        for name in files:
            if not name.endswith(".py") or name == "cli.py":
                continue
            path = os.path.join(folder, name)
            tree = ast.parse(open(path).read())
            allowed = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                       and f.name in ("main", "_main", "show_config") for n in ast.walk(f)}
            offenders += [f"{os.path.relpath(path, root)}:{n.lineno}" for n in ast.walk(tree)
                          if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
                          and id(n) not in allowed]
    assert offenders == []
