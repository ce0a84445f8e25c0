"""One filter bank shared by Li, Mo and Si against a separate bank per element.

Fits the same preset to each element's mlearn training set three ways, with the same number of
iterations each:
- separate: each element on its own;
- shared: the radial and angular filters tied across all elements (``snnp.training.fit_shared``:
  one bank; network, pair term and e0 per element);
- transfer: for each element, a bank fitted jointly to the *other* elements, frozen, and only
  that element's network, pair term and e0 fitted (``share_filters`` + ``freeze``).
Writes a Markdown table of test errors and a JSON record with the machine and the command.

    python scripts/shared_filters.py [--preset snnp_small] [--max-iter 300]
        [--data-dir ../shared/data/mlearn] [--out benchmarks/results/shared_filters.json]
"""
import argparse
import json
import os
import platform
import sys
import time

import snnp
from snnp.io.atomic import atomic_write
from snnp.training import fit_shared, share_filters

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--elements", nargs="+", default=["Li", "Mo", "Si"])
    p.add_argument("--preset", default="snnp_small")
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data", "mlearn"))
    p.add_argument("--limit", type=int, default=None, help="use only the first N structures (smoke runs)")
    p.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results", "shared_filters.json"))
    args = p.parse_args()
    loss = snnp.Loss(energy=1.0, forces=0.002, stress=1e-4)
    data = {}
    for el in args.elements:
        train, test = snnp.datasets.mlearn(el, "both", cache_dir=args.data_dir)
        if args.limit:
            train, test = train[:args.limit], test[:args.limit]
        data[el] = (train, test)
    rows = []
    start = time.time()
    make = lambda el: snnp.presets([el], cutoff=args.cutoff)[args.preset]
    for el, (train, test) in data.items():
        model = make(el)
        model.fit(train, loss=loss, max_iter=args.max_iter, log=False)
        rows.append(("separate", el, model.score(test)))
        print(f"separate {el}: {_line(rows[-1][2])}", flush=True)
    models = [make(el) for el in data]
    fit_shared(models, [d[0] for d in data.values()], loss=loss, max_iter=args.max_iter, log=False)
    for model, (el, (train, test)) in zip(models, data.items()):
        rows.append(("shared", el, model.score(test)))
        print(f"shared {el}: {_line(rows[-1][2])}", flush=True)
    for el, (train, test) in data.items():
        others = [e for e in data if e != el]
        bank = [make(e) for e in others]
        fit_shared(bank, [data[e][0] for e in others], loss=loss, max_iter=args.max_iter, log=False)
        model = share_filters(bank[0], make(el))
        model.fit(train, loss=loss, max_iter=args.max_iter, freeze=("radial", "angular"), log=False)
        rows.append(("transfer", el, model.score(test)))
        print(f"transfer {el} (bank from {'+'.join(others)}): {_line(rows[-1][2])}", flush=True)
    lines = ["| bank | " + " | ".join(data) + " |", "|---|" + "---|" * len(data)]
    for bank in ("separate", "shared", "transfer"):
        cells = [f"{e['energy_meV_per_atom']['rmse']:.3g} / {e['forces_eV_per_A']['rmse']:.3g}"
                 for b, _, e in rows if b == bank]
        lines.append(f"| {bank} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(f"test energy RMSE (meV/atom) / force RMSE (eV/A), {args.preset}, "
          f"{args.max_iter} iterations:\n{table}")
    with atomic_write(args.out) as fh:
        json.dump({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                               "threads": snnp.get_num_threads()},
                   "command": " ".join(["python", "scripts/shared_filters.py"] + sys.argv[1:]),
                   "preset": args.preset, "max_iter": args.max_iter, "cutoff": args.cutoff,
                   "limit": args.limit, "seconds": time.time() - start, "table": table,
                   "rows": [{"bank": b, "element": el, "errors": e} for b, el, e in rows]}, fh,
                  indent=1)


def _line(err):
    return (f"E {err['energy_meV_per_atom']['rmse']:.3g} meV/atom, "
            f"F {err['forces_eV_per_A']['rmse']:.3g} eV/A")


if __name__ == "__main__":
    main()
