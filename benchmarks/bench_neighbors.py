"""Full neighbour-list build time: snnp's cell list against vesin, matscipy and ASE.

For rattled Si diamond supercells (``bulk('Si', 'diamond', a=5.431, cubic=True).repeat(n)``,
``rattle(0.05, seed)``) and a cutoff of 5.5 A (rc 4.5 + 1.0 skin, what the snnp calculator
asks for), this times one build of a FULL list (i->j and j->i, with integer image shifts) by

* ``snnp.neighbor_list`` on 1 and 2 threads (``snnp.set_num_threads``; CSR output),
* ``vesin.NeighborList(full_list=True, n_threads=1|2).compute(..., "ijS")`` (pair list),
* the same with ``sorted=True`` plus the offsets array, i.e. the CSR form snnp's kernels use,
* ``matscipy.neighbours.neighbour_list("ijS", atoms, cutoff)`` (single-threaded C),
* ``ase.neighborlist.neighbor_list("ijS", ...)`` (numpy; only up to ``--ase-max-atoms``).

Each method gets one warm-up call, then the best (and median) of at least ``--repeats`` timed
calls, more for fast builds until ``--min-time`` seconds have been timed.
The lists are then checked against snnp's: the same number of pairs and the same set of
(i, j, shift) triples after sorting.  A table is printed and everything, with the machine and
the command line, goes to ``benchmarks/results/neighbors.json`` (``--quick``: a small smoke
run written to ``neighbors_quick.json``).

    python benchmarks/bench_neighbors.py            # 4 096 and 97 336 atoms
    python benchmarks/bench_neighbors.py --quick    # 512 and 1 728 atoms, a few seconds
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchinfo  # noqa: E402
DEFAULT_OUTPUT = os.path.join(HERE, "results", "neighbors.json")
QUICK_OUTPUT = os.path.join(HERE, "results", "neighbors_quick.json")

CUTOFF = 5.5          # rc 4.5 + 1.0 skin
RATTLE = 0.05         # Angstrom
LATTICE = 5.431       # Si diamond, Angstrom
REFERENCE = "snnp 1t"


def _version(mod):
    try:
        module = __import__(mod)
        return getattr(module, "__version__", "unknown")
    except Exception as exc:              # missing or broken peer: report and carry on
        return f"unavailable ({type(exc).__name__}: {exc})"


def machine_info():
    return benchinfo.machine(vesin=_version("vesin"), matscipy=_version("matscipy"),
                             ase=_version("ase"))


def make_system(n, seed):
    from ase.build import bulk
    atoms = bulk("Si", "diamond", a=LATTICE, cubic=True).repeat(n)
    atoms.rattle(RATTLE, seed=seed)
    return atoms


# ---- the methods: each returns (i, j, shifts) as arrays, in the tool's own order ----------

def _snnp(threads):
    import snnp

    def build(atoms):
        snnp.set_num_threads(threads)
        return snnp.neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, CUTOFF)

    def triples(out, natoms):
        offsets, j, s = out
        return np.repeat(np.arange(natoms), np.diff(offsets)), j, s

    return build, triples


def _vesin(threads, csr):
    from vesin import NeighborList
    calc = NeighborList(cutoff=CUTOFF, full_list=True, sorted=csr, n_threads=threads)

    def build(atoms):
        i, j, s = calc.compute(atoms.positions, atoms.cell.array,
                               [bool(p) for p in atoms.pbc], quantities="ijS")
        if csr:                            # the offsets snnp's kernels index with
            offsets = np.zeros(len(atoms) + 1, dtype=np.int64)
            np.cumsum(np.bincount(i, minlength=len(atoms)), out=offsets[1:])
            return offsets, i, j, s
        return i, j, s

    def triples(out, natoms):
        return out[-3:]

    return build, triples


def _matscipy():
    from matscipy.neighbours import neighbour_list

    def build(atoms):
        return neighbour_list("ijS", atoms, CUTOFF)

    return build, lambda out, natoms: out


def _ase():
    from ase.neighborlist import neighbor_list

    def build(atoms):
        return neighbor_list("ijS", atoms, CUTOFF)

    return build, lambda out, natoms: out


def methods(natoms, ase_max_atoms):
    """(name, factory) in the order they are timed; the reference comes first."""
    out = [("snnp 1t", lambda: _snnp(1)), ("snnp 2t", lambda: _snnp(2)),
           ("vesin 1t", lambda: _vesin(1, False)), ("vesin 2t", lambda: _vesin(2, False)),
           ("vesin 1t CSR", lambda: _vesin(1, True)), ("vesin 2t CSR", lambda: _vesin(2, True)),
           ("matscipy", _matscipy)]
    if natoms <= ase_max_atoms:
        out.append(("ase", _ase))
    return out


# ---- comparison ---------------------------------------------------------------------------

def canonical(i, j, s, natoms):
    """The (i, j, shift) triples as one sorted int64 key each (lexsort when that would overflow)."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64).reshape(-1, 3)
    if len(i) == 0:
        return np.zeros(0, np.int64)
    smax = int(np.abs(s).max())
    base = 2 * smax + 1
    if float(natoms) ** 2 * base ** 3 < 2.0 ** 62:
        key = (i * natoms + j) * base ** 3
        key += ((s[:, 0] + smax) * base + (s[:, 1] + smax)) * base + (s[:, 2] + smax)
        return np.sort(key)
    rows = np.column_stack([i, j, s])
    return rows[np.lexsort(rows.T[::-1])]


def compare(ref, other):
    same = ref.shape == other.shape and np.array_equal(ref, other)
    out = {"same_pairs_count": int(len(ref)) == int(len(other)), "same_triples": bool(same)}
    if not same and ref.ndim == 1 and other.ndim == 1:
        out["only_in_snnp"] = int(np.setdiff1d(ref, other, assume_unique=False).size)
        out["only_in_other"] = int(np.setdiff1d(other, ref, assume_unique=False).size)
    return out


# ---- timing -------------------------------------------------------------------------------

def time_method(build, atoms, repeats, min_time=0.0, max_repeats=500):
    """One warm-up call, then at least ``repeats`` timed calls, and more (up to
    ``max_repeats``) until ``min_time`` seconds have been timed; returns the last output
    and the list of times."""
    out = build(atoms)                     # warm-up (imports, allocations, thread pools)
    times = []
    while len(times) < repeats or (sum(times) < min_time and len(times) < max_repeats):
        del out
        t0 = time.perf_counter()
        out = build(atoms)
        times.append(time.perf_counter() - t0)
    return out, times


def run_size(n, args):
    atoms = make_system(n, args.seed)
    natoms = len(atoms)
    rows = {}
    ref_key = None
    check_triples = natoms <= args.check_max_atoms
    for name, factory in methods(natoms, args.ase_max_atoms):
        try:
            build, to_triples = factory()
            out, times = time_method(build, atoms, args.repeats, args.min_time)
        except Exception as exc:             # a peer that is missing or fails: record, go on
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  {name}: failed: {exc}", file=sys.stderr)
            continue
        i, j, s = to_triples(out, natoms)
        row = {"seconds": min(times), "seconds_median": statistics.median(times),
               "repeats": len(times), "us_per_atom": min(times) * 1e6 / natoms,
               "pairs": int(len(j))}
        if check_triples:
            key = canonical(i, j, s, natoms)
            if name == REFERENCE:
                ref_key = key
                # sanity: every snnp pair within the cutoff
                d = np.linalg.norm(atoms.positions[j] - atoms.positions[i]
                                   + np.asarray(s) @ atoms.cell.array, axis=1)
                row["all_within_cutoff"] = bool(np.all(d < CUTOFF))
            elif ref_key is not None:
                row["agreement_with_snnp"] = compare(ref_key, key)
        elif name != REFERENCE and REFERENCE in rows and "pairs" in rows[REFERENCE]:
            row["agreement_with_snnp"] = {
                "same_pairs_count": row["pairs"] == rows[REFERENCE]["pairs"],
                "same_triples": None}
        rows[name] = row
        del out, i, j, s
    ref = rows.get(REFERENCE, {}).get("seconds")
    for row in rows.values():
        if "seconds" in row and ref:
            row["ratio_to_snnp_1t"] = row["seconds"] / ref
    return {"n_repeat": n, "natoms": natoms, "cutoff": CUTOFF,
            "triples_checked": check_triples, "methods": rows}


def print_table(results, file=sys.stdout):
    header = (f"{'atoms':>7} {'method':<13} {'best s':>9} {'median s':>9} {'us/atom':>8} "
              f"{'pairs':>9} {'x snnp1t':>8}  agrees")
    print(header, file=file)
    print("-" * len(header), file=file)
    for res in results:
        for name, row in res["methods"].items():
            if "error" in row:
                print(f"{res['natoms']:>7} {name:<13} error: {row['error']}", file=file)
                continue
            agree = row.get("agreement_with_snnp")
            if name == REFERENCE:
                note = "reference" + ("" if row.get("all_within_cutoff", True)
                                      else " (PAIRS BEYOND CUTOFF)")
            elif agree is None:
                note = "-"
            elif agree["same_triples"] is None:
                note = "count " + ("yes" if agree["same_pairs_count"] else "NO")
            else:
                note = "yes" if agree["same_triples"] else (
                    f"NO ({agree.get('only_in_snnp', '?')} only snnp, "
                    f"{agree.get('only_in_other', '?')} only here)")
            print(f"{res['natoms']:>7} {name:<13} {row['seconds']:>9.4f} "
                  f"{row['seconds_median']:>9.4f} {row['us_per_atom']:>8.3f} {row['pairs']:>9d} "
                  f"{row.get('ratio_to_snnp_1t', float('nan')):>8.2f}  {note}", file=file)
        print(file=file)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small smoke run: n=4 and 6 (512, 1728 atoms), 2 repeats")
    p.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                   help="supercell repeats of the 8-atom cubic cell (default: 8 23, "
                        "i.e. 4096 and 97336 atoms)")
    p.add_argument("--repeats", type=int, default=None,
                   help="at least this many timed calls per method after one warm-up "
                        "(default 5; quick: 2)")
    p.add_argument("--min-time", type=float, default=None,
                   help="...and more calls (up to 500) until this many seconds are timed, "
                        "so fast builds are best of many (default 0.5; quick: 0.05)")
    p.add_argument("--seed", type=int, default=42, help="rattle seed (default 42)")
    p.add_argument("--ase-max-atoms", type=int, default=5000,
                   help="time ASE only up to this many atoms (default 5000)")
    p.add_argument("--check-max-atoms", type=int, default=200_000,
                   help="compare full (i, j, shift) sets up to this many atoms; above it "
                        "only pair counts (default 200000)")
    p.add_argument("--output", default=None,
                   help=f"JSON file (default {os.path.relpath(DEFAULT_OUTPUT)}; quick: "
                        f"{os.path.relpath(QUICK_OUTPUT)})")
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = [4, 6] if args.quick else [8, 23]
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.min_time is None:
        args.min_time = 0.05 if args.quick else 0.5
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)

    import snnp
    threads_before = snnp.get_num_threads()
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load_start and load_start[0] > 0.5:
        print(f"warning: load average {load_start[0]:.2f} before starting; other processes "
              f"on this machine will disturb the timings", file=sys.stderr)
    t_start = time.perf_counter()
    results = []
    try:
        for n in args.sizes:
            print(f"Si diamond {n}x{n}x{n} ({8 * n ** 3} atoms), cutoff {CUTOFF} A ...",
                  file=sys.stderr, flush=True)
            results.append(run_size(n, args))
    finally:
        snnp.set_num_threads(threads_before)
    total = time.perf_counter() - t_start

    print(f"Full neighbour list, Si diamond rattled {RATTLE} A, cutoff {CUTOFF} A; "
          f"best of >= {args.repeats} calls (>= {args.min_time} s timed) after 1 warm-up;\n x snnp1t = time / snnp 1-thread time")
    print_table(results)
    all_agree = all(r.get("agreement_with_snnp", {}).get("same_pairs_count", True)
                    and r.get("agreement_with_snnp", {}).get("same_triples") is not False
                    and r.get("all_within_cutoff", True)
                    for res in results for r in res["methods"].values())
    print(f"all methods agree with snnp: {all_agree}    (benchmark took {total:.1f} s)")

    doc = {
        "benchmark": "full neighbour-list build",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        "machine": machine_info(),
        "load_average_1_5_15min": {"start": load_start,
                                   "end": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "settings": {"system": f"bulk('Si','diamond',a={LATTICE},cubic=True).repeat(n)",
                     "rattle_A": RATTLE, "seed": args.seed, "cutoff_A": CUTOFF,
                     "min_repeats": args.repeats, "min_timed_seconds": args.min_time,
                     "warmup": 1, "timing": "best of repeats (seconds), median also given",
                     "ratio": "seconds / seconds of snnp 1 thread",
                     "quick": args.quick},
        "all_agree": all_agree,
        "total_seconds": total,
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"wrote {output}")
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
