"""Looking at what a model learned: its filters, its embedding, and what each filter contributes.

    snnp.plotting.plot_filters(model, "out/filters.png")
    snnp.plotting.plot_embedding(model, dataset, "out/embedding.png")
    snnp.plotting.plot_contributions(model, dataset, "out/contributions.png")

or ``snnp plot MODEL --data DATA --out DIR``;

    snnp.plotting.plot_parity("eval-out/predictions.extxyz", "eval-out/parity.png")
    snnp.plotting.plot_learning(history, "fit-out/learning.png")    # snnp.fitlog's history

(``snnp eval MODEL --data DATA --out DIR`` draws parity.png).  Needs Matplotlib (the ``plot``
extra).
"""
import numpy as np


__all__ = ["plot_filters", "plot_embedding", "plot_contributions", "filter_contributions",
           "plot_short_range", "plot_parity", "parity_points", "plot_learning"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need Matplotlib: pip install 'snnp[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path, **savefig):
    """Save and release the figure from pyplot (the returned object stays inspectable);
    ``path`` may be an open binary file (then PNG unless ``format`` is given)."""
    import matplotlib.pyplot as plt
    if fig.get_layout_engine() is None:          # a figure made with layout="constrained"
        fig.tight_layout()                       # keeps it
    _savefig(fig, path, **savefig)
    plt.close(fig)


def _savefig(fig, path, **savefig):
    """``fig.savefig(path, dpi=130)``, an SVG without a date and with fixed element ids, so
    the same figure gives the same file; ``path`` may be an open binary file (then PNG unless
    ``format`` is given)."""
    import os
    import matplotlib
    if not isinstance(path, (str, os.PathLike)):
        savefig.setdefault("format", "png")
    if (savefig.get("format") or os.path.splitext(str(path))[1][1:]).lower() == "svg":
        savefig.setdefault("metadata", {"Date": None})
    with matplotlib.rc_context({"svg.hashsalt": "snnp"}):
        fig.savefig(path, dpi=130, **savefig)


def plot_filters(model, path):
    """Radial filters rho_k(r), radial parts f_k(r) and angular parts g_k(theta), per species.

    Returns the figure (saved to ``path``; curves keep distinct colours and labels
    such as rho_12 however many filters there are)."""
    plt = _pyplot()
    F = model.filters
    n = model.n_species
    cols = 3 if F.n_angular else 1
    fig, axes = plt.subplots(n, cols, figsize=(4.2 * cols, 3.0 * n), squeeze=False)
    for b, sp in enumerate(model.species):
        _radial_panel(axes[b, 0], F.rho[b], "\\rho", f"radial filters, neighbour {sp}")
        if F.n_angular:
            _radial_panel(axes[b, 1], F.f[b], "f", f"angular radial parts, neighbour {sp}")
            ax = axes[b, 2]
            key = (b, b)
            styles = _curve_styles(len(F.g[key]))
            for k, s in enumerate(F.g[key]):
                theta = np.linspace(0, 180, 300)
                ax.plot(theta, s(np.cos(np.radians(theta))), label=f"$g_{{{k + 1}}}$",
                        **styles[k])
            ax.set(title=f"angular parts g, pair {sp}-{sp}", xlabel="θ (degrees)",
                   ylabel="g(θ)")
            ax.axhline(0, color="0.7", lw=0.8)
            ax.legend(fontsize=7, ncol=2 if len(F.g[key]) > 8 else 1)
    _save(fig, path)
    return fig


def _curve_styles(n):
    """A distinct colour per curve (tab10 up to 10 curves, then tab20, then a continuous
    colormap), and the line style varied as well past 10 so no two curves look alike."""
    import matplotlib
    if n <= 10:
        colors = [f"C{k}" for k in range(n)]
    elif n <= 20:
        cmap = matplotlib.colormaps["tab20"]
        colors = [cmap(k) for k in range(n)]
    else:
        cmap = matplotlib.colormaps["turbo"]
        colors = [cmap(k / (n - 1)) for k in range(n)]
    dashes = ["-", "--", ":", "-."]
    return [{"color": colors[k], "linestyle": dashes[(k // 10) % 4] if n > 10 else "-"}
            for k in range(n)]


def _radial_panel(ax, bank, symbol, title, ylabel=None):
    styles = _curve_styles(len(bank))
    for k, s in enumerate(bank):
        r = np.linspace(s.x0, s.x1, 300)
        ax.plot(r, s(r), label=f"${symbol}_{{{k + 1}}}$", **styles[k])
    ax.set(title=title, xlabel="r (Å)", ylabel=ylabel or f"${symbol}(r)$")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.legend(fontsize=7, ncol=2 if len(bank) > 8 else 1)


def _descriptors(model, dataset):
    G, species = [], []
    for s in dataset:
        G.append(model.descriptors(s.atoms))
        species.append(model._atoms_species(s.atoms))
    return np.concatenate(G), np.concatenate(species)


def plot_embedding(model, dataset, path):
    """The embedding energy as each filter sweeps its range in the data, the others held at
    their mean (one panel per centre species)."""
    plt = _pyplot()
    G, species = _descriptors(model, dataset)
    names = _filter_names(model)
    fig, axes = plt.subplots(1, model.n_species, figsize=(5.0 * model.n_species, 3.6), squeeze=False)
    for a, sp in enumerate(model.species):
        rows = G[species == a]
        ax = axes[0, a]
        if len(rows) == 0:
            ax.set_title(f"centre {sp}: no atoms in the data")
            continue
        mean = rows.mean(axis=0)
        for k, name in enumerate(names):
            lo, hi = rows[:, k].min(), rows[:, k].max()
            t = np.linspace(0.0, 1.0, 60)
            sweep = np.tile(mean, (len(t), 1))
            sweep[:, k] = lo + t * (hi - lo)
            e, _ = model.embedding_energy(sweep, a)
            ax.plot(t, e - e[len(t) // 2], label=name)
        ax.set(title=f"embedding response, centre {sp}",
               xlabel="filter value (0 = data minimum, 1 = data maximum)",
               ylabel="ε change (eV)")
        ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def filter_contributions(model, dataset):
    """Per filter k and atom i, eps(G_i) - eps(G_i with filter k replaced by its mean): how much
    of each atom's energy hangs on that filter.  Returns (names, array (atoms, K), species)."""
    G, species = _descriptors(model, dataset)
    out = np.zeros_like(G)
    for a in range(model.n_species):
        rows = np.flatnonzero(species == a)
        if len(rows) == 0:
            continue
        mean = G[rows].mean(axis=0)
        base, _ = model.embedding_energy(G[rows], a)
        for k in range(G.shape[1]):
            ablated = G[rows].copy()
            ablated[:, k] = mean[k]
            out[rows, k] = base - model.embedding_energy(ablated, a)[0]
    return _filter_names(model), out, species


def plot_contributions(model, dataset, path):
    """Spread over atoms of each filter's contribution to the per-atom energy."""
    plt = _pyplot()
    names, contrib, species = filter_contributions(model, dataset)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(names), 3.6))
    ax.boxplot([1e3 * contrib[:, k] for k in range(len(names))], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set(ylabel="contribution to atomic energy (meV)",
           title="each filter's share of the atomic energies")
    _save(fig, path)


def _filter_names(model):
    return ([f"R{k + 1}" for k in range(model.n_radial)]
            + [f"A{k + 1}" for k in range(model.n_angular)])


def plot_short_range(model, path, r_min=0.3):
    """Energy along the paths of ``snnp.curves.short_range_report``: a dimer, a trimer and a
    pair inside the crystal pushed together from the nearest-neighbour distance to ``r_min``,
    the equation of state down to V/V0 = 0.4, and the crystal cleaved along (100), (110) and
    (111) with the halves pulled apart.  The core's r_in and r_out and the training data's
    shortest distance are marked.  One-element models."""
    from .curves import short_range_report
    plt = _pyplot()
    rep = short_range_report(model, r_min=r_min)
    fig, axes = plt.subplots(1, 5, figsize=(18.5, 3.4))
    titles = {"dimer": "dimer", "trimer": "trimer (third atom fixed)",
              "crystal_pair": "pair inside the crystal", "eos": "equation of state"}
    for ax, name in zip(axes, ("dimer", "trimer", "crystal_pair", "eos")):
        x, e = np.array(rep[name]["x"]), np.array(rep[name]["energy"])
        ref = e[-1]
        ax.plot(x, e - ref, color="C0")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(titles[name], fontsize=10)
        ax.set_xlabel("V/V0" if name == "eos" else "r (A)")
        ax.set_ylabel("E - E(end) (eV/atom)" if name == "eos" else "E - E(r_nn) (eV)")
        if name != "eos" and model.core is not None:
            r_in, r_out = model.core.radii[(0, 0)]
            r_c = r_out - model.core.clamp_width
            ax.axvspan(min(r_in, r_c), r_out, color="0.9",
                       label="core fades in, learned terms fade out")
            ax.axvline(r_out, color="0.5", lw=0.8, ls="--", label="shortest training pair")
        drop = rep[name]["inward_drop"]
        ax.text(0.97, 0.93, "rises all the way in" if drop == 0 else f"inward drop {drop:.3g} eV",
                transform=ax.transAxes, ha="right", va="top", fontsize=8)
    axes[0].legend(fontsize=7, loc="lower left")
    ax, notes = axes[4], []
    for k, plane in enumerate(("100", "110", "111")):
        c = rep["cleavage_" + plane]
        ax.plot(c["x"], c["energy"], color=f"C{k}", label=f"({plane})")
        if c["inward_drop"] > 0:
            notes.append(f"({plane}) falls {c['inward_drop']:.2g} J/m$^2$")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_title("crystal cleaved, halves pulled apart", fontsize=10)
    ax.set_xlabel("separation (A)")
    ax.set_ylabel("energy per new surface (J/m$^2$)")
    ax.text(0.97, 0.05, "\n".join(notes) or "rises all the way out", transform=ax.transAxes,
            ha="right", va="bottom", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{type(model).__name__} {'-'.join(model.species)}: where the data end",
                 fontsize=11)
    _save(fig, path)
    return rep


# -- evaluation and fits: parity plots and learning curves ----------------------------------

#: the parity panels: (label, unit of the axes, unit of the RMSE, factor from axis to RMSE unit)
_PARITY_PANELS = (("energy", "eV/atom", "meV/atom", 1000.0),
                  ("forces", "eV/Å", "eV/Å", 1.0),
                  ("stress", "GPa", "GPa", 1.0))


def parity_points(predictions, ref_prefix="REF_", model_prefix="snnp_"):
    """The points of a parity plot from ``predictions``: ASE Atoms (as ``snnp eval --out``
    writes them to predictions.extxyz, or a path to such a file) holding reference labels under
    ``REF_energy``, ``REF_forces``, ``REF_stress`` and the model's under ``snnp_energy``,
    ``snnp_forces``, ``snnp_stress`` (other prefixes: ``ref_prefix``, ``model_prefix``).

    Returns {"energy": (reference, model, groups), "forces": ..., "stress": ...}: energies per
    atom in eV/atom, every force component in eV/Å, every stress component in GPa; ``groups``
    (one per point) from each structure's ``config_type`` or ``group`` ("" without).  Only
    structures carrying both the label and the prediction count."""
    from ase import units
    if isinstance(predictions, (str, bytes)) or hasattr(predictions, "__fspath__"):
        import ase.io
        predictions = ase.io.read(predictions, ":")
    points = {name: ([], [], []) for name, *_ in _PARITY_PANELS}
    for atoms in predictions:
        info, arrays, n = atoms.info, atoms.arrays, len(atoms)
        group = info.get("config_type", info.get("group", ""))
        group = "" if group is None else str(group)
        for name, source, scale in (("energy", info, 1.0 / n), ("forces", arrays, 1.0),
                                    ("stress", info, 1.0 / units.GPa)):
            ref, pred = source.get(ref_prefix + name), source.get(model_prefix + name)
            if ref is None or pred is None:
                continue
            ref = scale * np.ravel(np.asarray(ref, float))
            pred = scale * np.ravel(np.asarray(pred, float))
            if ref.shape != pred.shape:
                raise ValueError(f"{ref_prefix}{name} and {model_prefix}{name} of a structure "
                                 f"differ in shape: {ref.shape} and {pred.shape}")
            points[name][0].append(ref)
            points[name][1].append(pred)
            points[name][2].append(np.full(ref.size, group, dtype=object))
    return {name: tuple(np.concatenate(p) if p else np.zeros(0) for p in lists)
            for name, lists in points.items()}


def _rmse(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else float("nan")


def plot_parity(predictions, path, title=None, ref_prefix="REF_", model_prefix="snnp_",
                model_label="snnp"):
    """Energy (eV/atom), force-component (eV/Å) and stress-component (GPa) parity panels of
    ``predictions`` (see ``parity_points``: Atoms with REF_* and snnp_* labels, or a path to
    ``snnp eval --out``'s predictions.extxyz).

    Points are coloured by group (one colour per group, same in every panel); each panel has
    a y = x line and its RMSE in the title, each group's RMSE in the legend (energy RMSE in
    meV/atom).  A label the data lack leaves its panel with a note.  Returns the figure,
    saved to ``path``."""
    from .formatting import format_error
    plt = _pyplot()
    points = parity_points(predictions, ref_prefix, model_prefix)
    groups = sorted({g for *_, gs in points.values() for g in gs}, key=lambda g: (g.lower(), g))
    colors = [s["color"] for s in _curve_styles(max(len(groups), 1))]
    markers = "osD^v<>ph*"
    look = {g: (colors[k], markers[(k // 10) % len(markers)] if len(groups) > 10 else "o")
            for k, g in enumerate(groups)}
    fig, axes = plt.subplots(1, len(_PARITY_PANELS), figsize=(4.6 * len(_PARITY_PANELS), 5.0),
                             layout="constrained")      # room for a long suptitle
    for ax, (name, unit, rmse_unit, factor) in zip(axes, _PARITY_PANELS):
        ref, pred, gs = points[name]
        what = {"energy": "energy", "forces": "force component",
                "stress": "stress component"}[name]
        if len(ref) == 0:
            ax.set_title(f"{what}\n", fontsize=10)
            note = {"energy": "no energy labels in the data",
                    "forces": "no force labels in the data",
                    "stress": "no stress labels in the data\n(or no cell with a volume)"}[name]
            ax.text(0.5, 0.5, f"{note}:\npanel skipped", transform=ax.transAxes,
                    ha="center", va="center", fontsize=10, color="0.35")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal", adjustable="box")
            continue
        size, alpha = (14, 0.75) if name != "forces" else (5, 0.5)
        present = [g for g in groups if (gs == g).any()]
        handles = {}
        for g in sorted(present, key=lambda g: -(gs == g).sum()):   # small groups on top
            sel = gs == g
            err = factor * _rmse(pred[sel] - ref[sel])
            color, marker = look[g]
            handles[g] = ax.scatter(ref[sel], pred[sel], s=size, color=color, marker=marker,
                                    alpha=alpha, linewidths=0,
                                    label=f"{g or 'no group'}: {format_error(err)}")
        lo, hi = min(ref.min(), pred.min()), max(ref.max(), pred.max())
        pad = 0.05 * (hi - lo) if hi > lo else max(1e-3 * abs(hi), 1e-3)
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", zorder=0, label="_y=x")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(f"reference {what} ({unit})")
        ax.set_ylabel(f"{model_label} {what} ({unit})")
        count = f"{len(ref)} {'structures' if name == 'energy' else 'components'}"
        ax.set_title(f"{what}: RMSE {format_error(factor * _rmse(pred - ref))} {rmse_unit}\n"
                     f"({count})", fontsize=10)
        legend = ax.legend([handles[g] for g in present],
                           [handles[g].get_label() for g in present], fontsize=7,
                           loc="upper left", title=f"group: RMSE ({rmse_unit})",
                           title_fontsize=7, ncol=2 if len(present) > 8 else 1,
                           framealpha=0.85, markerscale=2.0 if name == "forces" else 1.2)
        for handle in legend.legend_handles:
            handle.set_alpha(1.0)
        ax.tick_params(labelsize=8)
    if title:
        import textwrap
        fig.suptitle("\n".join(textwrap.wrap(title, 120)), fontsize=11)
    _save(fig, path, bbox_inches="tight", pad_inches=0.15)   # equal aspect: keep labels
    return fig


def _PlainLogFormatter(**kwargs):
    """A log-axis tick formatter writing plain numbers (0.2, 30) instead of 2e-01 or 3x10^1,
    labelling minor ticks as Matplotlib's own does (only over a narrow range)."""
    from matplotlib import ticker

    class Plain(ticker.LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.3g}"
    return Plain(**kwargs)


def plot_learning(history, path, title=None):
    """A fit's learning curve: energy RMSE (meV/atom) and force RMSE (eV/Å) against the step,
    on log axes, training solid and validation dashed.

    ``history``: one dict per checkpoint with ``step``, ``train_energy_rmse``,
    ``train_force_rmse``, ``validation_energy_rmse``, ``validation_force_rmse`` (None or
    missing: not drawn, as are zeros and NaN on the log axis; the ``snnp.fitlog`` format) and
    optionally ``seconds``.  One checkpoint is drawn as points; an empty history gives panels
    that say so.  Returns the figure, saved to ``path``."""
    from .formatting import format_error
    plt = _pyplot()
    from matplotlib import ticker
    history = list(history)
    steps = np.array([float(k if h.get("step") is None else h["step"])
                      for k, h in enumerate(history)])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    panels = ((axes[0], "energy", "energy RMSE (meV/atom)"),
              (axes[1], "force", "force RMSE (eV/Å)"))
    for ax, what, label in panels:
        drawn = False
        for split, style, marker in (("train", "-", "o"), ("validation", "--", "s")):
            values = [h.get(f"{split}_{what}_rmse") for h in history]
            keep = np.array([v is not None and np.isfinite(v) and v > 0 for v in values])
            if not keep.any():
                continue
            x = steps[keep]
            y = np.array([v for v, k in zip(values, keep) if k], float)
            ax.plot(x, y, ls=style, marker=marker, ms=3 if len(x) > 1 else 5,
                    color="C0" if split == "train" else "C1",
                    label=f"{split} (last {format_error(y[-1])})")
            drawn = True
        ax.set(xlabel="step", ylabel=label, title=label)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
        if len(steps) and np.ptp(steps) == 0:        # one checkpoint (or all at one step)
            ax.set_xlim(steps[0] - 1, steps[0] + 1)
            ax.set_xticks([steps[0]])
        if drawn:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
            ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False,
                                                            minor_thresholds=(2, 1.2)))
            ax.legend(fontsize=8)
            ax.grid(True, which="both", color="0.92", lw=0.6)
        else:
            ax.text(0.5, 0.5, f"no {what} errors recorded" if history else
                    "no checkpoints recorded", transform=ax.transAxes,
                    ha="center", va="center", fontsize=10, color="0.35")
    seconds = history[-1].get("seconds") if history else None
    if title or seconds is not None:
        n = len(history)
        k = sum(1 for h in history if h.get("checkpoint", True))
        text = title or "learning curve"
        if seconds is not None:
            points = f"{n} points ({k} checkpoint{'s' if k != 1 else ''})" if k != n else \
                f"{n} checkpoint{'s' if n != 1 else ''}"
            text += f": {points}, {seconds:.3g} s"
        fig.suptitle(text, fontsize=11)
    _save(fig, path)
    return fig
