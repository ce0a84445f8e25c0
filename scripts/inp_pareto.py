"""The InP Pareto plot: test error against MD cost for SNAP and every snnp rung.

    python scripts/inp_pareto.py [--out docs/figures/inp_pareto.png]

Reads what the measurements wrote: ``benchmarks/results/inp_snap.json`` (SNAP's test errors,
``scripts/inp_snap.py``), ``benchmarks/results/inp_cost.json`` (LAMMPS cost per atom-step of
SNAP and of each snnp model in one run, ``benchmarks/bench_inp.py``) and the InP rows of
``models_zoo/zoo.json`` (the zoo models' test errors).  Two panels, energy and force RMSE
against cost on log axes; the cost is the LAMMPS loop time (1 rank, 1 thread, 4096 atoms).
"""
import argparse
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load():
    with open(os.path.join(ROOT, "benchmarks", "results", "inp_snap.json")) as fh:
        snap = json.load(fh)["test"]
    with open(os.path.join(ROOT, "benchmarks", "results", "inp_cost.json")) as fh:
        cost = json.load(fh)
    with open(os.path.join(ROOT, "models_zoo", "zoo.json")) as fh:
        rows = {r["preset"]: r for r in json.load(fh)["rows"] if r["element"] == "InP"}
    points = [("SNAP", cost["snap_us_per_atom_step"], snap["energy_meV_per_atom"]["rmse"],
               snap["forces_eV_per_A"]["rmse"])]
    for r in cost["results"]:
        zoo = rows.get(r["model"])
        if zoo is None:
            raise SystemExit(f"inp_cost.json times {r['model']!r}, which the zoo has no InP "
                             "row for: rerun benchmarks/bench_inp.py on the zoo's models")
        points.append((r["model"], r["plugin_us_per_atom_step"],
                       zoo["energy_rmse_meV_per_atom"], zoo["force_rmse_eV_per_A"]))
    return points


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "figures", "inp_pareto.png"))
    args = p.parse_args()
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points = load()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, k, label in ((axes[0], 2, "test energy RMSE (meV/atom)"),
                         (axes[1], 3, "test force RMSE (eV/Å)")):
        snnp_pts = sorted((q for q in points if q[0] != "SNAP"), key=lambda q: q[1])
        ax.plot([q[1] for q in snnp_pts], [q[k] for q in snnp_pts], "o-", color="tab:blue",
                label="snnp ladder (pair_style snnp)")
        for name, c, *err in snnp_pts:
            ax.annotate(name, (c, err[k - 2]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
        snap = points[0]
        ax.plot([snap[1]], [snap[k]], "s", color="tab:red", ms=8, label="SNAP + ZBL")
        ax.annotate("SNAP", (snap[1], snap[k]), textcoords="offset points", xytext=(-12, 8),
                    fontsize=8)
        ax.set(xscale="log", yscale="log", xlabel="MD cost (µs/atom/step, LAMMPS, 1 thread)",
               ylabel=label)
        ax.grid(True, which="both", color="0.92")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.legend(fontsize=8, loc="center right")
    fig.suptitle("InP test part (286 structures): error against cost", fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
