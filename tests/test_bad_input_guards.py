"""Issue 16, items 1 and 2: nothing a user feeds snnp may crash, hang or silently lie.

Non-finite numbers in model files, Loss weights, labels and checkpoints are refused up front,
naming the bad value; option values that would hang a fit or fail it late (a zero checkpoint
interval, an unwritable output path) are refused before any work.
"""
import json

import numpy as np
import pytest

import snnp
from snnp.cli import main
from snnp.training import fit_shared
from test_training import student, teacher_data


def _fit(model, data, **kw):
    return model.fit(data, **{"max_iter": 1, "log": False, "extrapolation": 0, **kw})


# -- 1. NaN must not go through silently -----------------------------------------------------

def _saved_doc(tmp_path):
    path = tmp_path / "good.json"
    student().save(path)
    return json.loads(path.read_text())


@pytest.mark.parametrize("edit, where, kind", [
    (lambda m: m["e0"].__setitem__(0, float("nan")), r"e0\[0\]", "NaN"),
    (lambda m: m["e0"].__setitem__(0, float("inf")), r"e0\[0\]", "infinite"),
    (lambda m: m["e0"].__setitem__(0, None), r"e0\[0\]", "null"),
    (lambda m: m.__setitem__("e0", None), r"e0", "null"),
    (lambda m: m["mlp"]["weights"][0][1]["W"][0].__setitem__(3, float("nan")),
     r"mlp\.weights\[0\]\[1\]\.W\[0\]\[3\]", "NaN"),
    (lambda m: m["mlp"]["mean"][0].__setitem__(1, float("nan")), r"mlp\.mean\[0\]\[1\]", "NaN"),
    (lambda m: m["filters"]["rho"]["Cu"][0]["values"].__setitem__(2, float("-inf")),
     r"filters\.rho\.Cu\[0\]\.values\[2\]", "infinite"),
])
def test_model_file_with_a_non_finite_number_is_refused_at_load(tmp_path, capsys, edit, where,
                                                                 kind):
    doc = _saved_doc(tmp_path)
    edit(doc["model"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))                 # Python writes NaN / Infinity tokens
    with pytest.raises(ValueError, match=rf"model file .*bad\.json: {where} is {kind}"):
        snnp.load(bad)
    with pytest.raises(ValueError, match=rf"{where} is {kind}"):
        snnp.SNNP.from_dict(doc["model"])
    # snnp eval used to print nan and exit 0
    assert main(["eval", str(bad), "--data", "emt-cu"]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and f" is {kind}" in err


def test_loss_weights_must_be_finite_non_negative_and_not_all_zero():
    with pytest.raises(ValueError, match="Loss weight energy must be finite, got nan"):
        snnp.Loss(energy=float("nan"))
    with pytest.raises(ValueError, match="Loss weight l2 must be finite, got inf"):
        snnp.Loss(l2=float("inf"))
    with pytest.raises(ValueError, match="loss weights must be >= 0; forces is -1"):
        snnp.Loss(forces=-1)
    with pytest.raises(ValueError, match="Loss weight stress must be a number"):
        snnp.Loss(stress="lots")
    with pytest.raises(ValueError, match="energy, forces, stress and prior are all zero"):
        snnp.Loss(energy=0, forces=0, stress=0)
    # a weight changed after construction is caught at fit start, before any work
    data, _ = teacher_data(2)
    loss = snnp.Loss()
    loss.energy = float("nan")
    model = student()
    before = model.get_params()
    with pytest.raises(ValueError, match="Loss weight energy must be finite"):
        _fit(model, data, loss=loss)
    assert np.array_equal(model.get_params(), before)


@pytest.mark.parametrize("label, index, text", [
    ("forces", (3, 1), r"label forces\[3, 1\] is NaN"),
    ("stress", (4,), r"label stress\[4\] is infinite"),
    ("energy", None, r"label energy is NaN"),
])
def test_a_nan_written_into_a_label_after_construction_is_refused_by_fit(label, index, text):
    data, _ = teacher_data(2)
    st = data[1]
    if index is None:
        st.energy = float("nan")
    else:
        getattr(st, label)[index] = np.inf if label == "stress" else np.nan
    with pytest.raises(ValueError, match=rf"training structure 1 \(group 'bulk'\): {text}"):
        _fit(student(), data)
    # validation data too
    good, _ = teacher_data(2)
    with pytest.raises(ValueError, match=rf"validation structure 1 \(group 'bulk'\): {text}"):
        student().fit(good, data, max_iter=1, log=False, extrapolation=0)


def test_a_checkpoint_with_non_finite_values_is_refused(tmp_path):
    data, _ = teacher_data(2)
    ckpt = tmp_path / "ck.json"
    _fit(student(), data, checkpoint=str(ckpt))
    good = json.loads(ckpt.read_text())

    def write(edit):
        doc = json.loads(json.dumps(good))
        edit(doc["state"])
        ckpt.write_text(json.dumps(doc))

    write(lambda s: s["model"]["e0"].__setitem__(0, float("nan")))
    with pytest.raises(ValueError, match=r"checkpoint .*ck\.json, model state: e0\[0\] is NaN"):
        _fit(student(), data, checkpoint=str(ckpt), max_iter=3)
    write(lambda s: s["history"][-1].__setitem__("objective", float("nan")))
    with pytest.raises(ValueError, match=r"checkpoint .*ck\.json holds a non-finite value "
                                         r"\(history\[0\]\.objective is NaN\)"):
        _fit(student(), data, checkpoint=str(ckpt), max_iter=3)
    write(lambda s: s["best_params"].__setitem__(5, float("inf")))
    with pytest.raises(ValueError, match=r"ck\.json holds a non-finite value \(best_params\[5\] "
                                         r"is infinite\)"):
        _fit(student(), data, checkpoint=str(ckpt), max_iter=3)
    write(lambda s: None)                   # the untouched checkpoint still resumes
    model = _fit(student(), data, checkpoint=str(ckpt), max_iter=2)
    assert np.all(np.isfinite(model.get_params()))


def test_zero_sample_weights_or_no_weighted_label_is_refused():
    data, _ = teacher_data(2)
    for st in data:
        st.weight = 0.0
    with pytest.raises(ValueError, match="every training structure has weight 0"):
        _fit(student(), data)
    data, _ = teacher_data(2)
    data[0].weight = float("nan")
    with pytest.raises(ValueError, match=r"training structure 0 .*weight must be a finite"):
        _fit(student(), data)
    data, _ = teacher_data(2)
    for st in data:
        st.energy = None
    with pytest.raises(ValueError, match=r"nothing to fit: the loss weighs only \['energy'\]"):
        _fit(student(), data, loss=snnp.Loss(energy=1.0, forces=0.0, stress=0.0))


def _no_work(what):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{what} before the bad input was refused")
    return refuse


# -- 2. hangs and late failures --------------------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("checkpoint_every", 0), ("checkpoint_every", -2), ("max_iter", 5.5), ("max_iter", -3),
    ("max_iter", 0), ("max_iter", True), ("batch_size", 0), ("epochs", 0), ("epochs", 2.0),
])
def test_counts_must_be_positive_integers(option, value, monkeypatch):
    data, _ = teacher_data(2)
    model = student()
    # refused before any work: no batch (neighbour lists) is built
    monkeypatch.setattr(snnp.training, "Batch", _no_work("a training batch was built"))
    with pytest.raises(ValueError, match=rf"{option} must be a positive integer, got {value!r}"):
        model.fit(data, log=False, **{option: value})


def test_fit_shared_refuses_a_zero_checkpoint_interval():
    data, _ = teacher_data(2)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer, got 0"):
        fit_shared([student()], [data], checkpoint_every=0, log=False)


def test_freeze_takes_one_group_name_as_a_string():
    data, _ = teacher_data(2)
    model = student()
    radial = model.param_groups()["radial"]
    before = model.get_params()[radial]
    _fit(model, data, freeze="radial", max_iter=2)
    assert np.array_equal(model.get_params()[radial], before)
    with pytest.raises(ValueError, match=r"unknown parameter groups \['radiall'\]"):
        _fit(student(), data, freeze="radiall")


@pytest.mark.parametrize("argv, path", [
    (["fit", "smeam", "--data", "emt-cu", "--out", "/proc/x.json"], "/proc/x.json"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "{tmp}/m.json", "--checkpoint",
      "/proc/ck.json"], "/proc/ck.json"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "{tmp}"], "{tmp}"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "{tmp}/missing/m.json"], "{tmp}/missing/m.json"),
    (["ladder", "--data", "emt-cu", "--out", "/proc/ladder"], "/proc/ladder"),
    (["eval", "Mo/smeam", "--data", "emt-cu", "--per-structure", "/proc/x.csv"], "/proc/x.csv"),
    (["export", "Mo/smeam", "/proc/x.meam.spline", "--drop-e0"], "/proc/x.meam.spline"),
    (["export", "--lammps", "Mo/smeam", "/proc/x.snnp"], "/proc/x.snnp"),
    (["plot", "Mo/smeam", "--out", "/proc/plots"], "/proc/plots"),
])
def test_cli_refuses_an_unwritable_output_before_any_work(tmp_path, capsys, monkeypatch, argv,
                                                           path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    path = path.replace("{tmp}", str(tmp_path))
    # refused before any work: no data read, nothing fitted
    monkeypatch.setattr(snnp.cli, "load_data", _no_work("the data were read"))
    monkeypatch.setattr(snnp.training, "fit", _no_work("a fit started"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot write {path}" in err or f"cannot write to {path}" in err
    assert ".snnp-" not in err                      # no temporary file name


@pytest.mark.parametrize("argv, option, value", [
    (["fit", "smeam", "--data", "emt-cu", "--out", "m.json", "--max-iter", "-3"], "--max-iter", "-3"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "m.json", "--max-iter", "0"], "--max-iter", "0"),
    (["fit", "smeam", "--data", "emt-cu", "--out", "m.json", "--max-iter", "5.5"], "--max-iter", "5.5"),
    (["ladder", "--max-iter", "-1"], "--max-iter", "-1"),
    (["bench", "Mo/smeam", "--atoms", "-10"], "--atoms", "-10"),
    (["bench", "Mo/smeam", "--threads", "-2"], "--threads", "-2"),
])
def test_cli_refuses_non_positive_counts(capsys, argv, option, value):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be" in err and repr(value) in err
    assert "Traceback" not in err


def test_binary_meam_spline_file_and_bad_mlearn_entry_name_the_file(tmp_path):
    """A binary file read as meam/spline raised a bare UnicodeDecodeError; an mlearn entry
    with a bad energy raised without the file or the entry."""
    import json as _json
    binary = tmp_path / "pot.meam.spline"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 10)
    with pytest.raises(ValueError, match=r"pot\.meam\.spline: not a text file"):
        snnp.SplineMEAM.from_lammps(binary)
    entry = {"structure": {"lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 3]]},
                           "sites": [{"xyz": [0, 0, 0], "species": [{"element": "Cu"}]}]},
             "outputs": {"energy": "lots", "forces": [[0, 0, 0]]}}
    bad = tmp_path / "bad.json"
    bad.write_text(_json.dumps([entry]))
    with pytest.raises(ValueError, match=r"bad\.json: entry 0: .*energy"):
        snnp.Dataset.from_mlearn(bad)


def test_a_close_pair_in_a_batch_names_its_structure_and_atoms():
    """score/fit name the structure (index, name, group) and its own atom indices, not the
    indices of the concatenated batch (atoms 132 and 133 in this one)."""
    from ase.build import bulk
    model = snnp.load("Si/snnp_small")
    structures = []
    for k in range(3):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True)
        atoms.rattle(0.05, seed=k)
        structures.append(snnp.Structure(atoms, energy=-5.4 * len(atoms),
                                         forces=np.zeros((len(atoms), 3)),
                                         group="bulk" if k < 2 else "close", name=f"frame{k}"))
    close = structures[2].atoms
    close.positions[5] = close.positions[4] + [1.0, 0.0, 0.0]
    data = snnp.Dataset(structures)
    model.check_short_distances = True
    with pytest.raises(ValueError, match=r"^structure 2 \(frame2\), group 'close': atoms 4 and 5 "
                                         r"are 1 A apart"):
        model.score(data)
    model.check_short_distances = False
    close.positions[5] = close.positions[4]
    with pytest.raises(ValueError, match=r"^structure 2 \(frame2\), group 'close': atoms 4 and 5 "
                                         r"sit at the same position"):
        snnp.load("Si/snnp_small").fit(data, max_iter=1, log=False)
