"""snnp model files: one versioned JSON document per model.

    {"format": "snnp-model", "version": 2, "class": "SplineMEAM" | "SplineMEAMNN" | "SNNP",
     "units": {"energy": "eV", "length": "Angstrom"}, "species": [...], "cutoff": 5.0,
     "filters": [K_r, K_a], "n_params": ..., "model": {...}, "provenance": {...}}

"model" holds everything needed to rebuild the model: species, e0, the pair splines, the filter
bank (every spline as x0, x1, knot values, end slopes), U and the MLP (widths, activation,
weights, input mean and scale), and from version 2 the short-range "core" (snnp.ZBLCore: per
species pair r_in, r_out, and the clamp width) and the "extrapolation" grade reference
(snnp.ExtrapolationGrade), each null when absent.  Version-1 files load without either.
The top-level summary fields are for readers and tools.

Floats are written with Python's shortest round-trip repr, so save-then-load is lossless.
A file with a NaN, Infinity or null number in "model" is refused at load, naming its path;
then the file is checked against its schema, snnp/schemas/model.schema.json (a string or a
boolean where a number belongs, a missing key: a ValueError naming the key path).
"""
import json
import os

from .atomic import atomic_write

FORMAT = "snnp-model"
VERSION = 2
UNITS = {"energy": "eV", "length": "Angstrom"}


def _classes():
    from ..models import SNNP, SplineMEAM, SplineMEAMNN
    return {c.__name__: c for c in (SplineMEAM, SplineMEAMNN, SNNP)}


def save_model(model, path, provenance=None):
    from .. import __version__
    doc = {"format": FORMAT, "version": VERSION, "class": type(model).__name__, "units": UNITS,
           "species": model.species, "cutoff": model.cutoff,
           "filters": [model.n_radial, model.n_angular], "n_params": model.n_params,
           "model": model.to_dict(),
           "provenance": {**(getattr(model, "provenance", None) or {}),
                          "snnp_version": __version__, **(provenance or {})}}
    text = json.dumps(doc, indent=1, allow_nan=False)
    with atomic_write(path) as fh:
        fh.write(text + "\n")


def load_model(path):
    path = os.fspath(path)
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a valid snnp model file (damaged JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not an snnp model file (no \"format\": \"{FORMAT}\")")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise ValueError(f"{path} is model file version {version}; this snnp reads versions up "
                         f"to {VERSION}: upgrade snnp to read it")
    if doc.get("units") != UNITS:
        raise ValueError(f"{path} uses units {doc.get('units')}, snnp expects {UNITS}")
    cls = _classes().get(doc.get("class"))
    if cls is None:
        raise ValueError(f"{path}: unknown model class {doc.get('class')!r}")
    from ..models import check_finite_model_dict
    check_finite_model_dict(doc.get("model"), f"model file {path}")     # NaN, Infinity, null
    from .schema import validate        # the written schema: snnp/schemas/model.schema.json
    validate(doc, "model", f"damaged snnp model file {path}")
    try:
        model = cls.from_dict(doc["model"])
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"{path} is a damaged snnp model file (missing or malformed {exc})") from None
    model.provenance = doc.get("provenance", {})
    return model
