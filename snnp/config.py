"""Run configurations: the YAML files of ``snnp fit --config`` and ``snnp ladder --config``.

A configuration is a flat mapping from option names to values, one key per command-line option
of that subcommand (``max_iter`` or ``max-iter`` for ``--max-iter``; the positional model of
``snnp fit`` is ``model``).  Values are checked as the command line checks them: a key the
subcommand does not have, or a value its option would refuse, is a one-line ``ConfigError``
naming the file and the key.  Options given on the command line override the file.

Each run writes its *resolved* configuration (every option, defaults included, the thread
count as used) beside its outputs, so ``snnp fit --config THAT_FILE`` repeats the run::

    # fit.yaml
    model: snnp_small
    data: mlearn:Si
    out: si-small.json
    max_iter: 600
    forces_weight: 0.005
    e0: {Si: -0.80}
    freeze: [e0]

See docs/cli.md ("Config files") for every key.
"""
import argparse

__all__ = ["ConfigError", "read_config", "apply_config", "resolved_config", "write_config"]

#: keys of the namespace that are not options (argparse plumbing, or the file itself)
_NOT_OPTIONS = ("func", "command", "config")


class ConfigError(ValueError):
    """A configuration file that cannot be read, or a key or value in it that is refused."""


def read_config(path):
    """The mapping in a YAML configuration file (keys with '-' read as '_')."""
    import yaml
    try:
        with open(path) as fh:
            doc = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{line}: "
                          f"{getattr(exc, 'problem', None) or exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value, "
                          f"not a {type(doc).__name__}")
    out = {}
    for key, value in doc.items():
        if not isinstance(key, str):
            raise ConfigError(f"{path}: key {key!r} is not a name")
        out[key.replace("-", "_")] = value
    return out


def _actions(subparser):
    return {a.dest: a for a in subparser._actions
            if a.dest not in _NOT_OPTIONS and a.dest != argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction)}


def _coerce(action, key, value, where):
    """``value`` as the option ``action`` would hold it, or a ConfigError naming ``key``."""
    def bad(why):
        raise ConfigError(f"{where}: {key}: {why}")

    if value is None:
        if action.default is None or action.nargs == "?":
            return None
        bad(f"needs a value (default {action.default!r})")
    if action.nargs == 0:                                   # store_true / store_false
        if not isinstance(value, bool):
            bad(f"must be true or false, got {value!r}")
        return value
    if action.nargs == "*" and isinstance(value, bool):    # a flag with optional values
        return [] if value else None                        # true: the flag alone
    if action.dest == "e0" and isinstance(value, dict):     # e0: {Si: -0.8}
        value = [f"{el}={v}" for el, v in value.items()]
    many = action.nargs in ("+", "*")
    items = value if many and isinstance(value, (list, tuple)) else [value]
    if not many and isinstance(value, (list, tuple, dict)):
        bad(f"takes one value, got {value!r}")
    out = []
    for item in items:
        if isinstance(item, (list, tuple, dict)):
            bad(f"takes plain values, got {item!r}")
        if action.type is None and not isinstance(item, str):
            bad(f"must be text, got {item!r}")
        if isinstance(item, bool) and action.type is not None:
            bad(f"must be a number, got {item!r}")
        text = item if isinstance(item, str) else repr(item)
        try:
            converted = action.type(text) if action.type is not None else text
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            msg = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else \
                f"must be a {getattr(action.type, '__name__', 'value')}, got {item!r}"
            bad(msg)
        if action.choices is not None and converted not in action.choices:
            bad(f"{converted!r} is not one of {', '.join(map(str, action.choices))}")
        out.append(converted)
    return out if many else out[0]


def apply_config(subparser, args, explicit, config, where):
    """Set on ``args`` every option of ``config`` not given on the command line
    (``explicit``: the names that were).  Returns ``args``."""
    actions = _actions(subparser)
    unknown = sorted(set(config) - set(actions))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for snnp {args.command} "
                          f"(keys: {', '.join(sorted(actions))})")
    for key, value in config.items():
        value = _coerce(actions[key], key, value, where)      # checked even when overridden
        if key not in explicit:
            setattr(args, key, value)
    return args


def resolved_config(subparser, args, **overrides):
    """Every option of the subcommand as this run uses it (a mapping to write as YAML)."""
    out = {"command": args.command}
    for key in _actions(subparser):
        value = getattr(args, key, None)
        out[key] = list(value) if isinstance(value, tuple) else value
    out.update(overrides)
    return out


def write_config(config, path, header=None):
    """Write ``config`` as YAML, atomically (``header``: comment lines on top)."""
    import yaml
    from .io.atomic import atomic_write
    from ._version import __version__
    lines = [f"# snnp {__version__}: {header or 'resolved configuration'}",
             f"# repeat (from the folder it ran in): snnp {config['command']} --config {path}"]
    body = {k: v for k, v in config.items() if k != "command"}
    text = "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False,
                                                    default_flow_style=False)
    with atomic_write(path) as fh:
        fh.write(text)
