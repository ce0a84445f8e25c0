"""The ``snnp`` command line: ladder scans, fitting, evaluation, benchmarks, export.

    snnp ladder [--data emt-cu | mlearn:Mo | inp | FILE] [--test FILE] [--presets ...]
                [--out DIR] [--config YAML]
    snnp fit PRESET_OR_MODEL --data DATA --out MODEL.json [--max-iter N] [--checkpoint FILE]
             [--config YAML]
    snnp eval MODEL.json --data DATA [--per-structure CSV] [--out DIR]
    snnp bench MODEL.json [--atoms N] [--threads N] [--device cpu|gpu]
    snnp plot MODEL.json [--data DATA] [--out DIR] [--curves]
    snnp export MODEL.json OUT.meam.spline        (rung 0 -> pair_style meam/spline)
    snnp export --lammps MODEL.json OUT.snnp       (any rung -> pair_style snnp plugin)

DATA is ``emt-cu`` (the built-in EMT copper set), ``emt-cuau`` (the built-in EMT copper-gold
alloy set), ``mlearn:EL[:split]`` (downloaded and checksummed, or from $SNNP_DATA),
``inp[:split]`` (the InP DFT set on disk, split by group), or a file: .xyz/.extxyz, .db (ASE
database), .json (mlearn).  Errors are reported in one line with a non-zero exit status;
``--config`` files, logs and progress: docs/cli.md.
"""
import argparse
import contextlib
import json
import logging
import os
import sys

import numpy as np

from .backends.gpu import GPUUnavailable

__all__ = ["main", "load_data", "element_values"]


class CLIError(Exception):
    pass


def load_data(spec, split="training", keys=None):
    """A Dataset from a CLI data spec (see the module docstring); ``keys``: the label keys of
    extxyz and ASE-db files (``energy_key``, ``forces_key``, ``stress_key``)."""
    keys = {k: v for k, v in (keys or {}).items() if v}
    from . import datasets
    from .data import Dataset
    if spec == "emt-cu":
        return datasets.emt_copper()
    if spec == "emt-cuau":
        return datasets.emt_cuau()
    if spec.startswith("mlearn:"):
        parts = spec.split(":")
        element = parts[1]
        which = parts[2] if len(parts) > 2 else split
        return datasets.mlearn(element, which)
    if spec == "inp" or spec.startswith("inp:"):
        which = spec.split(":", 1)[1] if ":" in spec else split
        return datasets.inp(which)
    if not os.path.exists(spec):
        raise CLIError(f"data file {spec!r} does not exist (or use emt-cu, emt-cuau, mlearn:EL)")
    ext = os.path.splitext(spec)[1].lower()
    if ext in (".xyz", ".extxyz"):
        return Dataset.from_extxyz(spec, **keys)
    if ext == ".db":
        return Dataset.from_ase_db(spec, **keys)
    if ext == ".json":
        return Dataset.from_mlearn(spec)
    raise CLIError(f"cannot tell the format of {spec!r}: use .xyz, .extxyz, .db or .json (mlearn)")


def _load_model(path):
    """A model file (snnp JSON or LAMMPS meam/spline), or a zoo model by name
    ("Mo/snnp_medium")."""
    from . import load, zoo
    from .models import LADDER
    if path in LADDER:
        raise CLIError(f"{path!r} is a preset name; this command needs a model file")
    if not os.path.exists(path) and path not in zoo():
        raise CLIError(f"model file {path!r} does not exist (nor is it a zoo model: snnp.zoo())")
    if os.path.isfile(path):
        return _read_model_file(path)
    return load(path)


def _read_model_file(path):
    """An snnp model file (JSON, its first character "{"), or else a LAMMPS meam/spline file
    read as a rung-0 SplineMEAM (an old-format file's element taken from its name, as in
    Si_1.meam.spline)."""
    from . import load
    from .models import SplineMEAM
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"{"):
        return load(path)
    try:
        return SplineMEAM.from_lammps(path)
    except ValueError as exc:
        if os.path.basename(path).endswith(".meam.spline"):
            raise CLIError(f"{path} looks like a LAMMPS meam/spline file but cannot be read as "
                           f"one: {exc}") from None
        raise CLIError(f"{path} is neither an snnp model file (JSON) nor a LAMMPS meam/spline "
                       f"file: {exc}") from None


def element_values(flag, items, example="Si=-0.80"):
    """``EL=NUMBER`` items of a command-line flag as {element: float}; a malformed item is a
    ValueError naming the flag and the item."""
    out = {}
    for item in items:
        el, sep, value = item.partition("=")
        try:
            out[el] = float(value)
        except ValueError:
            sep = ""
        if not sep or not el:
            raise ValueError(f"{flag} takes ELEMENT=NUMBER pairs (e.g. {example}), got {item!r}")
    return out


def _parse_e0(items, auto=False):
    """--e0 EL=EV ... as {element: eV} (None when not given, or given as the word fitted: e0
    fitted by least squares); with ``auto`` (snnp ladder) the word auto on its own is kept as
    "auto" (scan chooses e0 on validation)."""
    word = next((w for w in ("fitted", "auto") if w in (items or ())), None)
    if word is None:
        return element_values("--e0", items) if items else None
    if word == "auto" and not auto:
        raise CLIError("--e0 auto chooses e0 on a ladder's validation (snnp ladder --e0 "
                       "auto); snnp fit needs the energies, e.g. --e0 Si=-0.80")
    if len(items) != 1:
        raise CLIError(f"--e0 {word} stands alone, got {' '.join(items)}")
    return None if word == "fitted" else "auto"


def _label_keys(args):
    return {"energy_key": getattr(args, "energy_key", None),
            "forces_key": getattr(args, "forces_key", None),
            "stress_key": getattr(args, "stress_key", None)}


def _add_label_key_options(parser):
    parser.add_argument("--energy-key", metavar="KEY",
                        help="extxyz/ASE-db key of the energy label in atoms.info (default "
                             "'energy', else an attached calculator's; MACE files: REF_energy)")
    parser.add_argument("--forces-key", metavar="KEY",
                        help="extxyz/ASE-db key of the force labels in atoms.arrays (default "
                             "'forces'; MACE files: REF_forces)")
    parser.add_argument("--stress-key", metavar="KEY",
                        help="extxyz/ASE-db key of the stress label in atoms.info (default "
                             "'stress'; MACE files: REF_stress)")


def _need_labels(data, what):
    hint = getattr(data, "label_hint", None)
    hint = f" ({hint})" if hint else ""
    if what == "energy" and not any(s.energy is not None for s in data):
        raise CLIError("the dataset has no energy labels" + hint)
    if what == "any" and not any(s.energy is not None or s.forces is not None for s in data):
        raise CLIError("the dataset has no energy or force labels to fit or score" + hint)


#: what ``snnp ladder --auto`` sets where neither the command line nor --config sets the option
#: (option: (its default, the --auto value))
AUTO_RECIPE = {"angular_cutoff": (None, "auto"), "e0": (None, ["auto"]), "chain": (False, True),
               "max_iter": (300, 2400), "patience": (2, 3)}


def _auto_recipe(args):
    """--auto: the angular reach from the data's pair distribution, e0 chosen on rung 0's
    validation (fitted, or held at the free-atom estimate), the chain climb (each s-NNP from
    the largest preset fitted before it) and a ceiling of 8x the default iterations, each fit
    stopping on a validation plateau of 3 checkpoints; options given on the command line or in
    the --config file win, whatever their value (--no-climb keeps the chain off)."""
    explicit = getattr(args, "_explicit", set())
    for name, (_, auto) in AUTO_RECIPE.items():
        if name not in explicit and not (name == "chain" and getattr(args, "no_climb", False)):
            setattr(args, name, auto)


def cmd_ladder(args):
    from .ladder import markdown_table, scan
    _need(args, "data", "--data")
    if not args.prior >= 0:
        raise CLIError(f"--prior must be >= 0, got {args.prior}")
    if args.chain and args.no_climb:
        raise CLIError("--chain is a way to climb; it cannot go with --no-climb")
    if args.prior and (args.no_climb or (args.presets and "smeam" not in args.presets)):
        raise CLIError("--prior pulls the climbed presets towards the fitted smeam: it needs the "
                       "climb and smeam among --presets")
    for flag in ("repulsion", "cleavage"):
        if args.prior and getattr(args, f"{flag}_weight"):
            raise CLIError(f"--prior cannot be combined with --{flag}-weight: the {flag} probes "
                           f"have no prior energies to be pulled towards")
    if args.auto:
        _auto_recipe(args)
    residual = _parse_residual(args.residual)
    e0 = _parse_e0(args.e0, auto=True)
    iterations = _parse_iterations(args.iterations)
    _check_writable(args.out, folder=True)
    import time
    started = time.time() - 1.0         # file times may be coarser than the clock
    if args.resumable:
        _check_writable(os.path.join(args.out, "checkpoints"), folder=True)
    loss = _loss(args)
    train = load_data(args.data, "training", _label_keys(args))
    if args.test:
        test = load_data(args.test, "test", _label_keys(args))
    elif args.data.startswith("mlearn:") and len(args.data.split(":")) == 2:
        test = load_data(args.data, "test")
    elif args.data in ("inp", "inp:training"):
        test = load_data("inp:test")
    else:
        train, test = train.split(args.test_fraction, seed=args.seed)
    validation = (load_data(args.validation_data, "training", _label_keys(args))
                  if args.validation_data else None)
    if validation is None and args.data in ("inp", "inp:training"):
        validation = load_data("inp:validation")      # the split's own validation part
    _need_labels(train, "any")
    os.makedirs(args.out, exist_ok=True)        # the inputs are good: the run starts here
    config = _write_resolved(args, os.path.join(args.out, "ladder.yaml"))
    _log_to(os.path.join(args.out, "ladder.log"))
    from .datasets import MLEARN_REFERENCE
    element = args.data.split(":")[1] if args.data.startswith("mlearn:") else None
    rows = scan(train, test, references=MLEARN_REFERENCE.get(element), presets=args.presets,
                cutoff=args.cutoff, r_min=args.r_min, angular_cutoff=args.angular_cutoff,
                shared_filters=args.shared_filters, max_iter=args.max_iter, out=args.out,
                seed=args.seed, climb=False if args.no_climb else ("chain" if args.chain else True),
                prior=args.prior, e0=e0, loss=loss, validation=args.validation,
                validation_set=validation, timing_atoms=args.timing_atoms,
                iterations_override=iterations, patience=args.patience or None,
                monotone=not args.no_monotone, residual=residual,
                checkpoint_dir=os.path.join(args.out, "checkpoints") if args.resumable else None,
                log=True, data=args.data, provenance=config)
    _result("")
    _result(markdown_table(rows))
    _result(f"written: {args.out}/ladder.md, ladder.csv, ladder.json, "
            + _pareto_note(args.out, started) + ", ladder.yaml (the resolved configuration), "
            "ladder.log, and per preset its model file, fit-log.csv and learning.png")


def _pareto_note(out, since):
    """"pareto.png/.svg" when this run wrote them, else why not."""
    import importlib.util
    png = os.path.join(out, "pareto.png")
    if os.path.exists(png) and os.path.getmtime(png) >= since:
        return "pareto.png/.svg"
    if importlib.util.find_spec("matplotlib") is None:
        return ("no pareto.png/.svg (Matplotlib is not installed: pip install 'snnp[plot]')")
    return "no pareto.png/.svg (plotting failed: see the warning above)"


def cmd_fit(args):
    from .models import LADDER, presets
    _need(args, "model", "the model (a preset or a model file)")
    _need(args, "data", "--data")
    _need(args, "out", "--out")
    _check_writable(args.out)                   # before the data and the fit, not after
    _check_writable(args.checkpoint)
    if not args.prior >= 0:
        raise CLIError(f"--prior must be >= 0, got {args.prior}")
    if args.prior and not args.climb_from:
        raise CLIError("--prior needs --from MODEL: the model whose per-atom energies "
                       "it pulls towards")
    e0 = _parse_e0(args.e0)
    loss = _loss(args)
    data = load_data(args.data, keys=_label_keys(args))
    _need_labels(data, "any")
    test = load_data(args.test, "test", _label_keys(args)) if args.test else None
    if args.validation_data:
        train, val = data, load_data(args.validation_data, "training", _label_keys(args))
    elif args.validation:
        train, val = data.split(args.validation, seed=args.seed)
    else:
        train, val = data, None
    rung0 = None
    if args.residual and args.model not in LADDER:
        raise CLIError(f"--residual builds an s-NNP preset with rung 0's U; {args.model!r} is a "
                       "model file, which keeps its own form")
    if args.shared_filters and (args.climb_from or args.model not in LADDER):
        raise CLIError("--shared-filters builds a preset's filter bank; a climb keeps its rung "
                       "0's bank and a model file its own (fit rung 0 with --shared-filters)")
    if args.angular_cutoff == "auto":
        from .filters import angular_reach
        args.angular_cutoff = angular_reach(train.structures, args.cutoff, args.r_min)
    if args.climb_from:
        if args.model not in LADDER:
            raise CLIError("--from climbs a preset from a fitted smaller model: name a preset, "
                           f"not {args.model!r}")
        rung0 = _load_model(args.climb_from)
        from .ladder import climbed
        model = climbed(rung0, args.model, train, seed=args.seed,
                        angular_cutoff=args.angular_cutoff, residual=args.residual)
    elif args.model in LADDER:
        model = presets(data.species, cutoff=args.cutoff, r_min=args.r_min,
                        angular_cutoff=args.angular_cutoff,
                        shared_filters=args.shared_filters, residual=args.residual)[args.model]
    elif os.path.exists(args.model):
        model = _read_model_file(args.model)
    else:
        raise CLIError(f"{args.model!r} is neither a preset ({', '.join(LADDER)}) nor a model file")
    if args.core == "none":
        model.core = None
    if e0 is not None:
        from .training import free_atom_energies
        free_atom_energies(model, e0)           # e0 for the model's species, checked now
    stem = _stem(args.out)                      # the inputs are good: the run starts here
    config = _write_resolved(args, stem + ".config.yaml")
    _log_to(stem + ".log")
    for line in _fit_header(args, model, train, val, rung0):
        _log.info(line)
    model.fit(train, val, loss=loss, prior=rung0 if args.prior else None,
              max_iter=args.max_iter, checkpoint=args.checkpoint, seed=args.seed, e0=e0,
              optimizer=args.optimizer, epochs=args.epochs, batch_size=args.batch_size,
              learning_rate=args.learning_rate, checkpoint_every=args.checkpoint_every,
              patience=args.patience, freeze=tuple(args.freeze or ()),
              core="auto" if args.core == "auto" else None,
              extrapolation=args.extrapolation, log=True)
    model.save(args.out, provenance={"config": config})
    from .ladder import _write_learning_curve
    _write_learning_curve(model, stem, _log.warning)
    _result(f"saved {args.out} (and {os.path.basename(stem)}.config.yaml, .log, .fit-log.csv, "
            ".learning.png)")
    if test is not None:
        _result(f"test errors on {args.test} ({len(test)} structures):")
        _result(_format_errors(model.score(test)))


def _fit_header(args, model, train, val, rung0):
    """What ``snnp fit`` is about to do, before the first iteration: the model, its parameter
    count, the data split and, when the checkpoint exists, the step it resumes from."""
    from . import get_num_threads
    atoms = lambda d: sum(len(s.atoms) for s in d)
    what = args.model if not os.path.exists(args.model) else f"model file {args.model}"
    climb = f", climbing from {args.climb_from}" if rung0 is not None else ""
    threads = get_num_threads()
    lines = [f"fitting {what}: {type(model).__name__} {'-'.join(model.species)}, "
             f"{model.n_params} parameters{climb}; data {args.data}: {len(train)} training "
             f"structures ({atoms(train)} atoms), {len(val) if val is not None else 0} "
             f"validation ({atoms(val) if val is not None else 0} atoms); up to "
             f"{args.max_iter} iteration{'s' if args.max_iter != 1 else ''}, {threads} "
             f"thread{'s' if threads != 1 else ''}"]
    step = _checkpoint_step(args.checkpoint)
    if step is not None:
        lines.append(f"resuming from checkpoint {args.checkpoint}, saved at step {step}"
                     + (" (already at --max-iter: nothing left to fit; raise --max-iter to "
                        "extend it)" if step >= args.max_iter else ""))
    elif args.checkpoint:
        lines.append(f"checkpoint: {args.checkpoint} (new)")
    return lines


def _checkpoint_step(path):
    """The step a checkpoint file holds, or None when there is none (a damaged or foreign
    file is left for the fit to refuse, naming it)."""
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            step = json.load(fh)["state"]["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def _need(args, key, what):
    if getattr(args, key, None) in (None, ""):
        raise CLIError(f"{what} is required (on the command line or as '{key}:' in --config)")


def _stem(path):
    """MODEL.json -> MODEL: the prefix of a fit's side files (.config.yaml, .log, ...)."""
    root, ext = os.path.splitext(path)
    return root if ext.lower() == ".json" else path


def _parse_residual(items):
    """snnp ladder --residual [PRESET ...] as scan's ``residual``: absent or "none", False; the
    flag alone, True (every s-NNP preset); otherwise the presets named."""
    if items is None or list(items) == ["none"]:
        return False
    if "none" in items:
        raise CLIError("--residual none keeps U under no s-NNP; it cannot go with preset names")
    return list(items) or True


def _loss(args):
    from .training import Loss
    return Loss(energy=args.energy_weight, forces=args.forces_weight, stress=args.stress_weight,
                curvature=args.curvature_weight, l2=args.l2_weight,
                repulsion=args.repulsion_weight, cleavage=args.cleavage_weight,
                prior=getattr(args, "prior", 0.0) if args.command == "fit" else 0.0)


def _parse_iterations(items):
    """--iterations PRESET=N ... as {preset: N}."""
    if not items:
        return None
    out = {}
    for name, value in element_values("--iterations", items, example="snnp_large=900").items():
        if value != int(value) or value < 1:
            raise CLIError(f"--iterations {name}={value:g}: must be a positive integer")
        out[name] = int(value)
    return out


def _write_resolved(args, path):
    """Write the run's resolved configuration to ``path`` (YAML) and return it."""
    from . import get_num_threads, set_num_threads
    from .config import resolved_config, write_config
    if args.threads:
        set_num_threads(args.threads)
    parser = _subparser(build_parser(), args.command)
    config = resolved_config(parser, args, threads=get_num_threads())
    write_config(config, path, header=f"snnp {args.command} run")
    return config


def cmd_eval(args):
    _check_writable(args.per_structure)
    _check_writable(args.out, folder=True)      # before the model, the data and the work
    model = _load_model(args.model)
    data = load_data(args.data, "test", _label_keys(args))
    _need_labels(data, "any")
    err = {"model": args.model, "model_class": type(model).__name__, "data": args.data,
           "n_structures": len(data), "n_atoms": int(data.n_atoms)}
    err.update(model.score(data))
    results = _predict(model, data, full=bool(args.out))
    rows = _per_structure(model, data, results)
    if model.extrapolation is not None:
        grades = np.array([r["max_extrapolation"] for r in rows])
        err["extrapolation"] = {"max": float(grades.max()), "median": float(np.median(grades)),
                                "structures_above_1": int((grades > 1).sum())}
    written = []
    if args.per_structure:
        _write_per_structure(rows, args.per_structure)
        written.append(args.per_structure)
    notes = []
    if args.out:
        files, notes = _write_eval_outputs(model, data, results, err, args)
        written += files
    if args.json:
        print(json.dumps(err, indent=1))
        # stdout holds the JSON alone; what was written goes to stderr
        for line in [f"wrote {', '.join(written)}"] * bool(written) + notes:
            print(line, file=sys.stderr)
        return
    print(_format_errors(err))
    if "extrapolation" in err:
        x = err["extrapolation"]
        print(f"extrapolation grade (max per structure; above 1: outside the training data): "
              f"median {x['median']:.3g}, max {x['max']:.3g}, {x['structures_above_1']} of "
              f"{len(rows)} structures above 1")
        worst = sorted(rows, key=lambda r: -r["max_extrapolation"])[:5]
        for r in worst:
            print(f"  structure {r['index']:5d} {r['group']:>14s}  grade {r['max_extrapolation']:.3g}"
                  + (f"  energy error {r['energy_error_meV_per_atom']:+.3g} meV/atom"
                     if r["energy_error_meV_per_atom"] is not None else ""))
    if written:
        print(f"wrote {', '.join(written)}")
    for line in notes:
        print(line)


def _predict(model, data, full=True):
    """``model.compute`` of every structure of ``data`` (the closest pair reported, not
    raised): energy and, with ``full``, per-atom energies, forces and, for a cell with a
    volume, stress; the extrapolation grades when the model carries a reference."""
    props = ["energy"] + (["energies", "forces"] if full else [])
    if model.extrapolation is not None:
        props.append("extrapolation")
    out = []
    for st in data:
        want = props + (["stress"] if full and abs(st.atoms.cell.volume) > 1e-12 else [])
        out.append(model.compute(st.atoms, tuple(want), strict=False))
    return out


def _per_structure(model, data, results=None):
    """One row per structure: its energy error and, where the model carries a grade
    reference, its largest per-atom extrapolation grade (``results``: ``_predict``'s, else
    computed)."""
    if results is None:
        results = _predict(model, data, full=False)
    rows = []
    for k, (st, res) in enumerate(zip(data, results)):
        n = len(st.atoms)
        rows.append({
            "index": k, "group": str(st.group or ""), "n_atoms": n,
            "energy": res["energy"], "reference_energy": st.energy,
            "energy_error_meV_per_atom": None if st.energy is None
            else 1000.0 * (res["energy"] - st.energy) / n,
            "max_extrapolation": res.get("max_extrapolation", float("nan")),
            "closest_pair": res["closest_pair"][0] if "closest_pair" in res else None,
        })
    return rows


def _prediction_frames(data, results):
    """Every structure as plain ASE Atoms with the reference labels (``REF_energy``,
    ``REF_forces``, ``REF_stress``; MACE's names) beside the model's (``snnp_energy``,
    ``snnp_forces``, ``snnp_stress``, per-atom ``snnp_energies``, and with a grade reference
    per-atom ``snnp_extrapolation`` and per-structure ``snnp_max_extrapolation``), and the
    group as ``config_type`` and ``group``.  No calculator is attached: ase.io.write would
    store its results under plain names (energy, forces)."""
    from ase import Atoms
    frames = []
    for st, res in zip(data, results):
        a = st.atoms
        atoms = Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=a.pbc)
        info, arrays = atoms.info, atoms.arrays
        if st.group is not None:
            info["config_type"] = info["group"] = str(st.group)
        if st.energy is not None:
            info["REF_energy"] = float(st.energy)
        if st.stress is not None:
            info["REF_stress"] = np.array(st.stress, float)
        if st.forces is not None:
            arrays["REF_forces"] = np.array(st.forces, float)
        info["snnp_energy"] = float(res["energy"])
        if "stress" in res:
            info["snnp_stress"] = np.array(res["stress"], float)
        arrays["snnp_forces"] = np.array(res["forces"], float)
        arrays["snnp_energies"] = np.array(res["energies"], float)
        if "extrapolation" in res:
            info["snnp_max_extrapolation"] = float(res["max_extrapolation"])
            arrays["snnp_extrapolation"] = np.array(res["extrapolation"], float)
        frames.append(atoms)
    return frames


def _write_eval_outputs(model, data, results, err, args):
    """``eval --out DIR``: predictions.extxyz, errors.json and (with Matplotlib) parity.png,
    each written atomically.  Returns (paths written, notes on what was skipped and why)."""
    import importlib.util
    import ase.io
    from .io.atomic import atomic_write
    os.makedirs(args.out, exist_ok=True)
    frames = _prediction_frames(data, results)
    written = [os.path.join(args.out, name) for name in ("predictions.extxyz", "errors.json")]
    with atomic_write(written[0]) as fh:
        ase.io.write(fh, frames, format="extxyz")
    with atomic_write(written[1]) as fh:
        json.dump(err, fh, indent=1)
        fh.write("\n")
    parity = os.path.join(args.out, "parity.png")
    if importlib.util.find_spec("matplotlib") is None:
        return written, [f"skipped {parity}: Matplotlib is not installed "
                         "(pip install 'snnp[plot]')"]
    from . import plotting
    short = lambda name: os.path.basename(name) if os.path.isfile(name) else name
    title = (f"{short(args.model)} ({type(model).__name__}) on {short(args.data)}: "
             f"{len(data)} structures, {int(data.n_atoms)} atoms")
    try:
        with atomic_write(parity, "wb") as fh:
            plotting.plot_parity(frames, fh, title=title)
    except Exception as exc:        # the predictions and errors are written: report, keep them
        return written, [f"skipped {parity}: plotting failed: {type(exc).__name__}: {exc}"]
    return written + [parity], []


def _write_per_structure(rows, path):
    import csv
    import io
    from .io.atomic import atomic_write
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def _check_writable(path, folder=False):
    """Fail before any work when ``path`` cannot be written: its folder missing, read-only or
    refusing new files (/proc), or ``path`` a folder.  The check writes and removes a small
    temporary file there, as the atomic write at the end would.  ``folder``: ``path`` is an
    output folder, made later if missing (then its nearest existing parent is probed)."""
    import tempfile
    if path is None:
        return
    if folder:
        where = os.path.abspath(path)
        while not os.path.exists(where):        # the folder is made later: probe its parent
            where = os.path.dirname(where)
        if not os.path.isdir(where):
            raise CLIError(f"cannot write to {path}: {where} is a file, not a folder")
    else:
        if os.path.isdir(path):
            raise CLIError(f"cannot write {path}: it is a folder, give a file name")
        where = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(where):
            raise CLIError(f"cannot write {path}: {where} is not a writable folder")
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise CLIError(f"cannot write {path}: the file is read-only")
    try:
        fd, probe = tempfile.mkstemp(prefix=".snnp-check-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        what = f"to {path}: it" if folder else f"{path}: {where}"
        raise CLIError(f"cannot write {what} is not a writable folder "
                       f"({exc.strerror or exc})") from None


def _format_errors(err):
    lines = [f"{'':10s} {'E RMSE meV/at':>14s} {'E MAE':>8s} {'F RMSE eV/A':>12s} {'F MAE':>8s}"]

    from .formatting import format_error        # round-off (zero forces of perfect crystals) as 0

    def row(name, e):
        E, F = e["energy_meV_per_atom"], e["forces_eV_per_A"]
        cells = [format_error(v, 4) for v in (E["rmse"], E["mae"], F["rmse"], F["mae"])]
        lines.append(f"{name:10s} {cells[0]:>14s} {cells[1]:>8s} {cells[2]:>12s} {cells[3]:>8s}")
    row("all", err)
    for g, e in err.get("groups", {}).items():
        row(str(g), e)
    return "\n".join(lines)


def cmd_bench(args):
    from ase.build import bulk
    from . import set_num_threads
    from .ladder import time_model
    model = _load_model(args.model)
    el = model.species[0]
    try:
        atoms = bulk(el, cubic=True)
    except (KeyError, ValueError, RuntimeError):
        raise CLIError(f"ASE knows no reference crystal for {el!r} to benchmark on") from None
    reps = max(1, int(round((args.atoms / len(atoms)) ** (1 / 3))))
    atoms = atoms.repeat(reps)
    atoms.rattle(0.02, seed=1)
    set_num_threads(args.threads)
    t = time_model(model, atoms, device=args.device)
    where = "GPU" if args.device == "gpu" else f"{args.threads or 'default'} threads"
    print(f"{type(model).__name__} {model.species}: {t:.3g} us/atom/step on {len(atoms)} atoms, "
          f"{where}")


def cmd_plot(args):
    from . import plotting
    _check_writable(args.out, folder=True)
    model = _load_model(args.model)
    data = load_data(args.data, "test", _label_keys(args)) if args.data else None
    os.makedirs(args.out, exist_ok=True)
    written = [os.path.join(args.out, "filters.png")]
    plotting.plot_filters(model, written[0])
    if args.curves:
        written.append(os.path.join(args.out, "short_range.png"))
        plotting.plot_short_range(model, written[-1])
    if data is not None:
        for name, fn in (("embedding.png", plotting.plot_embedding),
                         ("contributions.png", plotting.plot_contributions)):
            written.append(os.path.join(args.out, name))
            fn(model, data, written[-1])
    print("wrote " + ", ".join(written))


def cmd_export(args):
    from .models import SplineMEAM
    _check_writable(args.out)
    model = _load_model(args.model)
    if args.lammps:
        model.to_lammps_plugin(args.out)
        print(f"wrote {args.out}: plugin load snnpplugin.so; pair_style snnp; "
              f"pair_coeff * * {args.out} " + " ".join(model.species))
        return
    if not isinstance(model, SplineMEAM):
        raise CLIError(f"only rung 0 (SplineMEAM) exports to meam/spline; this is a "
                       f"{type(model).__name__}: use --lammps for pair_style snnp")
    try:
        model.to_lammps(args.out, format=args.format, drop_e0=args.drop_e0)
    except ValueError as exc:
        raise CLIError(str(exc).replace("drop_e0=True (snnp export --drop-e0)", "--drop-e0")) from None
    print(f"wrote {args.out}: pair_style meam/spline; pair_coeff * * {args.out} "
          + " ".join(model.species))
    if args.drop_e0 and model.e0.any():
        print("LAMMPS energies = snnp energies minus e0 per atom of each species: " + ", ".join(
            f"{s} {e:.6g} eV" for s, e in zip(model.species, model.e0)))


def _int_at_least(low, wording):
    """An argparse type: an integer >= ``low`` (a clear usage error otherwise, before any work)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be {wording}, got {text!r}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _reach(text):
    """--angular-cutoff: a distance in Å, or 'auto' (snnp.filters.angular_reach)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a distance in Å or 'auto', got {text!r}")
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive distance in Å, got {text!r}")
    return value


def _add_e0_option(parser, auto=False):
    parser.add_argument("--e0", nargs="+", metavar="EL=EV",
                        help="isolated-atom energies (eV, the labels' energy zero) to hold e0 "
                             "at instead of fitting it, e.g. Si=-0.80 (docs/training.md)"
                             + "; fitted: fit e0 by least squares (the default)"
                             + ("; auto: fit rung 0 with e0 fitted and with e0 at the "
                                "free-atom estimate (the data's lowest energy per atom plus "
                                "the cohesive energy) and keep the lower validation loss"
                                if auto else ""))


DATA_HELP = ("emt-cu (built-in EMT copper), emt-cuau (built-in EMT copper-gold alloys), "
             "mlearn:EL[:split] (the mlearn DFT data of Li, Mo, "
             "Si, Cu, Ni; split training or test), inp[:split] (the InP DFT set from "
             "../shared/data/InP or $SNNP_INP; split training, validation, test, all), or a file: .xyz/.extxyz (extended XYZ), .db "
             "(ASE database), .json (mlearn)")
MODEL_HELP = ("model: an snnp model file (.json), a LAMMPS meam/spline file (read as rung 0) or "
              "a zoo name such as Mo/snnp_medium")


def _add_run_options(parser, loss_defaults):
    """Options every fitting command has: a config file, threads, loss weights, logging."""
    parser.add_argument("--config", metavar="YAML",
                        help="read options from this YAML file (keys as the long options, "
                             "max_iter or max-iter); options given here override it; every run "
                             "writes its resolved configuration beside its outputs")
    parser.add_argument("--threads", type=_non_negative_int, default=0,
                        help="threads of the compiled kernels (default 0: OMP_NUM_THREADS or "
                             "all cores; the resolved configuration records the number used)")
    energy, forces, stress = loss_defaults
    for name, default, what in (("energy", energy, "(energy per atom, eV/atom)^2"),
                                ("forces", forces, "(force component, eV/A)^2"),
                                ("stress", stress, "(stress component, GPa)^2"),
                                ("curvature", 1e-8, "integrated spline curvature"),
                                ("l2", 1e-7, "squared network weights"),
                                ("repulsion", 0.0, "the repulsion probes' violations "
                                 "(eV/A, GPa)^2: energies must rise at and below the data "
                                 "edge"),
                                ("cleavage", 0.0, "the cleavage probes' violations (eV/A)^2: "
                                 "a crystal pulled apart must rise in energy")):
        parser.add_argument(f"--{name}-weight", type=float, default=default, metavar="W",
                            help=f"loss weight of {what} (default {default:g}; snnp.Loss)")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="level of the messages shown and written to the log file "
                             "(default INFO)")


def build_parser():
    p = argparse.ArgumentParser(prog="snnp", description="spline-based interatomic potentials")
    from ._version import __version__
    p.add_argument("--version", action="version", version=f"snnp {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    from .models import LADDER, SNNP_PRESETS

    lad = sub.add_parser("ladder", help="train the ladder presets, write accuracy/cost table and plot")
    _add_label_key_options(lad)
    _add_run_options(lad, (1.0, 0.002, 1e-4))
    lad.add_argument("--data", default="emt-cu", metavar="SPEC",
                     help="training data: " + DATA_HELP + " (default: emt-cu)")
    lad.add_argument("--validation", type=float, default=0.1,
                     help="share of the training data held out for validation (default 0.1)")
    lad.add_argument("--validation-data", metavar="SPEC",
                     help="validate on this data (a SPEC as for --data) instead of a share of "
                          "--data")
    lad.add_argument("--timing-atoms", type=_positive_int, default=2000,
                     help="size of the test structure the presets are timed on (default 2000)")
    lad.add_argument("--iterations", nargs="+", metavar="PRESET=N",
                     help="L-BFGS iterations of named presets, overriding --max-iter's scaling "
                          "(e.g. snnp_large=900)")
    lad.add_argument("--test", metavar="SPEC",
                     help="test data, a SPEC as for --data (default: the mlearn test set for "
                          "mlearn:EL, otherwise a --test-fraction split of --data)")
    lad.add_argument("--test-fraction", type=float, default=0.2,
                     help="share of --data held out as the test set when no --test is given "
                          "(default 0.2)")
    lad.add_argument("--presets", nargs="+", choices=list(LADDER), metavar="PRESET",
                     help=f"presets to scan, in order (default: all: {' '.join(LADDER)})")
    lad.add_argument("--auto", action="store_true",
                     help="choose the recipe from the data: --angular-cutoff auto (the first "
                          "coordination shell), --e0 auto (rung 0 fitted with e0 fitted and "
                          "with e0 at the free-atom estimate, the lower validation loss kept), "
                          "--chain, --max-iter 2400 and --patience 3 (an "
                          "8x ceiling, each fit stopping on a validation plateau); options set "
                          "on the command line or in --config win, whatever their value")
    lad.add_argument("--max-iter", type=_positive_int, default=300,
                     help="L-BFGS iterations for rung 0; other presets scale it (ladder.EFFORT)")
    lad.add_argument("--patience", type=_non_negative_int, default=2,
                     help="stop a fit after N checkpoints (every 100 iterations) without a "
                          "better validation loss, keeping the best; the iteration budget is "
                          "then a ceiling (default 2; 0: run every fit to its budget)")
    lad.add_argument("--no-climb", action="store_true",
                     help="fit every preset from scratch instead of from the fitted rung 0")
    lad.add_argument("--chain", action=argparse.BooleanOptionalAction, default=False,
                     help="start each s-NNP from the largest preset fitted before it (rung 1 or "
                          "a smaller s-NNP) instead of from rung 0 (snnp.ladder.scan "
                          "climb='chain'; part of --auto, --no-chain turns it off there)")
    lad.add_argument("--no-monotone", action="store_true",
                     help="keep each preset's checkpoint of lowest validation loss even where "
                          "another is within the rung below's validation errors (default: "
                          "prefer those, snnp.ladder.scan monotone=True)")
    lad.add_argument("--resumable", action="store_true",
                     help="checkpoint every fit in OUT/checkpoints; run again to resume")
    lad.add_argument("--cutoff", type=float, default=5.0,
                     help="cutoff radius of every preset, in Å (default 5.0)")
    lad.add_argument("--r-min", type=float, default=1.5,
                     help="inner end of the filter and pair-term splines, in Å (default 1.5)")
    lad.add_argument("--angular-cutoff", type=_reach, default=None, metavar="A|auto",
                     help="end every preset's angular filters f_k here, rung 0's included (the "
                          "three-body terms see only nearer neighbours; cheaper); 'auto': at "
                          "the first clear gap of the training data's pair distribution, the "
                          "end of the first coordination shell (default: --cutoff)")
    lad.add_argument("--shared-filters", action="store_true",
                     help="tie every preset's filters across neighbour species (fewer "
                          "parameters; descriptors blind to the neighbours' elements)")
    lad.add_argument("--prior", type=float, default=0.0,
                     help="weight pulling the climbed presets' per-atom energies towards the "
                          "fitted rung 0's (Loss(prior=...); default 0: off)")
    lad.add_argument("--residual", nargs="*", choices=list(SNNP_PRESETS) + ["none"], default=None,
                     metavar="PRESET",
                     help="these s-NNP presets (none named: all) keep rung 0's spline embedding "
                          "U and fit their network on top of it, as rung 1 does "
                          "(presets(residual=...)); with --chain each starts with the energies "
                          "of the rung below where that rung keeps U and has the same depth; "
                          "'none': no s-NNP (the default)")
    _add_e0_option(lad, auto=True)
    lad.add_argument("--out", default="ladder-out", metavar="DIR",
                     help="folder for ladder.md/.csv/.json, pareto.png/.svg and the model files "
                          "(default ladder-out)")
    lad.add_argument("--seed", type=int, default=0,
                     help="seed of the data splits and the initial parameters (default 0)")
    lad.add_argument("--quiet", action="store_true",
                     help="show only the final table and warnings, not the fits' progress "
                          "(the log file still gets it)")
    lad.set_defaults(func=cmd_ladder)

    fit = sub.add_parser("fit", help="fit a preset or a saved model")
    _add_label_key_options(fit)
    _add_run_options(fit, (1.0, 0.01, 1e-4))
    fit.add_argument("model", nargs="?", help=f"preset ({', '.join(LADDER)}) or model file "
                                              "(required, here or in --config)")
    fit.add_argument("--data", metavar="SPEC",
                     help="training data (required): " + DATA_HELP)
    fit.add_argument("--out", metavar="MODEL.json",
                     help="where to save the fitted model (required); MODEL.config.yaml, "
                          "MODEL.log, MODEL.fit-log.csv and MODEL.learning.png go beside it")
    fit.add_argument("--validation-data", metavar="SPEC",
                     help="validate on this data instead of a --validation share of --data")
    fit.add_argument("--test", metavar="SPEC",
                     help="after the fit, print the errors on this data (a SPEC as for --data)")
    fit.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs",
                     help="full-batch L-BFGS (default) or mini-batch Adam (--epochs, "
                          "--batch-size, --learning-rate)")
    fit.add_argument("--epochs", type=_positive_int, default=100,
                     help="Adam epochs (default 100)")
    fit.add_argument("--batch-size", type=_positive_int, default=16,
                     help="Adam mini-batch size, in structures (default 16)")
    fit.add_argument("--learning-rate", type=float, default=2e-3,
                     help="Adam learning rate (default 0.002)")
    fit.add_argument("--checkpoint-every", type=_positive_int, default=100,
                     help="iterations between checkpoints and progress lines (default 100)")
    fit.add_argument("--patience", type=_non_negative_int, default=None,
                     help="stop after this many checkpoints without a better validation loss "
                          "(default: run to --max-iter)")
    from .models import Model
    fit.add_argument("--freeze", nargs="+", choices=list(Model.PARAM_GROUPS), metavar="GROUP",
                     help="parameter groups held fixed: " + ", ".join(Model.PARAM_GROUPS))
    fit.add_argument("--core", choices=["auto", "none"], default="auto",
                     help="auto (default): a ZBL core with radii from the training data; "
                          "none: no core (docs/theory.md, 'Where the data end')")
    fit.add_argument("--extrapolation", type=_non_negative_int, default=24,
                     help="centres of the extrapolation grade the model carries, in its "
                          "whitened filters (default 24; 1: the Mahalanobis distance; 0: none)")
    fit.add_argument("--max-iter", type=_positive_int, default=500,
                     help="L-BFGS iterations (default 500; with --checkpoint, larger than "
                          "before extends the fit)")
    fit.add_argument("--validation", type=float, default=0.1,
                     help="share of --data held out for validation (default 0.1; 0: none)")
    fit.add_argument("--checkpoint", metavar="FILE",
                     help="resumable checkpoint: written as the fit goes, resumed from when "
                          "it exists")
    fit.add_argument("--cutoff", type=float, default=5.0,
                     help="cutoff radius of a preset, in Å (default 5.0)")
    fit.add_argument("--r-min", type=float, default=1.5,
                     help="inner end of a preset's filter and pair-term splines, in Å "
                          "(default 1.5)")
    fit.add_argument("--angular-cutoff", type=_reach, default=None, metavar="A|auto",
                     help="end the preset's angular filters f_k here; 'auto': at the first "
                          "clear gap of the training data's pair distribution (default: "
                          "--cutoff)")
    fit.add_argument("--shared-filters", action="store_true",
                     help="tie the preset's filters across neighbour species (fewer "
                          "parameters; descriptors blind to the neighbours' elements)")
    fit.add_argument("--from", dest="climb_from", metavar="MODEL",
                     help="climb: start the preset from this fitted smaller model file (rung 0; "
                          "for an s-NNP preset also rung 1 or a smaller s-NNP)")
    fit.add_argument("--prior", type=float, default=0.0,
                     help="with --from: weight pulling per-atom energies towards that model's")
    fit.add_argument("--residual", action="store_true",
                     help="an s-NNP preset that keeps rung 0's spline embedding U under its "
                          "network (presets(residual=True)); with --from, the start's U")
    _add_e0_option(fit)
    fit.add_argument("--seed", type=int, default=0,
                     help="seed of the validation split and the initial parameters (default 0)")
    fit.add_argument("--quiet", action="store_true",
                     help="show only the saved path and warnings, not the header and "
                          "progress (the log file still gets them)")
    fit.set_defaults(func=cmd_fit)

    ev = sub.add_parser("eval", help="errors of a model on a dataset")
    _add_label_key_options(ev)
    ev.add_argument("model", help=MODEL_HELP)
    ev.add_argument("--data", required=True, metavar="SPEC",
                    help="data to score on (for mlearn:EL its test set): " + DATA_HELP)
    ev.add_argument("--json", action="store_true",
                    help="print every error (stresses and groups included) as JSON")
    ev.add_argument("--per-structure", metavar="CSV",
                    help="write one row per structure: energy, reference, error, the largest "
                         "per-atom extrapolation grade and any close pair")
    ev.add_argument("--out", metavar="DIR",
                    help="also write into DIR: predictions.extxyz (every structure with the "
                         "model's snnp_energy/_forces/_stress/_energies beside the REF_energy/"
                         "_forces/_stress labels), errors.json (what --json prints) and "
                         "parity.png (with the 'plot' extra)")
    ev.set_defaults(func=cmd_eval)

    be = sub.add_parser("bench", help="us/atom/step of a model")
    be.add_argument("model", help=MODEL_HELP)
    be.add_argument("--atoms", type=_positive_int, default=4000,
                    help="size of the rattled reference crystal timed (default 4000)")
    be.add_argument("--threads", type=_non_negative_int, default=0,
                    help="threads of the compiled kernels (default 0: OMP_NUM_THREADS or all "
                         "cores)")
    be.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                    help="gpu: the same kernels through CuPy (the gpu extra)")
    be.set_defaults(func=cmd_bench)

    pl = sub.add_parser("plot", help="plot a model's filters, embedding response and filter "
                                     "contributions (needs the 'plot' extra)")
    _add_label_key_options(pl)
    pl.add_argument("model", help=MODEL_HELP)
    pl.add_argument("--data", metavar="SPEC",
                    help="structures for the embedding and contribution plots: " + DATA_HELP)
    pl.add_argument("--out", default="plots", metavar="DIR",
                    help="folder for the PNG files (default plots)")
    pl.add_argument("--curves", action="store_true",
                    help="also short_range.png: dimer, trimer, in-crystal pair approach and "
                         "equation of state down to V/V0 = 0.4 (one-element models)")
    pl.set_defaults(func=cmd_plot)

    ex = sub.add_parser("export", help="write a model for LAMMPS: meam/spline (rung 0) or, with "
                                       "--lammps, the pair_style snnp plugin's file (any rung)")
    ex.add_argument("model", help=MODEL_HELP)
    ex.add_argument("out", help="file to write (OUT.meam.spline, or OUT.snnp with --lammps)")
    ex.add_argument("--lammps", action="store_true", help="write the pair_style snnp file")
    ex.add_argument("--format", choices=["new", "old"], default="new",
                    help="meam/spline layout: new (multi-element, default) or old "
                         "(single element)")
    ex.add_argument("--drop-e0", action="store_true",
                    help="leave out the reference energy e0 meam/spline cannot hold (forces equal)")
    ex.set_defaults(func=cmd_export)
    return p


def _subparser(parser, command):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _given_options(argv):
    """The option names given on the command line (they override a config file)."""
    parser = build_parser()
    for sub in next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices.values():
        for action in sub._actions:
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


# -- logging: the console (stdout; tqdm-aware on a terminal) and the run's log file ------------

_log = logging.getLogger("snnp.cli")


class _ConsoleHandler(logging.StreamHandler):
    """Messages on the console; on a terminal written through tqdm, so progress bars stay."""

    def emit(self, record):
        stream = self.stream
        if getattr(stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm
                tqdm.write(self.format(record), file=stream)
                return
            except Exception:       # noqa: BLE001 - fall back to a plain line
                pass
        super().emit(record)


_RUN = {"level": logging.INFO, "file": None}


def _log_to(path):
    """Write this run's messages to ``path`` too (appending: a resumed run adds to it)."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(_RUN["level"])
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("snnp").addHandler(handler)
    _RUN["file"] = handler


def _result(text):
    """A result (the table, what was written): always on stdout, and in the log file."""
    print(text, flush=True)
    if _RUN["file"] is not None and text:
        _RUN["file"].handle(logging.makeLogRecord(
            {"name": "snnp.cli", "levelno": logging.INFO, "levelname": "INFO", "msg": text}))


@contextlib.contextmanager
def _logging(args):
    """The ``snnp`` logger's handlers for one command, removed after it."""
    level = getattr(logging, getattr(args, "log_level", "INFO"))
    root = logging.getLogger("snnp")
    saved = (root.level, root.propagate, list(root.handlers))
    console = _ConsoleHandler(sys.stdout)
    console.setLevel(logging.WARNING if getattr(args, "quiet", False) else level)
    console.setFormatter(logging.Formatter("%(message)s"))
    root.handlers = [console]
    root.setLevel(level)
    root.propagate = False
    _RUN.update(level=level, file=None)
    try:
        yield
    finally:
        if _RUN["file"] is not None:
            _RUN["file"].close()
        _RUN["file"] = None
        root.setLevel(saved[0])
        root.propagate = saved[1]
        root.handlers = saved[2]


def _apply_config(parser, args, argv):
    """Fill ``args`` from its --config file where the command line is silent, and record in
    ``args._explicit`` the options set by either (``--auto`` leaves those alone)."""
    args._explicit = _given_options(argv)
    if getattr(args, "config", None):
        from .config import apply_config, read_config
        config = read_config(args.config)
        apply_config(_subparser(parser, args.command), args, args._explicit, config, args.config)
        args._explicit |= set(config)
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _apply_config(parser, args, argv)
        with _logging(args):
            args.func(args)
    except (CLIError, ValueError, FileNotFoundError, OSError, KeyError, ImportError,
            GPUUnavailable) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"snnp {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("snnp: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
