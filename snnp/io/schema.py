"""Check snnp's JSON files against their written schemas (``snnp/schemas/*.schema.json``).

``validate(doc, "model", where)`` and ``validate(doc, "checkpoint", where)`` raise a ValueError
naming the file and the key path of the most relevant error, e.g.
``model file m.json: at model.e0[0]: '0.5' is not of type 'number'``.  The checkpoint schema
refers to the model schema for its ``state.model``.

JSON Schema cannot say "a finite number": ``check_finite_model_dict`` (a model dict, as
``Model.to_dict`` makes it) and ``nonfinite_entry`` (any JSON-like value) find the NaN,
infinite or null number that files and checkpoints must not hold; they run before ``validate``.
"""
import functools
import json
import reprlib
from importlib import resources

import numpy as np

SCHEMAS = {"model": "model.schema.json", "checkpoint": "checkpoint.schema.json"}

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict = 40, 40, 4, 4


def schema(kind):
    """The parsed schema of a file kind ("model" or "checkpoint")."""
    return json.loads(resources.files("snnp").joinpath("schemas", SCHEMAS[kind]).read_text())


@functools.lru_cache(maxsize=None)
def _validator(kind):
    import jsonschema
    from referencing import Registry, Resource
    schemas = {k: schema(k) for k in SCHEMAS}
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values())
    cls = jsonschema.validators.validator_for(schemas[kind])
    return cls(schemas[kind], registry=registry)


def key_path(path):
    """A jsonschema error path as "model.e0[0]" ("the top level" when empty)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def validate(doc, kind, where, hint=""):
    """Raise ValueError "<where>: at <key path>: <reason><hint>" unless ``doc`` fits the
    schema of ``kind``."""
    from jsonschema.exceptions import best_match
    error = best_match(_validator(kind).iter_errors(doc))
    if error is None:
        return
    message = error.message
    full = repr(error.instance)
    if len(full) > 60 and message.startswith(full):     # do not print a whole model state
        message = _short.repr(error.instance) + message[len(full):]
    raise ValueError(f"{where}: at {key_path(error.absolute_path)}: {message}{hint}") from None


#: top-level keys of a model dict that may be null (the part is absent)
_OPTIONAL_PARTS = ("pair", "U", "mlp", "core", "extrapolation")


def nonfinite_entry(obj, path="", optional=()):
    """The first number of a JSON-like ``obj`` (dicts, lists, numbers) that is NaN, infinite
    or null, as (its path, e.g. "e0[0]" or "mlp.weights[0][1].W[2][3]", and "NaN", "infinite"
    or "null"); None when every number is finite.  ``optional``: keys of ``obj`` itself whose
    value may be null (a part the model lacks)."""
    if obj is None:
        return path, "null"
    if isinstance(obj, dict):
        for key, value in obj.items():
            if value is None and key in optional:
                continue
            found = nonfinite_entry(value, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for k, value in enumerate(obj):
            found = nonfinite_entry(value, f"{path}[{k}]")
            if found:
                return found
    elif isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return path, "NaN" if np.isnan(obj) else "infinite"
    return None


def check_finite_model_dict(d, where="model parameters"):
    """Refuse a model dict (``Model.to_dict``) holding a NaN, infinite or null number: a
    ValueError "<where>: <path> is NaN" names the first one."""
    found = nonfinite_entry(d, optional=_OPTIONAL_PARTS) if isinstance(d, dict) else None
    if found:
        raise ValueError(f"{where}: {found[0]} is {found[1]}")
