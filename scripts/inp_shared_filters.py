"""InP with filters shared across In and P, beside the zoo's unshared InP models.

    snnp ladder --data inp --shared-filters --max-iter 400 --threads 1 --resumable \
        --presets smeam smeam_nn snnp_small snnp_medium --out inp-shared
    python scripts/inp_shared_filters.py inp-shared

The ladder fits every preset with one filter bank for both neighbour elements (rho_k, f_k, g_k
the same whether the neighbour is In or P; networks, pair terms, the core and e0 per species)
by the zoo's recipe (rung 0 400 iterations, the others by snnp.ladder.EFFORT, climbing from
rung 0).  This script scores each model it finds in that folder and the zoo's InP model of the
same preset on the InP test part, overall and per group, and writes
``benchmarks/results/inp_shared_filters.json`` with the machine and the command.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

import benchinfo  # noqa: E402

import snnp  # noqa: E402
from snnp.cli import load_data  # noqa: E402


def _row(model, test):
    s = model.score(test)
    return {"n_params": model.n_params, "filter_params": model.filters.n_params,
            "shared": model.filters.shared,
            "energy_rmse_meV_per_atom": s["energy_meV_per_atom"]["rmse"],
            "force_rmse_eV_per_A": s["forces_eV_per_A"]["rmse"],
            "stress_rmse_GPa": s["stress_GPa"]["rmse"],
            "groups": {g: {"energy_rmse_meV_per_atom": v["energy_meV_per_atom"]["rmse"],
                           "force_rmse_eV_per_A": v["forces_eV_per_A"]["rmse"]}
                       for g, v in s.get("groups", {}).items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ladder_dir", help="the --out folder of the shared-filter ladder")
    args = p.parse_args()
    test = load_data("inp:test")
    rows = []
    for name in snnp.models.LADDER:
        path = os.path.join(args.ladder_dir, f"{name}.json")
        if not os.path.exists(path):
            continue
        shared, zoo = snnp.load(path), snnp.load(f"InP/{name}")
        if not shared.filters.shared:
            raise SystemExit(f"{path} has no shared filter bank: run snnp ladder --shared-filters")
        row = {"preset": name, "shared": _row(shared, test), "unshared_zoo": _row(zoo, test),
               "iterations": shared.provenance.get("fit", {}).get("max_iter")}
        rows.append(row)
        a, b = row["shared"], row["unshared_zoo"]
        print(f"{name:12s} shared {a['n_params']:5d} params  E {a['energy_rmse_meV_per_atom']:6.2f}"
              f"  F {a['force_rmse_eV_per_A']:.3f}  S {a['stress_rmse_GPa']:.2f}   |  unshared "
              f"{b['n_params']:5d}  E {b['energy_rmse_meV_per_atom']:6.2f}"
              f"  F {b['force_rmse_eV_per_A']:.3f}  S {b['stress_rmse_GPa']:.2f}", flush=True)
    if not rows:
        raise SystemExit(f"no preset model files in {args.ladder_dir}")
    path = benchinfo.save("inp_shared_filters.json",
                          {"command": benchinfo.command(), "date": benchinfo.now(),
                           "machine": benchinfo.machine(), "test_structures": len(test),
                           "rows": rows})
    print("written:", path)


if __name__ == "__main__":
    main()
