"""Ladder scans: train every preset on one dataset, measure test errors and cost, and write an
accuracy-versus-cost table (Markdown, CSV, JSON) and a Pareto plot (PNG, SVG).

    rows = snnp.ladder.scan(train, test, out="ladder-out")

Cost is measured on the same structure for every preset, in the same run: a supercell of the
first test structure with at least ``timing_atoms`` atoms, energy and forces per MD-like step
(positions moving, the calculator's neighbour list reused), as us/atom/step.
"""
import csv
import json
import logging
import os
import sys
import time

import numpy as np

from .io.atomic import atomic_write
from .formatting import format_error
from .models import LADDER, SNNP_PRESETS, presets as make_presets, residual_presets

#: progress of scans (INFO); the fits report on ``snnp.training``'s logger or through ``log``
logger = logging.getLogger("snnp.ladder")

__all__ = ["scan", "climbed", "error_fields", "not_improving", "validation_limits",
           "validation_structures", "time_model",
           "time_models", "write_outputs", "format_error", "EFFORT"]


def time_model(model, atoms, steps=10, repeats=3, device="cpu"):
    """us/atom/step for energy + forces, atoms moving a little each step (best of repeats)."""
    from .backends import new_neighbor_list
    rng = np.random.default_rng(0)
    kicks = 0.005 * rng.normal(size=(steps,) + atoms.positions.shape)
    best = np.inf
    for _ in range(repeats):
        a = atoms.copy()
        nl = new_neighbor_list(model.cutoff, skin=1.0, device=device)
        model.compute(a, ("energy", "forces"), nl, device=device)
        start = time.perf_counter()
        for k in range(steps):
            a.positions += kicks[k]
            model.compute(a, ("energy", "forces"), nl, device=device)
        best = min(best, (time.perf_counter() - start) / steps / len(a) * 1e6)
    return best


def _timing_structure(test, timing_atoms):
    atoms = test[0].atoms.copy()
    reps = [1, 1, 1]
    while len(atoms) * np.prod(reps) < timing_atoms:
        d = int(np.argmin([np.linalg.norm(atoms.cell[k]) * reps[k] if atoms.pbc[k] else np.inf
                           for k in range(3)]))
        reps[d] += 1
    big = atoms.repeat(reps)
    big.rattle(0.02, seed=1)
    return big


#: fitting effort per preset, relative to ``max_iter``: climbing from the fitted rung 0, rung 1
#: needs fewer iterations; the larger s-NNPs need more to converge
EFFORT = {"smeam": 1.0, "smeam_nn": 0.5, "snnp_small": 1.0, "snnp_medium": 1.5, "snnp_large": 1.5}


def climbed(start, name, data, seed=0, angular_cutoff=None, residual=False):
    """Preset ``name`` started from a fitted smaller model (a climb).  From rung 0: rung 1
    with its filters, pair term and U plus a zero network; an s-NNP with its filters and pair
    term as filters 1 and a network distilled from its U on ``data``'s atoms
    (``SNNP.from_spline_meam``).  From a fitted rung 1 or smaller s-NNP (an s-NNP preset only,
    the chain climb): its filters as the first ones and a network distilled from its energies
    on ``data``'s atoms (``SNNP.grown_from``), so the preset starts where ``start`` ended.
    ``residual`` (an s-NNP preset in the form of ``presets(residual=True)``): the start's U is
    kept and its network embedded or distilled on top (``SplineMEAMNN.grown_from``), from
    rung 0, rung 1 or a smaller residual s-NNP; from rung 0 or a network of the same depth the
    preset starts with exactly the start's energies."""
    from .models import SNNP, SplineMEAM, SplineMEAMNN
    if name not in LADDER or LADDER[name][0] is SplineMEAM:
        raise ValueError(f"{name!r} is not a preset above rung 0; climbable: "
                         f"{[n for n, v in LADDER.items() if v[0] is not SplineMEAM]}")
    cls, K_r, K_a, widths = LADDER[name]
    grow = SplineMEAMNN if residual and cls is SNNP else SNNP
    shortens = type(start) is SplineMEAM and cls is SNNP and grow is SNNP
    if angular_cutoff is not None and not shortens and start.filters.f is not None and any(
            s.x1 > angular_cutoff for bank in start.filters.f for s in bank):
        raise ValueError(f"angular_cutoff {angular_cutoff} is shorter than the start's angular "
                         f"filters: only an s-NNP climbed from rung 0 without residual shortens "
                         f"them; fit the start with that angular cutoff instead")
    if type(start) is SplineMEAM:
        if cls is SplineMEAMNN:
            return SplineMEAMNN.from_spline_meam(start, widths=widths, seed=seed)
        if grow is SplineMEAMNN:
            return SplineMEAMNN.grown_from(start, K_r, K_a, widths, seed=seed, data=data)
        return SNNP.from_spline_meam(start, K_r, K_a, widths, seed=seed, data=data,
                                     angular_cutoff=angular_cutoff)
    if cls is not SNNP or getattr(start, "mlp", None) is None:
        raise ValueError(f"{name} climbs from a fitted rung-0 SplineMEAM"
                         + (", or from a fitted rung 1 or smaller s-NNP" if cls is SNNP else "")
                         + f", not a {type(start).__name__}")
    if (start.n_radial, start.n_angular, tuple(start.mlp.widths)) == (K_r, K_a, tuple(widths)):
        raise ValueError(f"the start is already {name}-sized: continue its fit (fit the model "
                         f"itself) instead of climbing")
    return grow.grown_from(start, K_r, K_a, widths, seed=seed, data=data)


def scan(train, test, presets=None, cutoff=5.0, r_min=1.5, loss=None, max_iter=300,
         validation=0.1, timing_atoms=2000, out=None, log=True, seed=0, climb=True,
         checkpoint_dir=None, references=None, iterations_override=None, angular_cutoff=None,
         prior=0.0, e0=None, data=None, provenance=None, progress="auto", validation_set=None,
         shared_filters=False, patience=None, monotone=True, residual=False):
    """Fit each preset (default: the whole ladder) and return one row per preset.

    ``max_iter``: L-BFGS iterations for rung 0; each preset gets ``max_iter * EFFORT[name]``
    unless ``iterations_override`` (a dict name -> iterations) names it: with ``patience``
    (a number of checkpoints, every 100 iterations) that is a ceiling, and a fit stops once its
    validation loss has not improved for that many checkpoints (keeping the best); each row's
    ``iterations_run`` says where it stopped.  ``climb`` (when
    "smeam" is scanned, and first): True, the other presets start from the fitted rung 0: rung
    1 with its filters, pair term and U plus a zero network; the s-NNPs with its filters and
    pair term as filters 1 and a network distilled from its U on the training atoms
    (``SNNP.from_spline_meam``).  "chain": each s-NNP starts instead from the largest preset
    fitted before it (rung 1 or a smaller s-NNP), its filters kept and a network distilled from
    its energies (``SNNP.grown_from``), so it starts where that rung ended.  False: every preset
    from scratch.  Each row records the validation errors and ``climbed_from``; a rung whose
    validation energy or force RMSE is not below the previous row's is reported (logged, and
    listed in ladder.md: ``not_improving``).  ``monotone`` (with a validation set): each
    preset after the first keeps, of its checkpoints (its start included), the one of lowest
    validation loss among those whose validation energy and force RMSEs are within the
    previous row's (``fit(no_worse_than=...)``), and only where none is its lowest overall;
    the row's ``within_below`` says which, and ``best_step`` which checkpoint was kept (0: the
    start, e.g. rung 1's zero network on rung 0, when no later checkpoint was within).  A
    chain climb from an s-NNP of the same depth starts exactly where that rung ended
    (``SNNP.grown_from``), so there it always is within.
    ``checkpoint_dir``:
    every fit checkpoints there, so a killed scan run again resumes where it stopped.  Costs are
    measured after all fits, the presets timed in turn on the same structure, best of three.
    ``references``: published errors to draw beside the scan, {method: (meV/atom, eV/A)}.
    ``angular_cutoff``: every preset's angular filters end there (``presets``), rung 0's
    included, so the three-body terms see only the nearer neighbours and cost less; "auto":
    at the first clear gap of the training data's pair distribution
    (``snnp.filters.angular_reach``: the first coordination shell; None where it finds no gap).
    ``prior``: when climbing, the climbed presets fit with ``Loss(prior=prior)`` towards the
    fitted rung 0's per-atom energies (docs/training.md); 0 leaves it off.
    ``e0``: isolated-atom energies {element: eV}: every preset holds e0 there instead of
    fitting it (``fit(e0=...)``), so its pair term and embedding carry the cohesive energy.
    "auto": the first preset is fitted twice, with e0 fitted and with e0 held at the free-atom
    estimate (the data's lowest energy per atom of each element plus its cohesive energy,
    ``snnp.reference.free_atom_estimate``), and the one of lower validation loss is kept; the
    later presets follow its choice.  The row's ``e0_search`` records both validation losses,
    and its fit time includes both fits.  Without a validation set or an estimate (a compound
    set without its elemental solids) e0 is fitted.
    ``data``: how to name the dataset in ladder.md's header (the CLI passes its ``--data``
    spec); default: the training set's name.  ``validation_set``: a Dataset to validate on
    instead of splitting ``validation`` off ``train``.  ``shared_filters``: every preset's
    filters tied across neighbour species (``presets(..., shared_filters=True)``; the climbed
    presets inherit rung 0's tied bank).
    ``residual``: True, the s-NNP presets (a list of s-NNP preset names: those named) keep
    rung 0's spline embedding U and fit a network on top of it (``presets(residual=...)``);
    climbed, each starts with exactly the energies of the rung it grows from where that rung
    keeps U and its network has the same depth (rung 1 under ``snnp_small``, ``snnp_medium``
    under ``snnp_large``), and with that network's correction distilled otherwise.  An s-NNP
    without U chain-climbed from one with U (``residual=["snnp_small"]``: ``snnp_medium`` on
    the residual ``snnp_small``) starts from a network distilled from its energies.
    ``log``: True (default) reports on the ``snnp.ladder`` logger (INFO), a callable gets each
    line, False is silent.  ``progress``: tqdm bars over the presets and each fit ("auto":
    when standard error is a terminal).  ``provenance``: a dict stored in every saved model
    file's provenance (the CLI stores its resolved configuration there).  With ``out``, each
    preset's learning curve is written as ``PRESET.fit-log.csv`` and ``PRESET.learning.png``.

    Example::

        train, test = snnp.datasets.emt_copper().split(0.2)
        rows = snnp.ladder.scan(train, test, presets=["smeam", "snnp_small"], max_iter=50)
        print(snnp.ladder.markdown_table(rows))
    """
    from .training import Loss
    names = list(presets or LADDER)
    unknown = [n for n in names if n not in LADDER]
    if unknown:
        raise ValueError(f"unknown presets {unknown}; known: {list(LADDER)}")
    if len(train) == 0 or len(test) == 0:
        raise ValueError("the ladder needs a non-empty training and test set")
    if not prior >= 0:
        raise ValueError(f"the prior weight must be >= 0, got {prior}")
    if climb not in (True, False, "chain"):
        raise ValueError(f"climb must be True, False or 'chain', got {climb!r}")
    if prior > 0 and not (climb and "smeam" in names):
        raise ValueError("a prior pulls the climbed presets towards the fitted smeam: it needs "
                         "climb=True and 'smeam' among the presets")
    if loss is not None and loss.prior > 0:
        raise ValueError("give the prior weight as scan(prior=...), not in the loss: rung 0 "
                         "has no prior to lean on")
    for term in ("repulsion", "cleavage"):
        if prior > 0 and loss is not None and getattr(loss, term) > 0:
            raise ValueError(f"a prior cannot be combined with Loss({term}=...): the {term} "
                             f"probes have no prior energies to be pulled towards")
    if isinstance(angular_cutoff, str) and angular_cutoff != "auto":
        raise ValueError(f"angular_cutoff must be a distance, None or 'auto', got {angular_cutoff!r}")
    if isinstance(e0, str) and e0 != "auto":
        raise ValueError(f"e0 must be a dict {{element: eV}}, None or 'auto', got {e0!r}")
    e0_rule = "auto" if e0 == "auto" else ("given" if e0 is not None else "fitted")
    keep_U = residual_presets(residual)
    if climb == "chain" and "smeam" in names:      # a chain climb into U needs U below
        snnps = [n for n in names if n in SNNP_PRESETS]
        late = [n for k, n in enumerate(snnps) if n in keep_U and set(snnps[:k]) - keep_U]
        if late:
            raise ValueError(f"residual {late[0]} would chain-climb from an s-NNP without rung "
                             f"0's U; make the s-NNPs below it residual too")
    iterations = {n: max(1, int(round(max_iter * EFFORT.get(n, 1.0)))) for n in names}
    iterations.update(iterations_override or {})
    loss = loss or Loss(energy=1.0, forces=0.002, stress=1e-4)
    say = ((lambda line, **kw: logger.info(line)) if log is True else log) if log \
        else (lambda *a, **kw: None)
    species = train.species
    extra = sorted(set(test.species) - set(species))
    if extra:
        raise ValueError(f"the test set has species {extra} that the training set lacks")
    if validation_set is not None:
        fit_set, val_set = train, validation_set
    else:
        fit_set, val_set = train.split(validation, seed=seed) if validation else (train, None)
    reach_rule = angular_cutoff
    if angular_cutoff == "auto":
        from .filters import angular_reach
        angular_cutoff = angular_reach(train.structures, cutoff, r_min)
        say("angular filters end at "
            + (f"{angular_cutoff:.3f} A, the first gap of the training data's pair distribution"
               if angular_cutoff is not None else f"the cutoff ({cutoff} A): the training "
               "data's pair distribution has no clear gap inside it"), flush=True)
    timing = _timing_structure(test, timing_atoms)
    if out:
        os.makedirs(out, exist_ok=True)
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
    models = make_presets(species, cutoff=cutoff, r_min=r_min, seed=seed,
                          angular_cutoff=angular_cutoff, shared_filters=shared_filters,
                          residual=keep_U)
    core = _core_from(train, models)
    rows, fitted, order = [], {}, list(LADDER)
    bar = None
    if progress is True or (progress == "auto" and log and sys.stderr.isatty()):
        from tqdm import tqdm
        bar = tqdm(total=len(names), unit="preset", desc="ladder", dynamic_ncols=True)
    for k, name in enumerate(names, 1):
        model = models[name]
        start_from, below = "", ""
        start = time.perf_counter()                   # a climb's distillation counts too
        if climb and name != "smeam" and "smeam" in fitted:
            below = "smeam"
            if climb == "chain" and name in SNNP_PRESETS:    # the largest below
                below = max((n for n in fitted if order.index(n) < order.index(name)),
                            key=order.index)
            model = climbed(fitted[below], name, fit_set, seed=seed, angular_cutoff=angular_cutoff,
                            residual=name in keep_U)
            start_from = f", climbing from the fitted {below}"
        say(f"[{k}/{len(names)}] {name}: {type(model).__name__}, {model.n_params} parameters, "
            f"{iterations[name]} iterations on {len(fit_set)} structures{start_from} ...", flush=True)
        fit_loss, fit_prior = loss, None
        if start_from and prior > 0:
            fit_loss = Loss(**{**loss.to_dict(), "prior": prior})
            fit_prior = fitted["smeam"]
        if core is not None and (model.core is None or model.core.auto):
            model.core = core.copy()          # every rung: the one core of the training data
        limits = validation_limits(rows[-1]) if monotone and rows else None

        def run_fit(candidate, e0_value, tag=""):
            candidate.fit(fit_set, val_set, loss=fit_loss, prior=fit_prior,
                          max_iter=iterations[name], seed=seed, e0=e0_value, patience=patience,
                          no_worse_than=limits,
                          checkpoint=(os.path.join(checkpoint_dir, f"{name}{tag}.json")
                                      if checkpoint_dir else None),
                          log=(lambda line, **kw: say("    " + line, **kw)) if log else False,
                          progress=progress)
            return candidate.provenance["seconds"]

        fit_start = time.perf_counter()
        e0_search = None
        if e0 == "auto":
            model, e0, e0_search, fit_s = _choose_e0(model, run_fit, fit_set, val_set, fit_loss,
                                                     say)
        else:
            fit_s = run_fit(model, e0)
        # the fit's own clock runs across resumes; add the climb's distillation
        fit_s += fit_start - start
        fitted[name] = model
        err = model.score(test)
        val = model.score(val_set) if val_set is not None and len(val_set) else None
        per_structure = validation_structures(model, val_set) if val else {}
        rows.append({
            "preset": name, "class": type(model).__name__, "n_params": model.n_params,
            "filters": f"{model.n_radial}+{model.n_angular}"
                       + (" shared" if model.filters.shared and model.n_species > 1 else ""),
            "angular_cutoff": angular_cutoff, "shared_filters": model.filters.shared,
            "mlp": "x".join(map(str, model.mlp.widths)) if model.mlp else "-",
            **error_fields(err, val),
            "climbed_from": below,
            "within_below": model.provenance.get("no_worse_than_met") if limits else None,
            "best_step": model.provenance.get("best_step"),
            "iterations": iterations[name], "iterations_run": model.provenance["steps"],
            "fit_seconds": fit_s, "prior": fit_loss.prior,
            "e0": "" if e0 is None else " ".join(f"{el}={v:g}" for el, v in
                                                 zip(model.species, model.e0)),
            **({"e0_search": e0_search} if e0_search else {}),
            **per_structure,
        })
        if out:
            model.save(os.path.join(out, f"{name}.json"),
                       provenance=None if provenance is None else {"config": provenance,
                                                                   "preset": name})
            _write_learning_curve(model, os.path.join(out, name), say)
        if bar is not None:
            bar.update(1)
        say(f"    test: E {rows[-1]['energy_rmse_meV_per_atom']:.3g} meV/atom, "
            f"F {rows[-1]['force_rmse_eV_per_A']:.3g} eV/A", flush=True)
    if bar is not None:
        bar.close()
    for line in not_improving(rows):
        say(line, flush=True)
    say(f"timing {len(names)} models on {len(timing)} atoms ...", flush=True)
    costs = time_models([fitted[n] for n in names], timing)
    for r, cost in zip(rows, costs):
        r["us_per_atom_step"] = cost
        r["cost_vs_first"] = cost / costs[0]
    if out:
        from ._kernels import get_num_threads
        meta = {"train": train.name, "test": test.name,
                "data": data or train.name or "unnamed dataset",
                "train_structures": len(train), "test_structures": len(test),
                "fit_structures": len(fit_set), "fit_atoms": _n_atoms(fit_set),
                "validation_structures": len(val_set or ()),
                "validation_atoms": _n_atoms(val_set or ()), "test_atoms": _n_atoms(test),
                "threads": get_num_threads(), "timing_atoms": len(timing), "cutoff": cutoff,
                "iterations": iterations, "patience": patience, "climb": climb,
                "monotone": monotone,
                "loss": loss.to_dict(),
                "prior": prior, "e0": e0, "e0_rule": e0_rule, "angular_cutoff": angular_cutoff,
                "angular_reach": "auto" if reach_rule == "auto" else "given",
                "shared_filters": shared_filters,
                "residual": [n for n in LADDER if n in keep_U]}
        not_plotted = write_outputs(rows, out, meta=meta, references=references)
        if not_plotted:
            say(f"pareto.png/.svg not written: {not_plotted}", flush=True)
    return rows


def _write_learning_curve(model, stem, say):
    """STEM.fit-log.csv and, with Matplotlib, STEM.learning.png from the fit's history."""
    from .fitlog import write_fit_log
    history = model.provenance.get("history") or []
    write_fit_log(history, stem + ".fit-log.csv")
    try:
        from .plotting import plot_learning
        plot_learning(history, stem + ".learning.png")
    except ImportError:
        say(f"{stem}.learning.png not written: Matplotlib is not installed "
            "(pip install 'snnp[plot]')")


def _n_atoms(dataset):
    return int(sum(len(s.atoms) for s in dataset))


def _core_from(train, models):
    """The ZBL core every rung of a scan shares: r_out at each species pair's shortest
    distance in the whole training set (fit and validation parts), or None where the presets
    have no core (non-element species)."""
    from .core import ZBLCore
    first = next(iter(models.values()))
    if first.core is None:
        return None
    return ZBLCore.from_data(first.species, train.structures, cutoff=first.cutoff,
                             clamp_width=first.core.clamp_width)


def time_models(models, atoms, repeats=3):
    """us/atom/step of each model, timed in turn (so drift hits all alike), best of repeats."""
    best = [np.inf] * len(models)
    for _ in range(repeats):
        for k, model in enumerate(models):
            best[k] = min(best[k], time_model(model, atoms, repeats=1))
    return best


COLUMNS = [("preset", "preset", "{}"), ("class", "model", "{}"), ("filters", "filters", "{}"),
           ("mlp", "MLP", "{}"), ("n_params", "params", "{}"),
           ("energy_rmse_meV_per_atom", "E RMSE (meV/atom)", format_error),
           ("force_rmse_eV_per_A", "F RMSE (eV/Å)", format_error),
           ("stress_rmse_GPa", "σ RMSE (GPa)", format_error),
           ("iterations", "fit iterations", "{}"),
           ("us_per_atom_step", "cost (µs/atom/step)", format_error),
           ("cost_vs_first", "cost ×", "{:.2f}")]


def _cell(fmt, value):
    return fmt(value) if callable(fmt) else fmt.format(value)


def error_fields(err, val=None):
    """A ladder row's error fields from ``Model.score`` on the test set (``err``) and, when
    given, on the validation set (``val``; else those fields are None)."""
    return {
        "energy_rmse_meV_per_atom": err["energy_meV_per_atom"]["rmse"],
        "energy_mae_meV_per_atom": err["energy_meV_per_atom"]["mae"],
        "force_rmse_eV_per_A": err["forces_eV_per_A"]["rmse"],
        "force_mae_eV_per_A": err["forces_eV_per_A"]["mae"],
        "stress_rmse_GPa": err["stress_GPa"]["rmse"],
        "validation_energy_rmse_meV_per_atom": val["energy_meV_per_atom"]["rmse"] if val else None,
        "validation_force_rmse_eV_per_A": val["forces_eV_per_A"]["rmse"] if val else None,
        "groups": {g: {"energy_rmse_meV_per_atom": v["energy_meV_per_atom"]["rmse"],
                       "force_rmse_eV_per_A": v["forces_eV_per_A"]["rmse"]}
                   for g, v in err.get("groups", {}).items()},
    }


def _choose_e0(model, run_fit, fit_set, val_set, loss, say):
    """``scan(e0="auto")`` on the first preset: fit ``model`` with e0 fitted by least squares
    and, from the same start, with e0 held at the free-atom estimate
    (``snnp.reference.free_atom_estimate``); keep the one of lower validation loss.  Returns
    (the kept model, its e0 rule for the later presets: the estimate or None, a record of the
    search, the seconds both fits took)."""
    from .reference import free_atom_estimate
    from .training import Batch, loss_and_gradient
    estimate, why = free_atom_estimate(fit_set.structures, model.species)
    if estimate is not None and not (val_set is not None and len(val_set)):
        estimate, why = None, "no validation set to choose on"
    if estimate is None:
        say(f"    e0 fitted: no free-atom candidate ({why})", flush=True)
        return model, None, {"chosen": "fitted", "why": why}, run_fit(model, None)
    held = model.copy()
    text = " ".join(f"{el}={v:.3f}" for el, v in estimate.items())
    seconds, scores = 0.0, {}
    for label, candidate, e0_value, tag in (("fitted", model, None, ".e0-fitted"),
                                            ("free atom", held, estimate, ".e0-free-atom")):
        say(f"    e0 {label}" + (f" ({text} eV)" if e0_value else "") + ":", flush=True)
        seconds += run_fit(candidate, e0_value, tag)
        scores[label] = float(loss_and_gradient(candidate, Batch(val_set.structures, candidate),
                                                loss, gradient=False)[0])
    chosen = "free atom" if scores["free atom"] < scores["fitted"] else "fitted"
    say(f"    e0 {chosen}: validation loss {scores[chosen]:.4g} against "
        f"{scores['fitted' if chosen == 'free atom' else 'free atom']:.4g}", flush=True)
    record = {"chosen": chosen, "free_atom_estimate": estimate,
              "validation_loss": scores}
    if chosen == "free atom":
        return held, estimate, record, seconds
    return model, None, record, seconds


def validation_limits(row):
    """``fit(no_worse_than=...)`` from a ladder row's validation RMSEs: {"energy": meV/atom,
    "forces": eV/A} of those it has (finite), or None without any."""
    limits = {"energy": row.get("validation_energy_rmse_meV_per_atom"),
              "forces": row.get("validation_force_rmse_eV_per_A")}
    return {k: v for k, v in limits.items() if v is not None and np.isfinite(v)} or None


def validation_structures(model, val_set):
    """A ladder row's per-structure validation fields: ``validation_energy_errors``, each
    validation structure's energy error (meV/atom; None without a label), and
    ``validation_structures``, how to name each ("training.json#65 (Surface, 12 atoms)"), so that
    ``not_improving`` can say which structure a failed rung's energy error comes from."""
    from .training import Batch, predict
    batch = Batch(val_set.structures, model)
    energy = predict(model, batch)[0]
    errors = [float(1e3 * (e - st.energy) / len(st.atoms)) if st.energy is not None else None
              for e, st in zip(energy, val_set.structures)]
    names = [f"{st.name or f'validation structure {k}'} ("
             + (f"{st.group}, " if st.group else "") + f"{len(st.atoms)} atoms)"
             for k, st in enumerate(val_set.structures)]
    return {"validation_energy_errors": errors, "validation_structures": names}


def _rmse(values):
    """``training.error_stats``'s RMSE of the labelled entries (None: no label)."""
    from .training import error_stats
    return error_stats([v for v in values if v is not None])["rmse"]


def _largest_error(prev, row):
    """Where a rung's validation energy RMSE is not below the one beneath: its largest
    per-structure error, that structure's error in the rung beneath, and both RMSEs without
    it ("" when the rows lack per-structure errors, ``validation_structures``)."""
    a, b = prev.get("validation_energy_errors"), row.get("validation_energy_errors")
    names = row.get("validation_structures")
    if not (a and b and names and len(a) == len(b) == len(names)):
        return ""
    k = max((i for i, e in enumerate(b) if e is not None and a[i] is not None),
            key=lambda i: abs(b[i]), default=None)
    if k is None:
        return ""
    rest = lambda errs: _rmse(errs[:k] + errs[k + 1:])
    return (f"; its largest error is on {names[k]}: {b[k]:+.1f} against {a[k]:+.1f} meV/atom, "
            f"and without it validation energy RMSE {format_error(rest(b))} against "
            f"{format_error(rest(a))}")


def not_improving(rows):
    """One line per row whose validation energy or force RMSE is not below the previous row's
    (the rung below it in the scan): a larger rung that failed to improve.  Where the rows
    hold per-structure validation errors (``validation_structures``), an energy line names
    the structure of the larger rung's largest error and gives both RMSEs without it, so a
    single held-out structure that decides the order shows."""
    lines = []
    for prev, r in zip(rows, rows[1:]):
        for key, what, unit in (("validation_energy_rmse_meV_per_atom", "energy", "meV/atom"),
                                ("validation_force_rmse_eV_per_A", "force", "eV/A")):
            a, b = prev.get(key), r.get(key)
            if a is not None and b is not None and not b < a:
                lines.append(f"{r['preset']} does not improve on {prev['preset']}: validation "
                             f"{what} RMSE {format_error(b)} against {format_error(a)} {unit}"
                             + (_largest_error(prev, r) if what == "energy" else ""))
    return lines


def markdown_table(rows):
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(fmt, r[k]) for k, _, fmt in COLUMNS) + " |")
    groups = sorted({g for r in rows for g in r["groups"]})
    if groups:
        lines += ["", "Per group, energy RMSE (meV/atom) / force RMSE (eV/Å):", "",
                  "| preset | " + " | ".join(groups) + " |", "|" + "---|" * (len(groups) + 1)]
        for r in rows:
            cells = [format_error(r['groups'][g]['energy_rmse_meV_per_atom']) + " / "
                     + format_error(r['groups'][g]['force_rmse_eV_per_A'])
                     if g in r["groups"] else "-" for g in groups]
            lines.append(f"| {r['preset']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def data_line(meta):
    """ladder.md's line naming the data and the threads, from a scan's ``meta`` ("" when
    ``meta`` lacks the counts)."""
    meta = meta or {}
    if "fit_structures" not in meta:
        return ""
    train, test = meta.get("train"), meta.get("test")
    name = meta.get("data") or train or "unnamed dataset"
    if train and train != name:
        name += f" ({train})"
    if test and test not in (train, meta.get("data")):
        name += f", test set {test}"
    threads = meta.get("threads")
    return (f"Data: {name}: train {meta['fit_structures']} structures "
            f"({meta['fit_atoms']} atoms), validation {meta['validation_structures']} "
            f"({meta['validation_atoms']} atoms), test {meta['test_structures']} "
            f"({meta['test_atoms']} atoms); "
            + (f"{threads} thread{'s' if threads != 1 else ''}" if threads is not None
               else "threads unknown") + ".\n")


def write_outputs(rows, out, meta=None, references=None):
    """ladder.md, ladder.csv, ladder.json and, with Matplotlib, pareto.png and pareto.svg.

    Returns None when the plots were written, otherwise why not (Matplotlib missing, or the
    plotting error, which is also warned)."""
    os.makedirs(out, exist_ok=True)
    with atomic_write(os.path.join(out, "ladder.md")) as fh:
        header = data_line(meta)
        fh.write("# Ladder scan: accuracy against cost\n\n" + (header + "\n" if header else "")
                 + markdown_table(rows))
        worse = not_improving(rows)
        if worse:
            fh.write("\nRungs that do not improve on the one below (validation):\n\n"
                     + "".join(f"- {line}\n" for line in worse))
        if references:
            fh.write("\nPublished test errors on the same data (meV/atom / eV/Å): " + "; ".join(
                f"{k} {e:g} / {f:g}" for k, (e, f) in references.items()) + "\n")
    with atomic_write(os.path.join(out, "ladder.csv")) as fh:
        writer = csv.writer(fh)
        keys = []                     # every column any row has (rows of older scans lack some)
        for r in rows:                # scalars only: groups, lists and searches are in the JSON
            keys += [k for k in r if not isinstance(r[k], (dict, list)) and k not in keys]
        writer.writerow(keys)
        for r in rows:
            writer.writerow([r.get(k, "") for k in keys])
    with atomic_write(os.path.join(out, "ladder.json")) as fh:
        json.dump({"meta": meta or {}, "rows": rows, "references": references or {}}, fh, indent=1)
    return _try_pareto_plot(rows, out, references)


def _try_pareto_plot(rows, out, references):
    import importlib.util
    if importlib.util.find_spec("matplotlib") is None:
        return "Matplotlib is not installed (pip install 'snnp[plot]')"
    try:
        pareto_plot(rows, out, references)
    except Exception as exc:                   # the tables are written: report, do not lose them
        import warnings
        reason = f"plotting failed: {type(exc).__name__}: {exc}"
        warnings.warn(f"pareto.png/.svg not written: {reason}", RuntimeWarning, stacklevel=3)
        return reason
    return None


def pareto_plot(rows, out, references=None):
    """Energy and force error against cost, the Pareto front drawn, points named; published
    errors of other methods (``references``: {method: (meV/atom, eV/A)}) as dashed lines."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    cost = np.array([r["us_per_atom_step"] for r in rows])
    for col, (ax, key, label) in enumerate(
            ((axes[0], "energy_rmse_meV_per_atom", "energy RMSE (meV/atom)"),
             (axes[1], "force_rmse_eV_per_A", "force RMSE (eV/Å)"))):
        err = np.array([r[key] for r in rows])
        lines = {}                                    # methods with equal errors share a line
        for method, values in (references or {}).items():
            lines.setdefault(values[col], []).append(method)
        for j, (value, methods) in enumerate(lines.items()):
            ax.axhline(value, ls="--", lw=1, color=f"C{j + 1}", zorder=0)
            ax.annotate(", ".join(methods), (1.0, value), xycoords=("axes fraction", "data"),
                        xytext=(-4, 2), textcoords="offset points", ha="right", fontsize=7,
                        color=f"C{j + 1}")
        order = np.argsort(cost)
        front, best = [], np.inf
        for i in order:
            if err[i] < best:
                front.append(i)
                best = err[i]
        ax.plot(cost[front], err[front], "-", color="0.6", zorder=1, label="Pareto front")
        ax.scatter(cost, err, zorder=2, color="C0")
        # labels above their points; one that would sit on its cost-neighbour's goes below
        span_x = np.ptp(np.log(cost)) or 1.0
        span_y = np.ptp(np.log(err)) or 1.0
        below = set()
        for a, b in zip(order[:-1], order[1:]):
            if (a not in below and abs(np.log(cost[b] / cost[a])) < 0.15 * span_x
                    and abs(np.log(err[b] / err[a])) < 0.08 * span_y):
                below.add(b)
        for k, (r, x, y) in enumerate(zip(rows, cost, err)):
            ax.annotate(r["preset"], (x, y), textcoords="offset points", fontsize=8,
                        xytext=(5, -11) if k in below else (5, 4))
        ax.set_xlabel("cost (µs/atom/step)")
        ax.set_ylabel(label)
        shown = np.concatenate([err, [v[col] for v in (references or {}).values()]])
        for values, set_scale, axis, set_ticks in ((cost, ax.set_xscale, ax.xaxis, ax.set_xticks),
                                                   (shown, ax.set_yscale, ax.yaxis, ax.set_yticks)):
            if values.max() > 5 * values.min():       # log only when values span a lot
                set_scale("log")
                axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
                axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
                set_ticks(_nice_ticks(values))
        ax.margins(0.15)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle("snnp ladder: accuracy against cost")
    fig.tight_layout()
    from .plotting import _savefig
    for ext in ("png", "svg"):
        _savefig(fig, os.path.join(out, f"pareto.{ext}"))
    plt.close(fig)


def _nice_ticks(values):
    """A few round tick values spanning the data on a log axis."""
    lo, hi = np.min(values), np.max(values)
    ticks = []
    for decade in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1):
        for m in (1, 2, 5):
            t = m * 10.0 ** decade
            if lo / 1.6 <= t <= hi * 1.6:
                ticks.append(t)
    return ticks or [lo, hi]
