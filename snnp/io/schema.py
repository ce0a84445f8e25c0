"""Check snnp's JSON files against their written schemas (snnp/schemas/*.schema.json).

``validate(doc, "model", where)`` and ``validate(doc, "checkpoint", where)`` raise a ValueError
naming the file and the key path of the most relevant error, e.g.
``model file m.json: at model.e0[0]: '0.5' is not of type 'number'``.  The checkpoint schema
refers to the model schema for its ``state.model``."""
import functools
import json
import reprlib
from importlib import resources

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
