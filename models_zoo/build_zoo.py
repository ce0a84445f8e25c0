"""Rebuild the models zoo: scan the ladder on the mlearn training sets of Li, Mo and Si (and on
the InP DFT set's training part, ``--elements InP``), score every preset on the matching test
set, time them all in one run, and write
``<El>/<preset>.json``, ``ladders/<El>/`` (the scan's table and Pareto plot), ``zoo.json`` and
the table in ``models_zoo/README.md``.

    python models_zoo/build_zoo.py [--elements Li Mo Si] [--presets ...] [--max-iter 600]
                                   [--repulsion EL=W ...] [--cleavage EL=W ...]
                                   [--data-dir ../shared/data/mlearn]

It is ``snnp.ladder.scan`` per element: rung 0 first, the other presets climbing from it, each
fit run once and checkpointed under ``models_zoo/.build`` (run the script again after a kill and
it resumes).  Each model file records its training-data hash, loss and optimiser settings.
The published accuracies it is compared with are in docs/accuracy.md.
"""
import argparse
import json
import os
import platform
import sys
import time

import snnp
import snnp.cli
from snnp.io.atomic import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
LOSS = {"energy": 1.0, "forces": 0.002, "stress": 1e-4}
#: the test errors a zoo row holds (its "groups" beside them)
ERROR_KEYS = ("energy_rmse_meV_per_atom", "energy_mae_meV_per_atom", "force_rmse_eV_per_A",
              "force_mae_eV_per_A", "stress_rmse_GPa")
REFERENCE = dict(snnp.datasets.MLEARN_REFERENCE)    # Zuo et al. (2020) test RMSEs
#: systems that are not one mlearn element: their data and the peer they are compared with
SYSTEMS = {"InP": "inp"}
INP_SNAP = os.path.join(HERE, "..", "benchmarks", "results", "inp_snap.json")
if os.path.exists(INP_SNAP):                        # SNAP on the same test part, through LAMMPS
    with open(INP_SNAP) as _fh:
        _snap = json.load(_fh)["test"]
    REFERENCE["InP"] = {"SNAP": (_snap["energy_meV_per_atom"]["rmse"],
                                 _snap["forces_eV_per_A"]["rmse"])}
MARK_BEGIN, MARK_END = "<!-- zoo table begin -->", "<!-- zoo table end -->"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--elements", nargs="+", default=["Li", "Mo", "Si"])
    p.add_argument("--presets", nargs="+", default=list(snnp.models.LADDER))
    p.add_argument("--max-iter", type=int, default=600,
                   help="iterations for rung 0; the others scale it (snnp.ladder.EFFORT)")
    p.add_argument("--iterations", nargs="+", default=[], metavar="PRESET=N",
                   help="iterations for a preset instead of max_iter x EFFORT")
    p.add_argument("--prior", nargs="+", default=[], metavar="EL=W",
                   help="Loss(prior=W) for an element's climbed presets (towards its rung 0)")
    p.add_argument("--repulsion", nargs="+", default=[], metavar="EL=W",
                   help="Loss(repulsion=W) for an element's presets: the probes of snnp.probes "
                        "(energies rising at and below the data edge)")
    p.add_argument("--cleavage", nargs="+", default=[], metavar="EL=W",
                   help="Loss(cleavage=W) for an element's presets: the cleavage probes of "
                        "snnp.probes (a crystal pulled apart must rise in energy)")
    p.add_argument("--forces-weight", nargs="+", default=[], metavar="EL=W",
                   help=f"Loss(forces=W) for an element's fits and --extend (default "
                        f"{LOSS['forces']:g}; docs/training.md, 'Weighting energies against "
                        f"forces')")
    p.add_argument("--e0", nargs="+", default=[], metavar="EL=EV",
                   help="an element's isolated-atom energy (eV): its presets hold e0 there "
                        "instead of fitting it (fit(e0=...))")
    p.add_argument("--angular-cutoff", nargs="+", default=[], metavar="EL=A",
                   help="end an element's angular filters f_k at A (Angstrom), every preset's, "
                        "rung 0's included (presets(angular_cutoff=...))")
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    p.add_argument("--tables-only", action="store_true",
                   help="fit nothing: rewrite ladders/*/ and the README table from the saved rows")
    p.add_argument("--retime", action="store_true",
                   help="fit nothing: time the saved models of --elements again (on an idle "
                        "machine), then rewrite the tables")
    p.add_argument("--short-range", action="store_true",
                   help="fit nothing: give the saved models of --elements the ZBL core and "
                        "extrapolation grade from their training set (what a fit now attaches)")
    p.add_argument("--regrade", action="store_true",
                   help="fit nothing: give the saved models of --elements the extrapolation "
                        "grade a fit now attaches, from their training set (their errors do "
                        "not change)")
    p.add_argument("--extend", type=int, default=0, metavar="N",
                   help="fit the saved models of --elements and --presets N iterations more, "
                        "from where they are (fit(initialise=False)), with the element's "
                        "--repulsion, --forces-weight and --e0; their rows take the new errors "
                        "(test and validation), N more iterations, the extra fit time and the "
                        "loss; each model's provenance lists its extensions")
    p.add_argument("--grow", type=int, default=0, metavar="N",
                   help="replace the saved s-NNPs of --elements and --presets by the preset grown "
                        "from the element's saved rung below it (snnp.ladder.climbed: the "
                        "network embedded exactly where the depth matches) and fitted N "
                        "iterations with the element's --repulsion, --forces-weight and --e0; "
                        "the row records the climb and the fit time including the rung below's")
    p.add_argument("--residual", action="store_true",
                   help="with --grow: grow an s-NNP preset as a residual s-NNP (rung 0's "
                        "spline embedding U kept under the network, snnp.presets(residual="
                        "True)), starting with exactly the rung below's energies where it can")
    p.add_argument("--no-monotone", action="store_true",
                   help="--extend and --grow keep the checkpoint of lowest validation loss even "
                        "where another is within the rung below's validation errors (default: "
                        "prefer those, fit(no_worse_than=...))")
    p.add_argument("--rescore", action="store_true",
                   help="fit nothing: score the saved models of --elements on the test set and "
                        "on the scan's validation split (10%% of the training set, seed 0), "
                        "update their rows and list the rungs that do not improve on the one "
                        "below")
    args = p.parse_args()
    if args.residual and not args.grow:
        p.error("--residual grows a preset as a residual s-NNP: it needs --grow N")
    snnp.set_num_threads(args.threads)
    table = _load_table()
    losses = _losses(args.elements, _per_element(p, "--repulsion", args.repulsion),
                     _per_element(p, "--forces-weight", args.forces_weight),
                     _per_element(p, "--cleavage", args.cleavage))
    if args.extend or args.grow:
        _extend(table, args, losses, _per_element(p, "--e0", args.e0))
        return
    if args.rescore:
        _rescore(table, args.elements, args.data_dir)
        return
    if args.regrade:
        _regrade(args.elements, args.presets, args.data_dir)
        return
    if args.short_range:
        table = _attach_short_range(table, args.elements, args.presets, args.data_dir)
        with open(os.path.join(HERE, "zoo.json")) as fh:
            doc = json.load(fh)
        doc["rows"] = table
        doc["short_range"] = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
        with atomic_write(os.path.join(HERE, "zoo.json")) as fh:
            json.dump(doc, fh, indent=1)
        _write_readme(table)
        return
    if args.retime:
        _retime(table, args.elements, args.data_dir)
        args.tables_only = True
    prior, e0 = _per_element(p, "--prior", args.prior), _per_element(p, "--e0", args.e0)
    reach = _per_element(p, "--angular-cutoff", args.angular_cutoff)
    for el in [] if args.tables_only else args.elements:
        train, validation, test = _data(el, args.data_dir)
        build = os.path.join(HERE, ".build", el)
        start = time.time()
        rows = snnp.ladder.scan(train, test, presets=args.presets, cutoff=args.cutoff,
                                validation_set=validation, data=SYSTEMS.get(el, f"mlearn:{el}"),
                                loss=losses[el],
                                max_iter=args.max_iter, out=build,
                                iterations_override={k: int(v) for k, v in
                                                     (s.split("=") for s in args.iterations)},
                                checkpoint_dir=os.path.join(build, "checkpoints"),
                                references=REFERENCE.get(el),
                                prior=prior.get(el, 0.0), e0={el: e0[el]} if el in e0 else None,
                                angular_cutoff=reach.get(el))
        os.makedirs(os.path.join(HERE, el), exist_ok=True)
        ladder_dir = os.path.join(HERE, "ladders", el)
        os.makedirs(ladder_dir, exist_ok=True)
        _merge_ladder(build, ladder_dir, REFERENCE.get(el))
        for row in rows:
            model = snnp.load(os.path.join(build, f"{row['preset']}.json"))
            row = {"element": el, **row, "loss": _loss_record(losses[el])}
            model.save(os.path.join(HERE, el, f"{row['preset']}.json"),
                       provenance={**(model.provenance or {}), "zoo": row,
                                   "test_data_sha256": test.sha256()})
            table = [r for r in table if (r["element"], r["preset"]) != (el, row["preset"])] + [row]
        print(f"{el}: {time.time() - start:.0f} s", flush=True)
    order = {n: k for k, n in enumerate(snnp.models.LADDER)}
    table.sort(key=lambda r: (r["element"], order.get(r["preset"], 99)))
    if args.tables_only:
        _write_tables(table)
        return
    with atomic_write(os.path.join(HERE, "zoo.json")) as fh:
        json.dump({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                               "threads": snnp.get_num_threads()},
                   "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
                   "loss": LOSS, "rows": table}, fh, indent=1)
    _write_readme(table)


def _merge_ladder(build, ladder_dir, references):
    """The element's ladder table in ``ladder_dir`` with the rows of the presets just scanned
    (in ``build``) replacing theirs; the other presets' rows are kept, so a scan of some
    presets (``--presets smeam snnp_small``) updates the table instead of shrinking it.  Costs
    of rows from different runs are not comparable until ``--retime``."""
    with open(os.path.join(build, "ladder.json")) as fh:
        new = json.load(fh)
    path = os.path.join(ladder_dir, "ladder.json")
    rows = new["rows"]
    meta = dict(new["meta"])
    if os.path.exists(path):
        with open(path) as fh:
            old = json.load(fh)
        scanned = {r["preset"] for r in rows}
        kept = [r for r in old["rows"] if r["preset"] not in scanned]
        if kept:
            order = {n: k for k, n in enumerate(snnp.models.LADDER)}
            rows = sorted(rows + kept, key=lambda r: order.get(r["preset"], 99))
            meta["refitted"] = sorted(scanned, key=lambda n: order.get(n, 99))
            meta["kept_from"] = old.get("meta", {})
    snnp.ladder.write_outputs(rows, ladder_dir, meta, references=references)


def _data(system, data_dir):
    """(train, validation or None, test) of a zoo system: mlearn's training and test sets
    (validation split off the training set by the scan), or the InP split's three parts."""
    if system in SYSTEMS:
        return tuple(snnp.cli.load_data(f"{SYSTEMS[system]}:{part}")
                     for part in ("training", "validation", "test"))
    train, test = snnp.datasets.mlearn(system, "both", cache_dir=data_dir)
    return train, None, test


def _peers(system):
    """The methods a system's models are held against: qSNAP and UF3 (mlearn), or the one
    measured peer (InP: SNAP)."""
    ref = REFERENCE.get(system, {})
    names = [n for n in ("qSNAP", "UF3") if n in ref] or list(ref)[:1]
    return {n: ref[n] for n in names}


def _peer_cell(row):
    """'yes' when a row's test errors are at or below every peer's in energy and forces, 'no'
    when below none, else which; InP's names its peer."""
    peers = _peers(row["element"])
    beaten = [n for n, (e, f) in peers.items()
              if row["energy_rmse_meV_per_atom"] <= e and row["force_rmse_eV_per_A"] <= f]
    cell = "yes" if peers and len(beaten) == len(peers) else \
        ("no" if not beaten else "only " + ", ".join(beaten))
    return cell + ("" if "qSNAP" in peers or not peers else f" ({', '.join(peers)})")


def _per_element(parser, flag, items):
    """EL=VALUE items of a flag as {element: float}; a malformed one is a usage error."""
    try:
        return snnp.cli.element_values(flag, items, example="Si=0.01")
    except ValueError as exc:
        parser.error(str(exc))


def _retime(table, elements, data_dir):
    """Time every saved preset of each element again, in turn, on the scan's timing cell."""
    from snnp.ladder import _timing_structure, time_models
    for el in elements:
        rows = [r for r in table if r["element"] == el]
        test = _data(el, data_dir)[2]
        atoms = _timing_structure(test, 2000)
        models = [snnp.load(os.path.join(HERE, el, f"{r['preset']}.json")) for r in rows]
        costs = time_models(models, atoms)
        path = os.path.join(HERE, "ladders", el, "ladder.json")
        with open(path) as fh:
            saved = json.load(fh)
        for r, cost, model in zip(rows, costs, models):
            r["us_per_atom_step"], r["cost_vs_first"] = cost, cost / costs[0]
            model.save(os.path.join(HERE, el, f"{r['preset']}.json"),
                       provenance={**model.provenance, "zoo": r})
            for s in saved["rows"]:
                if s["preset"] == r["preset"]:
                    s["us_per_atom_step"], s["cost_vs_first"] = cost, cost / costs[0]
        saved["meta"]["retimed"] = {"threads": snnp.get_num_threads(), "atoms": len(atoms)}
        with atomic_write(path) as fh:
            json.dump(saved, fh, indent=1)
        print(el, " ".join(f"{r['preset']} {r['cost_vs_first']:.2f}" for r in rows), flush=True)
    with open(os.path.join(HERE, "zoo.json")) as fh:
        doc = json.load(fh)
    doc["rows"] = table
    doc["retimed"] = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    with atomic_write(os.path.join(HERE, "zoo.json")) as fh:
        json.dump(doc, fh, indent=1)


def _below(table, el, name):
    """The zoo row of the preset below ``name`` in the ladder for element ``el`` (or None)."""
    order = list(snnp.models.LADDER)
    rows = {r["preset"]: r for r in table if r["element"] == el}
    lower = [n for n in order[:order.index(name)] if n in rows]
    return rows[lower[-1]] if lower else None


def _extend(table, args, losses, e0):
    """Fit each saved model ``args.extend`` iterations more (or, with ``args.grow``, grow it
    afresh from the saved rung below and fit it ``args.grow`` iterations) on the split
    ``snnp.ladder.scan`` made (10% of the training set held out, seed 0), with the element's
    loss, keeping a checkpoint within the rung below's validation errors where one is (unless
    ``args.no_monotone``), and update its rows in zoo.json and in its element's ladder.json,
    then the tables."""
    command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    for el in args.elements:
        fit_set, val_set, test = _splits(el, args.data_dir)
        lad_path = os.path.join(HERE, "ladders", el, "ladder.json")
        with open(lad_path) as fh:
            ladder = json.load(fh)
        for name in args.presets:
            path = os.path.join(HERE, el, f"{name}.json")
            below = _below(table, el, name)
            limits = (None if args.no_monotone or below is None
                      else snnp.ladder.validation_limits(below))
            start = time.perf_counter()
            if args.grow:
                if below is None:
                    raise SystemExit(f"--grow: {el}/{name} has no rung below it in the zoo")
                small = snnp.load(os.path.join(HERE, el, f"{below['preset']}.json"))
                model = snnp.ladder.climbed(small, name, fit_set, residual=args.residual)
                before = {"grown_from": {"preset": below["preset"],
                                         "distil_misfit": getattr(model, "distil_misfit", None)}}
            else:
                model = snnp.load(path)
                before = dict(model.provenance)    # the original fit's record stays on top
            iterations = args.grow or args.extend
            model.fit(fit_set, val_set, loss=losses[el], max_iter=iterations, initialise=False,
                      e0={el: e0[el]} if el in e0 else None, core=None, log=False,
                      no_worse_than=limits)
            seconds = time.perf_counter() - start
            new = {**snnp.ladder.error_fields(model.score(test), model.score(val_set)),
                   **snnp.ladder.validation_structures(model, val_set)}
            within = model.provenance.get("no_worse_than_met")
            for row in [r for r in table if (r["element"], r["preset"]) == (el, name)] + \
                    [r for r in ladder["rows"] if r["preset"] == name]:
                if args.grow:
                    for key in ("before_extend", "extended"):
                        row.pop(key, None)
                    row.update(new, iterations=iterations, climbed_from=below["preset"],
                               fit_seconds=seconds + below["fit_seconds"],
                               n_params=model.n_params, residual=args.residual,
                               **{"class": type(model).__name__})
                else:
                    row.setdefault("before_extend", {k: row[k] for k in ERROR_KEYS})
                    row.update(new)
                    row["iterations"] += iterations
                    row["fit_seconds"] += seconds
                row["loss"] = _loss_record(losses[el])
                row["within_below"] = within
            if args.grow:
                row = next(r for r in table if (r["element"], r["preset"]) == (el, name))
                model.provenance = {**model.provenance, **before, "zoo": dict(row),
                                    "command": command, "test_data_sha256": test.sha256()}
            else:
                earlier = before.get("extended") or []
                model.provenance = {**before, "extended": (
                    [earlier] if isinstance(earlier, dict) else earlier) + [_extension_record(
                        model.provenance, iterations, seconds, command)]}
            model.save(path)
            how = f"grown from {below['preset']}" if args.grow else "more"
            print(f"{el}/{name}: {iterations} iterations {how} in {seconds:.0f} s"
                  f"{'' if limits is None else ', within the rung below: ' + str(within)}: test E "
                  f"{new['energy_rmse_meV_per_atom']:.3f} meV/atom, F "
                  f"{new['force_rmse_eV_per_A']:.4f} eV/A; validation E "
                  f"{new['validation_energy_rmse_meV_per_atom']:.3f}, F "
                  f"{new['validation_force_rmse_eV_per_A']:.4f}", flush=True)
        with atomic_write(lad_path) as fh:
            json.dump(ladder, fh, indent=1)
    _save_table(table)


def _rescore(table, elements, data_dir):
    """Score every saved model of ``elements`` on its test set and the scan's validation
    split; update the rows (zoo.json, ladder.json, the tables) and print, per element, the
    rungs whose validation error is not below the rung's beneath (snnp.ladder.not_improving)."""
    for el in elements:
        _, val_set, test = _splits(el, data_dir)
        lad_path = os.path.join(HERE, "ladders", el, "ladder.json")
        with open(lad_path) as fh:
            ladder = json.load(fh)
        rows = [r for r in table if r["element"] == el]
        for row in rows:
            model = snnp.load(os.path.join(HERE, el, f"{row['preset']}.json"))
            new = {**snnp.ladder.error_fields(model.score(test), model.score(val_set)),
                   **snnp.ladder.validation_structures(model, val_set)}
            for r in [row] + [r for r in ladder["rows"] if r["preset"] == row["preset"]]:
                r.update(new)
        with atomic_write(lad_path) as fh:
            json.dump(ladder, fh, indent=1)
        for line in snnp.ladder.not_improving(rows) or ["every rung improves on the one below"]:
            print(f"{el}: {line}", flush=True)
    _save_table(table)


def _splits(system, data_dir):
    """(fit set, validation set, test set) as the zoo's scan split them."""
    train, validation, test = _data(system, data_dir)
    if validation is None:
        train, validation = train.split(0.1, seed=0)
    return train, validation, test


def _losses(elements, repulsion, forces, cleavage=None):
    """Each element's training loss: the zoo's LOSS with its --repulsion, --forces-weight and
    --cleavage."""
    cleavage = cleavage or {}
    return {el: snnp.Loss(**{**LOSS, "forces": forces.get(el, LOSS["forces"])},
                          repulsion=repulsion.get(el, 0.0), cleavage=cleavage.get(el, 0.0))
            for el in elements}


def _loss_record(loss):
    """The loss weights a zoo row records."""
    out = {k: getattr(loss, k) for k in ("energy", "forces", "stress", "repulsion")}
    if loss.cleavage:
        out["cleavage"] = loss.cleavage
    return out


def _save_table(table):
    """zoo.json with ``table`` as its rows (the rest of it kept), then the tables."""
    with open(os.path.join(HERE, "zoo.json")) as fh:
        doc = json.load(fh)
    doc["rows"] = table
    with atomic_write(os.path.join(HERE, "zoo.json")) as fh:
        json.dump(doc, fh, indent=1)
    _write_tables(table)


def _extension_record(fit_provenance, iterations, seconds, command):
    """What a continuation adds to a model's provenance: its fit settings and learning curve."""
    return {"iterations": iterations, "seconds": seconds, "command": command,
            "fit": fit_provenance.get("fit"), "history": fit_provenance.get("history")}


def _write_tables(table):
    """Rewrite every element's ladders/<El>/ outputs from its ladder.json and the README's
    table from ``table``."""
    for el in sorted({r["element"] for r in table}):
        path = os.path.join(HERE, "ladders", el, "ladder.json")
        with open(path) as fh:
            saved = json.load(fh)
        snnp.ladder.write_outputs(saved["rows"], os.path.dirname(path), saved["meta"],
                                  references=REFERENCE.get(el))
    _write_readme(table)


def _regrade(elements, presets, data_dir):
    """Replace each saved model's extrapolation grade by the one ``fit`` now attaches
    (snnp.ExtrapolationGrade.from_data with its default centres), from the element's whole
    training set (mlearn) or training part (InP).  Nothing else in the model changes."""
    command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    for el in elements:
        train = _data(el, data_dir)[0]
        for name in presets:
            path = os.path.join(HERE, el, f"{name}.json")
            if not os.path.exists(path):
                continue
            model = snnp.load(path)
            model.extrapolation = snnp.ExtrapolationGrade.from_data(model, train)
            model.provenance = {**model.provenance, "extrapolation": {
                "n_centres": model.extrapolation.n_centres, "structures": len(train),
                "command": command}}
            model.save(path)
            print(f"{el}/{name}: grade with {model.extrapolation.n_centres} centres from "
                  f"{len(train)} structures", flush=True)


def _attach_short_range(table, elements, presets, data_dir):
    """Give saved models the short-range rule (snnp.ZBLCore.from_data on the whole training
    set, as snnp.ladder.scan chooses it) and the extrapolation grade (from the training set, as
    fit attaches it), score them again on the test set and return the table with their rows'
    errors (and each row's previous errors, under "before_short_range") updated.  The core and
    the clamp act only below each pair's shortest training distance, so no training pair sees
    them and nothing is refitted."""
    for el in elements:
        train, _, test = _data(el, data_dir)
        for name in presets:
            path = os.path.join(HERE, el, f"{name}.json")
            model = snnp.load(path)
            model.core = snnp.ZBLCore.from_data(model.species, train.structures,
                                                cutoff=model.cutoff)
            model.extrapolation = snnp.ExtrapolationGrade.from_data(model, train)
            err = model.score(test)
            for row in table:
                if (row["element"], row["preset"]) != (el, name):
                    continue
                row.setdefault("before_short_range", {k: row[k] for k in ERROR_KEYS})
                row.update({k: v for k, v in snnp.ladder.error_fields(err).items()
                           if v is not None})           # the validation errors stay
                row["core"] = str(model.core)
                model.provenance = {**model.provenance, "zoo": row,
                                    "short_range": {"core": model.core.to_dict(),
                                                    "command": "build_zoo.py --short-range"}}
            model.save(path)
            print(f"{el}/{name}: {model.core}, test E {err['energy_meV_per_atom']['rmse']:.3f} "
                  f"meV/atom, F {err['forces_eV_per_A']['rmse']:.4f} eV/A", flush=True)
    return table


def _load_table():
    path = os.path.join(HERE, "zoo.json")
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return json.load(fh)["rows"]


def _own_weight(row):
    """Whether a row's fit weighed forces otherwise than the zoo's LOSS."""
    return bool(row.get("loss")) and row["loss"]["forces"] != LOSS["forces"]


def _validation_cell(row):
    e, f = row.get("validation_energy_rmse_meV_per_atom"), row.get("validation_force_rmse_eV_per_A")
    return "-" if e is None else f"{e:.2f} / {f:.3f}"


def _write_readme(table):
    lines = [MARK_BEGIN, "",
             "| model | filters | MLP | params | E RMSE (meV/atom) | F RMSE (eV/Å) | σ RMSE (GPa) "
             "| validation E / F | cost (µs/atom/step) | cost × rung 0 | fit (min) | iterations "
             "| peer-level? |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(
            f"| `{r['element']}/{r['preset']}` | {r['filters']} | {r['mlp']} | {r['n_params']} "
            f"| {r['energy_rmse_meV_per_atom']:.2f} | {r['force_rmse_eV_per_A']:.3f} "
            f"| {r['stress_rmse_GPa']:.2f} | {_validation_cell(r)} "
            f"| {r['us_per_atom_step']:.2f} | {r['cost_vs_first']:.2f} "
            f"| {r['fit_seconds'] / 60:.1f} | {r['iterations']}"
            f"{', prior ' + format(r['prior'], 'g') if r.get('prior') else ''}"
            f"{', e0 ' + r['e0'] + ' eV' if r.get('e0') else ''}"
            f"{', f to ' + format(r['angular_cutoff'], 'g') + ' Å' if r.get('angular_cutoff') else ''}"
            f"{', force weight ' + format(r['loss']['forces'], 'g') if _own_weight(r) else ''}"
            f"{', cleavage probes' if r.get('loss', {}).get('cleavage') else ''}"
            f"{', residual (rung 0 U kept)' if r.get('residual') else ''} "
            f"| {_peer_cell(r)} |")
    lines += ["", "peer-level: test errors at or below the peers' on both energy and forces: "
              "Zuo's qSNAP and UF3 (fitted on the same training sets) for Li, Mo and Si (\"only "
              "X\": below that one, not the other); for InP the SNAP potential fitted to the whole InP "
              "set (its test part included), evaluated through LAMMPS on the same test part "
              "(scripts/inp_snap.py).  "
              "Test errors of the peers, energy meV/atom / force eV/Å (published by Zuo et al. "
              "for Li, Mo, Si, and UF3's from ../shared/data/README.md; measured here for "
              "InP): "
              + "; ".join(f"{el}: " + ", ".join(f"{m} {e:.3g} / {f:.3g}" for m, (e, f) in ref.items())
                          for el, ref in REFERENCE.items()) + ".",
              "", "validation: the RMSEs on the 10% of the training set each scan held out "
              "(seed 0; InP: its validation part), energy meV/atom / force eV/Å "
              "(`build_zoo.py --rescore`)."]
    worse = [f"{el}: {line}" for el in sorted({r["element"] for r in table})
             for line in snnp.ladder.not_improving([r for r in table if r["element"] == el])]
    if worse:
        lines += ["", "Rungs whose validation error is not below the rung's beneath:", ""]
        lines += [f"- {line}" for line in worse]
    lines += ["", MARK_END]
    path = os.path.join(HERE, "README.md")
    with open(path) as fh:
        text = fh.read()
    if MARK_BEGIN in text:
        text = text[:text.index(MARK_BEGIN)] + "\n".join(lines) + text[text.index(MARK_END) + len(MARK_END):]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    with atomic_write(path) as fh:
        fh.write(text)


if __name__ == "__main__":
    sys.exit(main())
