"""Training cost: time per full-batch gradient (one L-BFGS epoch), structures per second, and
peak memory, for every ladder preset on the mlearn training sets.

Each (element, preset) runs in a fresh subprocess so its peak resident memory (ru_maxrss) is
its own: reading the data, building neighbour lists, and the fixed number of loss-and-gradient
evaluations over the whole training set (energy, force and stress terms on).  The issue's
memory goal is <= 2 GB on the full Si training set.

Results: a table on stdout and benchmarks/results/training_cost.json.

    python benchmarks/bench_training.py                 # Mo and Si, all presets (~3 min)
    python benchmarks/bench_training.py --elements Si --presets snnp_medium --repeats 3
    python benchmarks/bench_training.py --compare-blas   # also with NumPy's own BLAS threads
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("SNNP_SHARED_DATA", os.path.join(HERE, "..", "..", "shared", "data"))


def worker(element, preset, repeats, threads, blas="one"):
    """``blas``: "one" limits NumPy's BLAS to one thread, as ``fit`` does; "default" leaves it
    alone (to measure what that limit is worth)."""
    import snnp
    from snnp.training import Batch, initialise_embedding_inputs, loss_and_gradient
    snnp.set_num_threads(threads)
    if blas == "one":
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1, user_api="blas")
    t0 = time.perf_counter()
    data = snnp.Dataset.from_mlearn(os.path.join(DATA, "mlearn", element, "training.json"))
    model = snnp.presets([element], cutoff=5.0)[preset]
    batch = Batch(data.structures, model)
    initialise_embedding_inputs(model, batch)
    setup = time.perf_counter() - t0
    loss = snnp.Loss(energy=1.0, forces=0.01, stress=1e-4)
    loss_and_gradient(model, batch, loss)          # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        loss_and_gradient(model, batch, loss)
        times.append(time.perf_counter() - t)
    best = min(times)
    return {"element": element, "preset": preset, "threads": threads, "blas": blas,
            "n_params": model.n_params, "structures": len(data), "atoms": data.n_atoms,
            "pairs_in_lists": int(len(batch.neighbors)),
            "setup_s": setup, "seconds_per_gradient": best, "all_seconds": times,
            "structures_per_s": len(data) / best, "atoms_per_s": data.n_atoms / best,
            "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    sys.path.insert(0, HERE)
    import benchinfo                  # here, so the worker processes stay lean
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", nargs="+", default=["Mo", "Si"])
    parser.add_argument("--presets", nargs="+",
                        default=["smeam", "smeam_nn", "snnp_small", "snnp_medium", "snnp_large"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare-blas", action="store_true",
                        help="also time each gradient with NumPy's default BLAS threads")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        element, preset, blas = args.worker
        print(json.dumps(worker(element, preset, args.repeats, args.threads, blas)))
        return
    if not os.path.exists(os.path.join(DATA, "mlearn")):
        sys.exit(f"mlearn data not found under {DATA} (set SNNP_SHARED_DATA)")
    rows = []
    for element in args.elements:
        for preset in args.presets:
            run = lambda blas: json.loads(subprocess.run(
                [sys.executable, __file__, "--worker", element, preset, blas,
                 "--repeats", str(args.repeats), "--threads", str(args.threads)],
                capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
            r = run("one")
            if args.compare_blas:
                d = run("default")
                r["seconds_per_gradient_default_blas"] = d["seconds_per_gradient"]
                r["default_blas_over_one"] = d["seconds_per_gradient"] / r["seconds_per_gradient"]
            rows.append(r)
            print(f"{element:3s} {preset:12s} {r['n_params']:6d} params  "
                  f"{r['seconds_per_gradient']:7.3f} s/gradient  {r['structures_per_s']:7.1f} "
                  f"structures/s  {r['atoms_per_s']:9.0f} atoms/s  peak {r['peak_rss_MB']:6.0f} MB"
                  + (f"  default BLAS threads {r['default_blas_over_one']:.2f}x slower"
                     if args.compare_blas else ""), flush=True)
    si = [r["peak_rss_MB"] for r in rows if r["element"] == "Si"]
    doc = {"benchmark": "training cost per full-batch loss-and-gradient (mlearn training sets)",
           "command": benchinfo.command(), "date": benchinfo.now(),
           "machine": benchinfo.machine(),
           "settings": {"cutoff_A": 5.0, "threads": args.threads, "repeats": args.repeats,
                        "loss": "energy 1, forces 0.01, stress 1e-4 (all terms on)",
                        "blas": "one thread, as fit() runs it (threadpoolctl)",
                        "statistic": "fastest repeat"},
           "goal": {"peak_memory_Si_MB_max": 2048,
                    "measured_Si_MB": max(si) if si else None,
                    "met": bool(si) and max(si) <= 2048},
           "results": rows}
    benchinfo.save("training_cost.json", doc)
    print("saved benchmarks/results/training_cost.json")


if __name__ == "__main__":
    main()
