"""Rebuild the models zoo: fit every ladder preset on the mlearn training sets of Li, Mo and Si,
score each on the matching test set, time it, and write ``<El>/<preset>.json`` plus the table in
``models_zoo/README.md``.

    python models_zoo/build_zoo.py [--elements Li Mo Si] [--presets ...] [--max-iter 1500]
                                   [--data-dir ../shared/data/mlearn]

Each fit runs once, on the machine's cores, with the options recorded in the model file's
provenance (training-data hash, loss, optimiser settings).  The published accuracies it is
compared with are in docs/accuracy.md.
"""
import argparse
import json
import os
import sys
import time

import snnp
from snnp.ladder import _timing_structure, time_model

HERE = os.path.dirname(os.path.abspath(__file__))
LOSS = {"energy": 1.0, "forces": 0.002, "stress": 1e-4}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--elements", nargs="+", default=["Li", "Mo", "Si"])
    p.add_argument("--presets", nargs="+", default=list(snnp.models.LADDER))
    p.add_argument("--max-iter", type=int, default=1500)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--data-dir", default=None, help="folder with <El>/training.json, test.json")
    args = p.parse_args()
    table = []
    for el in args.elements:
        train, test = snnp.datasets.mlearn(el, "both", cache_dir=args.data_dir)
        fit_set, val = train.split(0.1, seed=0)
        timing = _timing_structure(test, 2000)
        os.makedirs(os.path.join(HERE, el), exist_ok=True)
        for name in args.presets:
            model = snnp.presets([el], cutoff=args.cutoff)[name]
            start = time.time()
            model.fit(fit_set, val, loss=snnp.Loss(**LOSS), max_iter=args.max_iter)
            err = model.score(test)
            row = {"element": el, "preset": name, "class": type(model).__name__,
                   "n_params": model.n_params, "fit_minutes": (time.time() - start) / 60,
                   "energy_rmse_meV_per_atom": err["energy_meV_per_atom"]["rmse"],
                   "force_rmse_eV_per_A": err["forces_eV_per_A"]["rmse"],
                   "us_per_atom_step": time_model(model, timing)}
            model.save(os.path.join(HERE, el, f"{name}.json"),
                       provenance={"zoo": row, "test_data_sha256": test.sha256()})
            table.append(row)
            print(json.dumps(row), flush=True)
    with open(os.path.join(HERE, "zoo.json"), "w") as fh:
        json.dump(table, fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
