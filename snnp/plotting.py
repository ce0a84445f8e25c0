"""Looking at what a model learned: its filters, its embedding, and what each filter contributes.

    snnp.plotting.plot_filters(model, "out/filters.png")
    snnp.plotting.plot_embedding(model, dataset, "out/embedding.png")
    snnp.plotting.plot_contributions(model, dataset, "out/contributions.png")

or ``snnp plot MODEL --data DATA --out DIR``.  Needs Matplotlib (the ``plot`` extra).
"""
import numpy as np


__all__ = ["plot_filters", "plot_embedding", "plot_contributions", "filter_contributions",
           "plot_short_range"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need Matplotlib: pip install 'snnp[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    """Save and release the figure from pyplot (the returned object stays inspectable)."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


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
    """Energy along the four short-range paths of ``snnp.curves.short_range_report``: a dimer,
    a trimer and a pair inside the crystal pushed together from the nearest-neighbour distance
    to ``r_min``, and the equation of state down to V/V0 = 0.4.  The core's r_in and r_out and
    the training data's shortest distance are marked.  One-element models."""
    from .curves import short_range_report
    plt = _pyplot()
    rep = short_range_report(model, r_min=r_min)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
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
    fig.suptitle(f"{type(model).__name__} {'-'.join(model.species)}: where the data end",
                 fontsize=11)
    _save(fig, path)
    return rep
