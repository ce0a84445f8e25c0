"""One filter bank shared by Li, Mo and Si against a separate bank per element.

Fits the same preset (default snnp_medium) to each element's mlearn training set twice: once on
its own, once with the radial and angular filters tied across the three elements
(``snnp.training.fit_shared``: one bank, one network, pair term and e0 per element).  Writes a
Markdown table of test errors both ways and a JSON record.

    python scripts/shared_filters.py [--preset snnp_medium] [--max-iter 1000]
        [--data-dir ../shared/data/mlearn] [--out benchmarks/results/shared_filters.json]
"""
import argparse
import json
import os
import time

import snnp
from snnp.training import fit_shared

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--elements", nargs="+", default=["Li", "Mo", "Si"])
    p.add_argument("--preset", default="snnp_medium")
    p.add_argument("--max-iter", type=int, default=1000)
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
    for el, (train, test) in data.items():
        model = snnp.presets([el], cutoff=args.cutoff)[args.preset]
        model.fit(train, loss=loss, max_iter=args.max_iter, log=False)
        rows.append(("separate", el, model.score(test)))
    models = [snnp.presets([el], cutoff=args.cutoff)[args.preset] for el in data]
    fit_shared(models, [d[0] for d in data.values()], loss=loss, max_iter=args.max_iter, log=False)
    for model, (el, (train, test)) in zip(models, data.items()):
        rows.append(("shared", el, model.score(test)))
    lines = ["| bank | " + " | ".join(data) + " |", "|---|" + "---|" * len(data)]
    for bank in ("separate", "shared"):
        cells = [f"{e['energy_meV_per_atom']['rmse']:.3g} / {e['forces_eV_per_A']['rmse']:.3g}"
                 for b, _, e in rows if b == bank]
        lines.append(f"| {bank} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(f"test energy RMSE (meV/atom) / force RMSE (eV/A), {args.preset}, "
          f"{args.max_iter} iterations:\n{table}")
    with open(args.out, "w") as fh:
        json.dump({"preset": args.preset, "max_iter": args.max_iter, "cutoff": args.cutoff,
                   "limit": args.limit, "seconds": time.time() - start, "table": table,
                   "rows": [{"bank": b, "element": el, "errors": e} for b, el, e in rows]}, fh,
                  indent=1)


if __name__ == "__main__":
    main()
