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

This module knows the file format, not the model classes: it writes any model through
``model.to_dict()`` and builds the class a file names from ``MODEL_CLASSES``, which
``snnp.models`` fills when it defines the rungs (``@register_model_class``).  So the file
layer sits below the models (``Model.save`` calls down into it) and nothing here imports them
(docs/architecture.md).  ``load`` and ``zoo`` also find the trained models shipped in
models_zoo/ by name ("Mo/snnp_medium"); ``snnp.load`` and ``snnp.zoo`` are these.

Floats are written with Python's shortest round-trip repr, so save-then-load is lossless.
A file with a NaN, Infinity or null number in "model" is refused at load, naming its path;
then the file is checked against its schema, snnp/schemas/model.schema.json (a string or a
boolean where a number belongs, a missing key: a ValueError naming the key path).
"""
import glob
import json
import os

from .._version import __version__
from .atomic import atomic_write
from .schema import check_finite_model_dict, validate

FORMAT = "snnp-model"
VERSION = 2
UNITS = {"energy": "eV", "length": "Angstrom"}


#: model class name (the file's "class") -> class; filled by ``snnp.models``
MODEL_CLASSES = {}


def register_model_class(cls):
    """Class decorator: files naming ``cls.__name__`` as their "class" are read as ``cls``
    (``cls.from_dict``).  ``snnp.models`` registers SplineMEAM, SplineMEAMNN and SNNP."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def model_class(name):
    """The registered model class called ``name`` ("SplineMEAM", "SplineMEAMNN", "SNNP")."""
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {name!r} (known: {sorted(MODEL_CLASSES)})")
    return MODEL_CLASSES[name]


def save_model(model, path, provenance=None):
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
    cls = MODEL_CLASSES.get(doc.get("class"))
    if cls is None:
        raise ValueError(f"{path}: unknown model class {doc.get('class')!r}")
    check_finite_model_dict(doc.get("model"), f"model file {path}")     # NaN, Infinity, null
    # the written schema: snnp/schemas/model.schema.json
    validate(doc, "model", f"damaged snnp model file {path}")
    try:
        model = cls.from_dict(doc["model"])
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"{path} is a damaged snnp model file (missing or malformed {exc})") from None
    model.provenance = doc.get("provenance", {})
    return model


def zoo_dir():
    """The directory of the shipped zoo models (the package ``snnp.models_zoo``)."""
    from .. import models_zoo
    return os.path.dirname(os.path.abspath(models_zoo.__file__))


def zoo(base=None):
    """Names of the trained models in ``base`` (default: the shipped models_zoo/), as
    ``"<element>/<preset>"``."""
    base = zoo_dir() if base is None else base
    return sorted(os.path.relpath(p, base)[:-5].replace(os.sep, "/")
                  for p in glob.glob(os.path.join(base, "*", "*.json")))


def load(path, zoo_base=None):
    """Read a model saved with ``model.save(path)``, or a zoo model by name ("Mo/snnp_medium";
    ``zoo_base``: the zoo directory, default the shipped one)."""
    name = os.fspath(path)
    if not os.path.exists(name):
        names = zoo(zoo_base)
        if name in names:
            base = zoo_dir() if zoo_base is None else zoo_base
            return load_model(os.path.join(base, name + ".json"))
        if "/" in name and not name.endswith(".json"):
            raise FileNotFoundError(f"no model file {name!r} and no zoo model of that name; "
                                    f"zoo models: {names or 'none installed'}")
    return load_model(name)
