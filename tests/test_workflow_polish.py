"""Workflow polish (issue 18): plot labels and colours, the ladder's outputs and messages, CLI
help texts, LAMMPS meam/spline files as CLI models, the import error of a source checkout, and
the fit header."""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import snnp
from snnp import cli, ladder

from conftest import data_path


def test_plot_filters_labels_colours_and_axis_labels(tmp_path):
    pytest.importorskip("matplotlib")
    from snnp import plotting
    model = snnp.presets(["Cu"], cutoff=4.6, r_min=1.7)["snnp_large"]
    assert model.n_radial >= 12
    fig = plotting.plot_filters(model, tmp_path / "filters.png")
    assert (tmp_path / "filters.png").stat().st_size > 5000
    radial, angular_radial, angular = fig.axes[:3]
    labels = [t.get_text() for t in radial.get_legend().get_texts()]
    assert labels == [rf"$\rho_{{{k}}}$" for k in range(1, model.n_radial + 1)]
    assert r"$\rho_{10}$" in labels and r"$\rho_{12}$" in labels
    assert [t.get_text() for t in angular.get_legend().get_texts()][-1] == \
        rf"$g_{{{model.n_angular}}}$"
    # every radial filter looks different: colour and line style together
    from matplotlib.colors import to_rgba
    looks = [(to_rgba(line.get_color()), line.get_linestyle()) for line in radial.get_lines()
             if line.get_label().startswith("$")]
    assert len(looks) == model.n_radial and len(set(looks)) == model.n_radial
    assert to_rgba(radial.get_lines()[10].get_color()) != to_rgba(radial.get_lines()[0].get_color())
    assert radial.get_ylabel() == r"$\rho(r)$"
    assert angular_radial.get_ylabel() == "$f(r)$" and angular.get_ylabel() == "g(θ)"


def test_format_error_drops_round_off_and_keeps_three_figures():
    f = ladder.format_error
    assert f(4.26e-15) == "0" and f(-3e-12) == "0"
    assert [f(v) for v in (10.5, 0.0123, 0.1, 9.996, 123.4, 1234.5)] == \
        ["10.5", "0.0123", "0.100", "10.0", "123", "1234"]
    assert f(1e-5) == "1.00e-05" and f(None) == "-" and f(float("nan")) == "-"


def _rows():
    row = {"preset": "smeam", "class": "SplineMEAM", "filters": "1+1", "mlp": "-",
           "n_params": 60, "energy_rmse_meV_per_atom": 10.54, "force_rmse_eV_per_A": 0.1234,
           "stress_rmse_GPa": 0.5, "iterations": 3, "us_per_atom_step": 2.0,
           "cost_vs_first": 1.0,
           "groups": {"Elastic": {"energy_rmse_meV_per_atom": 10.5,
                                  "force_rmse_eV_per_A": 4.26e-15}}}
    return [row, {**row, "preset": "snnp_small", "us_per_atom_step": 4.0, "cost_vs_first": 2.0,
                  "energy_rmse_meV_per_atom": 5.0}]


def test_ladder_md_names_the_data_and_threads_and_formats_groups(tmp_path):
    meta = {"train": "Cu (EMT)", "test": "Cu (EMT)", "data": "emt-cu", "fit_structures": 37,
            "fit_atoms": 1119, "validation_structures": 5, "validation_atoms": 147,
            "test_structures": 10, "test_atoms": 294, "train_structures": 42, "threads": 1}
    not_plotted = ladder.write_outputs(_rows(), tmp_path, meta=meta)
    text = (tmp_path / "ladder.md").read_text()
    assert ("Data: emt-cu (Cu (EMT)): train 37 structures (1119 atoms), validation 5 "
            "(147 atoms), test 10 (294 atoms); 1 thread.") in text
    assert "| smeam | 10.5 / 0 |" in text and "e-15" not in text
    assert "| smeam | SplineMEAM | 1+1 | - | 60 | 10.5 | 0.123 | 0.500 |" in text
    if _has_matplotlib():
        assert not_plotted is None and (tmp_path / "pareto.png").exists()


def _has_matplotlib():
    import importlib.util
    return importlib.util.find_spec("matplotlib") is not None


def test_pareto_note_says_why_the_plot_is_missing(tmp_path, monkeypatch):
    import importlib.util
    import time
    since = time.time() - 1
    (tmp_path / "pareto.png").write_bytes(b"png")
    assert cli._pareto_note(str(tmp_path), since) == "pareto.png/.svg"
    (tmp_path / "pareto.png").unlink()
    if _has_matplotlib():
        assert "plotting failed" in cli._pareto_note(str(tmp_path), since)
        with pytest.warns(RuntimeWarning, match="pareto.png/.svg not written: plotting failed"):
            bad = [{**_rows()[0], "us_per_atom_step": "not a number"}]
            assert "plotting failed" in ladder._try_pareto_plot(bad, str(tmp_path), None)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    note = cli._pareto_note(str(tmp_path), since)
    assert "Matplotlib is not installed" in note and "plotting failed" not in note
    assert "not installed" in ladder._try_pareto_plot(_rows(), str(tmp_path), None)


def test_ladder_cli_reports_pareto_and_data(tmp_path, capsys):
    out = tmp_path / "lad"
    assert cli.main(["ladder", "--presets", "smeam", "--max-iter", "2", "--out", str(out),
                     "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "needs the 'plot' extra" not in printed
    if _has_matplotlib():
        assert "pareto.png/.svg, ladder.yaml" in printed
    assert "Data: emt-cu (Cu (EMT)): train " in (out / "ladder.md").read_text()
    meta = json.loads((out / "ladder.json").read_text())["meta"]
    assert meta["threads"] == snnp.get_num_threads() and meta["test_atoms"] > 0


def test_every_cli_option_has_help():
    parser = cli.build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0]
    missing = [(name, act.dest) for name, sp in subs.choices.items() for act in sp._actions
               if not isinstance(act, argparse._HelpAction) and not (act.help or "").strip()]
    assert missing == []
    data = {a.dest: a.help for a in subs.choices["fit"]._actions}["data"]
    for spec in ("emt-cu", "mlearn:EL", ".xyz", ".extxyz", ".db", ".json"):
        assert spec in data


def test_cli_reads_lammps_meam_spline_files(tmp_path, capsys):
    path = str(data_path("meam_spline", "Si_1.meam.spline"))
    assert cli.main(["bench", path, "--atoms", "64"]) == 0
    assert "SplineMEAM ['Si']" in capsys.readouterr().out
    out = tmp_path / "Si.snnp"
    assert cli.main(["export", "--lammps", path, str(out)]) == 0
    assert out.stat().st_size > 0
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    assert cli.main(["bench", str(text)]) == 2
    err = capsys.readouterr().err
    assert "neither an snnp model file (JSON) nor a LAMMPS meam/spline file" in err
    assert "damaged JSON" not in err


def test_import_from_a_source_tree_without_kernels_says_what_to_do(tmp_path):
    src = Path(snnp.__file__).parent
    shutil.copytree(src, tmp_path / "snnp", ignore=shutil.ignore_patterns(
        "*.so", "*.pyd", "__pycache__"))
    # -S: no site packages, so no editable-install finder; the copy in cwd is what imports
    run = subprocess.run([sys.executable, "-S", "-c", "import snnp"], cwd=tmp_path,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ""})
    assert run.returncode != 0
    assert (f"snnp's compiled kernels were not found in {tmp_path / 'snnp'}: if that is a "
            "source checkout, run from outside it") in run.stderr
    assert "python setup.py build_ext --inplace" in run.stderr


def test_fit_prints_a_header_and_the_resumed_step(tmp_path, capsys):
    ckpt, model = str(tmp_path / "c.json"), str(tmp_path / "m.json")
    argv = ["fit", "smeam", "--data", "emt-cu", "--out", model, "--checkpoint", ckpt]
    assert cli.main(argv + ["--max-iter", "2"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[0].startswith("fitting smeam: SplineMEAM Cu, ")
    assert "parameters; data emt-cu: " in first[0] and " validation (" in first[0]
    assert "training structures (" in first[0] and "up to 2 iterations" in first[0]
    assert not any("resumed" in line for line in first)
    assert cli.main(argv + ["--max-iter", "3"]) == 0
    second = capsys.readouterr().out.splitlines()
    assert second[1] == f"resuming from checkpoint {ckpt}, saved at step 2"


def test_mace_style_label_keys(tmp_path, capsys):
    """An extxyz file labelled REF_energy / REF_forces (MACE's convention): without keys the
    error names the keys looked for and those the file has; with --energy-key/--forces-key it
    is read."""
    import ase.io
    import numpy as np
    from ase.build import bulk as _bulk
    from snnp.cli import main as _main
    frames = []
    for k in range(3):
        a = _bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        a.rattle(0.05, seed=k)
        a.info["REF_energy"] = -3.5 * len(a) + 0.01 * k
        a.arrays["REF_forces"] = np.full((len(a), 3), 0.01 * k)
        frames.append(a)
    path = tmp_path / "mace.xyz"
    ase.io.write(path, frames, format="extxyz")
    model = snnp.presets(["Cu"], cutoff=4.6, r_min=1.7)["smeam"]
    model.save(tmp_path / "m.json")
    assert _main(["eval", str(tmp_path / "m.json"), "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "looked for atoms.info['energy']" in err and "REF_energy" in err and "--energy-key" in err
    assert _main(["eval", str(tmp_path / "m.json"), "--data", str(path),
                  "--energy-key", "REF_energy", "--forces-key", "REF_forces"]) == 0
    data = snnp.Dataset.from_extxyz(path, energy_key="REF_energy", forces_key="REF_forces")
    assert data[2].energy == pytest.approx(frames[2].info["REF_energy"])
    np.testing.assert_allclose(data[1].forces, 0.01)


def test_ladder_csv_takes_every_column_when_rows_of_two_scans_mix(tmp_path):
    """build_zoo.py --presets SUBSET merges new rows with an older scan's, which lack the newer
    columns: ladder.csv has every column, empty where a row has no value."""
    import csv
    old, new = _rows()
    new = {**new, "shared_filters": False}
    ladder.write_outputs([old, new], tmp_path)
    with open(tmp_path / "ladder.csv") as fh:
        table = list(csv.DictReader(fh))
    assert table[0]["shared_filters"] == "" and table[1]["shared_filters"] == "False"
    assert [r["preset"] for r in table] == ["smeam", "snnp_small"]


def test_the_pareto_plot_is_the_same_file_when_written_twice(tmp_path):
    """A rewritten ladder table leaves its SVG unchanged (no date, fixed element ids), so a
    rebuilt zoo shows in git only what changed."""
    pytest.importorskip("matplotlib")
    rows = list(_rows())
    ladder.write_outputs(rows, tmp_path / "a")
    ladder.write_outputs(rows, tmp_path / "b")
    a, b = ((tmp_path / d / "pareto.svg").read_bytes() for d in ("a", "b"))
    assert a == b and b"<dc:date>" not in a
