"""LAMMPS meam/spline files and snnp model files: lossless round trips and clear errors."""
import json
import os

import numpy as np
import pytest

import snnp
from conftest import potential
from models_for_tests import random_spline_meam
from snnp.io import atomic_write, read_meam_spline

POTS = {"Si_1": ["Si"], "Si_2": ["Si"], "Ti": ["Ti"], "TiO": ["Ti", "O"]}


@pytest.mark.parametrize("name", POTS)
@pytest.mark.parametrize("fmt", ["new", "old"])
def test_write_then_read_is_lossless(name, fmt, tmp_path):
    model = snnp.SplineMEAM.from_lammps(potential(name))
    if fmt == "old" and model.n_species > 1:
        with pytest.raises(ValueError, match="old meam/spline format holds one species"):
            model.to_lammps(tmp_path / "x", format=fmt)
        return
    path = tmp_path / "out.meam.spline"
    model.to_lammps(path, format=fmt)
    again = snnp.SplineMEAM.from_lammps(path, species=POTS[name])
    assert again == model
    assert again.cutoff == model.cutoff


def test_reader_finds_species_and_format():
    d = read_meam_spline(potential("TiO"))
    assert d["species"] == ["Ti", "O"] and d["format"] == "new"
    assert len(d["phi"]) == 3 and len(d["g"]) == 3
    d = read_meam_spline(potential("Si_1"))
    assert d["species"] == ["Si"] and d["format"] == "old"
    # the Si_1 file: phi has 10 knots from 1.5 to 4.5, U is evaluated beyond its knots
    assert d["phi"][(0, 0)].n_knots == 10 and d["phi"][(0, 0)].x1 == 4.5


def test_old_format_without_element_name_needs_species(tmp_path):
    path = tmp_path / "potential.meam.spline"
    path.write_text(potential("Si_1").read_text())
    with pytest.raises(ValueError, match=r"does not name its element: pass species="):
        snnp.SplineMEAM.from_lammps(path)
    assert snnp.SplineMEAM.from_lammps(path, species=["Si"]).species == ["Si"]


def _corrupt(tmp_path, text, name="Si.meam.spline"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_malformed_files_name_the_problem(tmp_path):
    lines = potential("Si_1").read_text().splitlines()
    truncated = _corrupt(tmp_path, "\n".join(lines[:40]))
    with pytest.raises(ValueError, match="truncated"):
        snnp.SplineMEAM.from_lammps(truncated)

    bad_number = list(lines)
    bad_number[6] = "1.833333 abc 3.9"
    with pytest.raises(ValueError, match=r"line 7: expected 3 numbers for knot 2 of phi\[Si-Si\]"):
        snnp.SplineMEAM.from_lammps(_corrupt(tmp_path, "\n".join(bad_number)))

    nonuniform = list(lines)
    nonuniform[6] = "1.9 -4.399503747408950400e-01 0"
    with pytest.raises(ValueError, match=r"phi\[Si-Si\]: spline knots are not uniform: knot 2"):
        snnp.SplineMEAM.from_lammps(_corrupt(tmp_path, "\n".join(nonuniform)))

    tio = potential("TiO").read_text().splitlines()
    tio[1] = "meam/spline 2 Ti"
    with pytest.raises(ValueError, match="meam/spline N El1 .. ElN"):
        snnp.SplineMEAM.from_lammps(_corrupt(tmp_path, "\n".join(tio), "TiO.meam.spline"))

    with pytest.raises(ValueError, match=r"names species \['Ti', 'O'\], not \['O', 'Ti'\]"):
        snnp.SplineMEAM.from_lammps(potential("TiO"), species=["O", "Ti"])

    with pytest.raises(FileNotFoundError):
        snnp.SplineMEAM.from_lammps(tmp_path / "missing.meam.spline")


def test_to_lammps_refuses_reference_energies_and_writes_nothing(tmp_path):
    model = random_spline_meam(["Cu"], 1)
    path = tmp_path / "cu.meam.spline"
    with pytest.raises(ValueError, match="no per-species reference energy"):
        model.to_lammps(path)
    assert not path.exists()
    model.e0[:] = 0.0
    model.to_lammps(path)
    assert snnp.SplineMEAM.from_lammps(path).e0.tolist() == [0.0]


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path):
    path = tmp_path / "model.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as fh:
            fh.write("half of a new fi")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.json"]


def test_atomic_write_gives_the_permissions_open_would(tmp_path):
    plain, atomic = tmp_path / "plain.json", tmp_path / "atomic.json"
    plain.write_text("x")
    with atomic_write(atomic) as fh:
        fh.write("x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    os.chmod(atomic, 0o640)                     # an existing file keeps its own mode
    with atomic_write(atomic) as fh:
        fh.write("y")
    assert atomic.stat().st_mode & 0o777 == 0o640


def test_model_file_errors(tmp_path):
    model = random_spline_meam(["Cu", "Ag"], 2)
    path = tmp_path / "m.json"
    model.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "snnp-model" and doc["version"] == 2
    assert doc["class"] == "SplineMEAM" and doc["units"]["energy"] == "eV"

    newer = dict(doc, version=99)
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    with pytest.raises(ValueError, match="version 99; this snnp reads versions up to 2"):
        snnp.load(tmp_path / "newer.json")

    (tmp_path / "damaged.json").write_text(path.read_text()[:-200])
    with pytest.raises(ValueError, match="damaged JSON"):
        snnp.load(tmp_path / "damaged.json")

    broken = json.loads(path.read_text())
    del broken["model"]["filters"]["rho"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="damaged snnp model file .*rho"):
        snnp.load(tmp_path / "broken.json")

    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not an snnp model file"):
        snnp.load(tmp_path / "other.json")


@pytest.mark.parametrize("version", [0, -5, True, "2"])
def test_model_file_versions_outside_1_to_2_are_refused(tmp_path, version):
    model = random_spline_meam(["Cu"], 1)
    model.save(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "v.json").write_text(json.dumps(dict(doc, version=version)))
    with pytest.raises(ValueError, match="model file version"):
        snnp.load(tmp_path / "v.json")


def test_version_1_file_loads_without_core_or_grade(tmp_path):
    """A file written before the short-range rule (version 1: no "core", no "extrapolation")
    loads as a model without either, with the same energies."""
    from models_for_tests import alloy
    model = random_spline_meam(["Cu", "Ag"], 3)
    model.save(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    doc["version"] = 1
    del doc["model"]["core"], doc["model"]["extrapolation"]
    (tmp_path / "v1.json").write_text(json.dumps(doc))
    old = snnp.load(tmp_path / "v1.json")
    assert old.core is None and old.extrapolation is None
    atoms = alloy(["Cu", "Ag"], 1)
    assert old.compute(atoms)["energy"] == model.compute(atoms)["energy"]


def test_core_and_grade_round_trip_through_the_model_file(tmp_path):
    from models_for_tests import alloy, with_close_pair, with_core
    model = with_core(random_spline_meam(["Cu", "Ag"], 4))
    data = [alloy(["Cu", "Ag"], s) for s in range(3)]
    model.extrapolation = snnp.ExtrapolationGrade.from_data(model, data, n_centres=8)
    model.save(tmp_path / "m.json")
    loaded = snnp.load(tmp_path / "m.json")
    assert loaded.core == model.core and loaded == model
    atoms = with_close_pair(alloy(["Cu", "Ag"], 9))
    props = ("energy", "forces", "extrapolation")
    a, b = model.compute(atoms, props), loaded.compute(atoms, props)
    assert a["energy"] == b["energy"]
    np.testing.assert_array_equal(a["forces"], b["forces"])
    np.testing.assert_array_equal(a["extrapolation"], b["extrapolation"])


def test_saved_model_records_provenance(tmp_path):
    model = random_spline_meam(["Cu"], 1)
    model.save(tmp_path / "m.json", provenance={"training_data_sha256": "abc"})
    loaded = snnp.load(tmp_path / "m.json")
    assert loaded.provenance["training_data_sha256"] == "abc"
    assert loaded.provenance["snnp_version"] == snnp.__version__
    np.testing.assert_array_equal(loaded.e0, model.e0)
