"""Issue 16, item 3: checkpoints and model files are checked against their written schemas
(snnp/schemas/*.schema.json): a file of the wrong shape is a ValueError naming the file and
the key path, never an AttributeError, KeyError or TypeError from deep inside a load."""
import json

import pytest

import snnp
from snnp.cli import main
from snnp.io.schema import schema, validate
from test_training import student, teacher_data


def _fit(model, data, **kw):
    return model.fit(data, **{"max_iter": 1, "log": False, "extrapolation": 0, **kw})


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    """A real checkpoint of a one-iteration fit, as parsed JSON."""
    path = tmp_path_factory.mktemp("ck") / "ck.json"
    data, _ = teacher_data(2)
    _fit(student(), data, checkpoint=str(path))
    return json.loads(path.read_text())


def _edited(doc, edit):
    """``doc`` edited in a copy; an edit that returns a list replaces the whole document."""
    doc = json.loads(json.dumps(doc))
    out = edit(doc)
    return out if isinstance(out, list) else doc


# (edit of a good checkpoint, the message's key path and reason)
CHECKPOINT_CASES = [
    (lambda d: d.__setitem__("state", []), r"at state: \[\] is not of type 'object'"),
    (lambda d: [1, 2, 3], r"at the top level: \[1, 2, 3\] is not of type 'object'"),
    (lambda d: d.pop("config"), r"at the top level: 'config' is a required property"),
    (lambda d: d["state"].pop("model"), r"at state: 'model' is a required property"),
    (lambda d: d["state"].__setitem__("step", "3"), r"at state\.step: '3' is not of type 'integer'"),
    (lambda d: d["state"]["history"].__setitem__(0, 7),
     r"at state\.history\[0\]: 7 is not of type 'object'"),
    (lambda d: d["state"]["best_params"].__setitem__(2, True),
     r"at state\.best_params\[2\]: True is not of type 'number'"),
    (lambda d: d["state"]["model"]["e0"].__setitem__(0, "0.5"),
     r"at state\.model\.e0\[0\]: '0\.5' is not of type 'number'"),
    (lambda d: d["state"]["model"]["filters"].pop("rho"),
     r"at state\.model\.filters: 'rho' is a required property"),
]


@pytest.mark.parametrize("edit, message", CHECKPOINT_CASES)
def test_a_checkpoint_of_the_wrong_structure_is_refused_naming_the_key(tmp_path, good_checkpoint,
                                                                        edit, message):
    path = tmp_path / "ck.json"
    path.write_text(json.dumps(_edited(good_checkpoint, edit)))
    data, _ = teacher_data(2)
    with pytest.raises(ValueError, match=rf"damaged checkpoint .*ck\.json: {message}; delete it"):
        _fit(student(), data, checkpoint=str(path), max_iter=2)


@pytest.mark.parametrize("version", [99, 0, True, 1.0, "1", None])
def test_a_checkpoint_version_snnp_does_not_write_is_refused(tmp_path, good_checkpoint, version):
    path = tmp_path / "ck.json"
    path.write_text(json.dumps(dict(good_checkpoint, version=version)))
    data, _ = teacher_data(2)
    with pytest.raises(ValueError, match=rf"checkpoint .*ck\.json is version {version!r}; this "
                                         r"snnp writes and reads version 1"):
        _fit(student(), data, checkpoint=str(path), max_iter=2)


def test_the_untouched_checkpoint_still_resumes(tmp_path, good_checkpoint):
    path = tmp_path / "ck.json"
    path.write_text(json.dumps(good_checkpoint))
    data, _ = teacher_data(2)
    model = _fit(student(), data, checkpoint=str(path), max_iter=2)
    assert model.provenance["steps"] == 2


@pytest.mark.parametrize("doc, message", [
    ({"format": "snnp-checkpoint", "version": 1, "config": {}, "state": []},
     "at state: [] is not of type 'object'"),
    ({"format": "snnp-checkpoint", "version": 99, "config": {}, "state": {}}, "is version 99"),
    ([{"format": "snnp-checkpoint"}], "at the top level: "),
])
def test_the_cli_refuses_a_bad_checkpoint_cleanly(tmp_path, capsys, doc, message):
    ck = tmp_path / "ck.json"
    ck.write_text(json.dumps(doc))
    argv = ["fit", "smeam", "--data", "emt-cu", "--out", str(tmp_path / "m.json"),
            "--checkpoint", str(ck), "--max-iter", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ck.json" in err and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def _model_doc(tmp_path):
    path = tmp_path / "good.json"
    student().save(path)
    return json.loads(path.read_text())


@pytest.mark.parametrize("edit, where", [
    (lambda m: m["e0"].__setitem__(0, "0.5"), r"model\.e0\[0\]: '0\.5'"),
    (lambda m: m["e0"].__setitem__(0, True), r"model\.e0\[0\]: True"),
    (lambda m: m["filters"]["rho"]["Cu"][1].__setitem__("d0", "0.5"),
     r"model\.filters\.rho\.Cu\[1\]\.d0: '0\.5'"),
    (lambda m: m["mlp"]["weights"][0][1]["W"][0].__setitem__(3, True),
     r"model\.mlp\.weights\[0\]\[1\]\.W\[0\]\[3\]: True"),
    (lambda m: m["core"]["radii"].__setitem__("Cu-Cu", [1.0, "2"]) if m["core"] else
     m["pair"]["Cu-Cu"].__setitem__("x1", "2"), r"model\.(core\.radii|pair)\.Cu-Cu"),
])
def test_a_model_file_with_a_string_or_boolean_number_is_refused(tmp_path, capsys, edit, where):
    doc = _model_doc(tmp_path)
    edit(doc["model"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=rf"model file .*bad\.json: at {where}.* is not of type "
                                         r"'number'"):
        snnp.load(bad)
    assert main(["eval", str(bad), "--data", "emt-cu"]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "is not of type 'number'" in err and "Traceback" not in err


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.__setitem__("model", []), r"at model: \[\] is not of type 'object'"),
    (lambda d: d["model"].pop("species"), r"at model: 'species' is a required property"),
    (lambda d: d["model"].__setitem__("mlp", 3), r"at model\.mlp: 3 is not of type 'object', 'null'"),
    (lambda d: d["model"]["filters"].pop("g"), r"at model\.filters: 'g' is a required property"),
])
def test_a_model_file_of_the_wrong_structure_is_refused_naming_the_key(tmp_path, edit, message):
    doc = _model_doc(tmp_path)
    edit(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=rf"model file .*bad\.json: {message}"):
        snnp.load(bad)


def test_every_zoo_model_validates_against_the_schema():
    assert len(snnp.zoo()) >= 15
    for name in snnp.zoo():
        path = f"{snnp._zoo_dir()}/{name}.json"
        with open(path) as fh:
            validate(json.load(fh), "model", path)
        snnp.load(name)


def test_model_files_snnp_writes_validate(tmp_path):
    from models_for_tests import random_spline_meam
    for k, model in enumerate([random_spline_meam(["Cu", "Ag"], 2), student()]):
        model.save(tmp_path / f"{k}.json")
        validate(json.loads((tmp_path / f"{k}.json").read_text()), "model", f"{k}.json")


def test_the_schemas_ship_and_constrain_the_versions():
    model, checkpoint = schema("model"), schema("checkpoint")
    assert model["properties"]["version"] == {"type": "integer", "minimum": 1, "maximum": 2}
    assert checkpoint["properties"]["version"] == {"const": 1}
    # booleans are not numbers for jsonschema, though bool is an int subclass in Python
    with pytest.raises(ValueError, match=r"at model\.e0\[0\]: False is not of type 'number'"):
        validate(_edited(_model_doc_static(), lambda d: d["model"]["e0"].__setitem__(0, False)),
                 "model", "m.json")


def _model_doc_static():
    from models_for_tests import random_spline_meam
    import tempfile, pathlib
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "m.json"
        random_spline_meam(["Cu"], 1).save(path)
        return json.loads(path.read_text())
