"""The three rungs of the ladder (docs/theory.md), each a ``Model`` fixing its embedding:

- ``SplineMEAM``   rung 0, the spline-MEAM of LAMMPS ``pair_style meam/spline`` (its files:
                   ``from_lammps`` / ``to_lammps``)
- ``SplineMEAMNN`` rung 1, spline-MEAM plus a small network correction
- ``SNNP``         rung 2, the spline neural-network potential

``from_spline_meam`` climbs from a fitted rung 0, ``grown_from`` from a fitted rung 1 or
smaller s-NNP (``SplineMEAMNN.grown_from``: the residual s-NNP, which keeps rung 0's U, also
from rung 0).  Each class registers with the model-file reader
(``snnp.io.modelfile.register_model_class``), so ``snnp.load`` rebuilds it by name.
"""
import warnings

import numpy as np
from ase.data import atomic_numbers

from ..embedding import MLPEmbedding
from ..filters import FilterBank, shortened
from ..io.lammps import read_meam_spline, write_meam_spline
from ..io.modelfile import register_model_class
from ..splines import Spline
from .base import Model

__all__ = ["SplineMEAM", "SplineMEAMNN", "SNNP"]


@register_model_class
class SplineMEAM(Model):
    """Rung 0: spline-based MEAM, exactly LAMMPS ``pair_style meam/spline``.

        e_i = 1/2 sum_j phi_ab(r_ij) + U_a(n_i) - U_a(0) + e0_a
        n_i = sum_j rho_b(r_ij) + sum_{j<k} f_b(r_ij) f_c(r_ik) g_bc(cos theta_jik)

    for centre species a and neighbour species b, c (the multi-element form of Zhang and
    Trinkle).  ``phi`` and ``g`` are dicts keyed by species-index pairs (a, b) with a <= b;
    ``rho``, ``U`` and ``f`` are lists with one Spline per species.  ``f = g = None`` is the
    embedded-atom method (no triplet loop).  Splines read from files keep their ends
    (``pinned=False``); new models pin radial splines to zero at the cutoff.
    """

    embedding_parts = ("U",)

    def __init__(self, species, phi, rho, U, f=None, g=None, e0=None, pinned=False):
        n = len(species)
        if (f is None) != (g is None):
            raise ValueError("give both f and g (angular term) or neither (EAM limit)")
        for name, lst in (("rho", rho), ("U", U), ("f", f)):
            if lst is not None and len(lst) != n:
                raise ValueError(f"{name} needs one spline per species ({n}), got {len(lst)}")
        bank = FilterBank(species, [[s] for s in rho], None if f is None else [[s] for s in f],
                          None if g is None else {k: [s] for k, s in g.items()}, pinned=pinned)
        super().__init__(species, bank, pair=phi, U=U, e0=e0)

    # LAMMPS-named views of the splines
    @property
    def phi(self):
        return self.pair

    @property
    def rho(self):
        return [bank[0] for bank in self.filters.rho]

    @property
    def f(self):
        return None if self.filters.f is None else [bank[0] for bank in self.filters.f]

    @property
    def g(self):
        return None if self.filters.g is None else {k: v[0] for k, v in self.filters.g.items()}

    @property
    def has_angular(self):
        return self.filters.f is not None

    @classmethod
    def from_lammps(cls, path, species=None):
        """Read a LAMMPS ``meam/spline`` file (old single-element or new multi-element format).

        Old-format files do not name their element: pass ``species=["Si"]``, or let it be taken
        from the file name when that starts with an element symbol (``Si_1.meam.spline``).
        """
        d = read_meam_spline(path, species=species)
        return cls(d["species"], d["phi"], d["rho"], d["U"], d["f"], d["g"])

    def to_lammps(self, path, format="new", comment=None, drop_e0=False):
        """Write a LAMMPS ``meam/spline`` file; ``format="old"`` for the single-element layout.

        ``meam/spline`` has no per-species reference energy: a fitted model's e0 can only be
        left out (``drop_e0=True``), which shifts LAMMPS energies by -e0 per atom of each species
        and leaves forces and stresses unchanged."""
        if np.any(self.e0 != 0) and not drop_e0:
            raise ValueError("LAMMPS meam/spline has no per-species reference energy e0; this "
                             "model has e0 = " + str(self.e0.tolist()) + " eV. Pass "
                             "drop_e0=True (snnp export --drop-e0) to write it without: LAMMPS "
                             "energies are then snnp's minus e0 per atom (higher where e0 < 0), "
                             "forces and stresses equal")
        if self.pair is None:
            raise ValueError("LAMMPS meam/spline needs a pair term phi; this model has none")
        if self.core is not None:
            overlay = self.lammps_core_overlay()
            warnings.warn("meam/spline cannot hold this model's short-range core and clamp: the "
                          "file has the splines alone. For the core, use " + overlay + "; below "
                          "each pair's r_out LAMMPS then still differs from snnp "
                          "(its splines continue linearly instead of freezing). pair_style snnp "
                          "(to_lammps_plugin) runs the model exactly.", UserWarning, stacklevel=2)
            comment = (comment + " | " if comment else "") + "core: " + overlay
        f, g = self.f, self.g
        if f is None:       # EAM limit: LAMMPS still wants f and g, zero them
            f = [Spline(s.x0, s.x1, [0.0, 0.0]) for s in self.rho]
            g = {p: Spline(-1.0, 1.0, [0.0, 0.0]) for p in self.pair}
        write_meam_spline(path, self.species, self.pair, self.rho, self.U, f, g,
                          format=format, comment=comment)

    def lammps_core_overlay(self):
        """LAMMPS input that adds this model's ZBL core beside its meam/spline file:
        ``pair_style hybrid/overlay meam/spline zbl r_in r_out``, ``pair_coeff * * meam/spline
        FILE`` and one ``pair_coeff i j zbl Z_i Z_j`` per type pair (types numbered as the
        species; ``lammps_core_commands`` gives the zbl parts alone)."""
        styles, coeffs = self.lammps_core_commands()
        return (f"pair_style hybrid/overlay meam/spline {styles}; pair_coeff * * meam/spline "
                f"FILE {' '.join(self.species)}; " + "; ".join(coeffs))

    def lammps_core_commands(self):
        """The ZBL core as LAMMPS ``pair_style zbl`` sub-styles of a ``hybrid/overlay``: (the
        sub-style text, the ``pair_coeff`` commands), types numbered as the species.  One zbl
        has one r_in, r_out for all its pairs, so pairs whose radii differ get one zbl per
        distinct (r_in, r_out) (``zbl a b zbl c d``, ``pair_coeff i j zbl K Z_i Z_j``): every
        pair keeps its own radii."""
        z = [atomic_numbers[s] for s in self.species]
        pairs = sorted(self.core.radii.items())
        kinds = sorted({radii for _, radii in pairs})
        styles = " ".join(f"zbl {r_in!r} {r_out!r}" for r_in, r_out in kinds)    # exact radii
        which = {radii: "" if len(kinds) == 1 else f" {k + 1}" for k, radii in enumerate(kinds)}
        coeffs = [f"pair_coeff {a + 1} {b + 1} zbl{which[radii]} {z[a]} {z[b]}"
                  for (a, b), radii in pairs]
        return styles, coeffs


class _NetworkRung(Model):
    """What the two network rungs share: growing from a smaller fitted model (the ladder's
    chain climb).  ``SplineMEAMNN`` keeps the start's spline embedding U, ``SNNP`` has none."""

    @classmethod
    def _on_top_of(cls, model, rho, f, g, widths, activation, seed):
        """A model of this class with these filter banks, a seeded network, ``model``'s pair
        term, e0, core and bank settings, and (SplineMEAMNN) its U: the start of a climb."""
        filters = FilterBank(model.species, rho, f, g, pinned=model.filters.pinned,
                             shared=model.filters.shared)
        mlp = MLPEmbedding(model.n_species, filters.n_filters, widths, activation, seed=seed)
        pair = None if model.pair is None else {k: v.copy() for k, v in model.pair.items()}
        embedding = ([[u.copy() for u in model.U]] if "U" in cls.embedding_parts else []) + [mlp]
        out = cls(model.species, filters, *embedding, pair=pair, e0=model.e0.copy())
        out.core = None if model.core is None else model.core.copy()
        return out

    @classmethod
    def grown_from(cls, model, n_radial, n_angular, widths, activation="tanh", seed=0,
                   data=None, distil_iter=500, angular_legs=None):
        """Climb from a fitted rung 1 or a smaller s-NNP (the ladder's chain climb): its
        filters become the first filters of the bank (more are added on the same knot grids),
        its pair term, e0 and core are kept.  ``SplineMEAMNN.grown_from`` (the residual
        s-NNP, ``presets(residual=True)``) also keeps its spline embedding U, and climbs from
        rung 0 as well (a zero network on top: the same energies exactly).

        From a model of this class whose network has the same depth and activation and no
        wider layers, the smaller network is embedded exactly (``MLPEmbedding.embedded``): the
        grown model computes the same energies and forces as ``model``, so its fit starts at
        the smaller rung's validation loss and, the start being a checkpoint candidate, cannot
        end above it.  With ``data`` the new filters' input standardisation is set from those atoms and
        ``model.distil_misfit`` is the RMS per-atom energy difference measured there (rounding).

        Otherwise (a network of another depth, or a rung 1 grown into an s-NNP without U),
        with ``data`` (a Dataset or a list of Atoms) the network is first fitted to the smaller
        model's per-atom energies on those atoms, less what the pair term, core and e0 give
        (``MLPEmbedding.distil``), so the larger s-NNP starts near where the smaller one
        ended; ``model.distil_misfit`` holds the RMS misfit (eV/atom).  Without data the
        network starts from its seeded initialisation.  ``angular_legs``: the basis the added
        angular filters are taken from (``FilterBank.initial``; the kept ones stay)."""
        keeps_U = "U" in cls.embedding_parts
        if model.mlp is None and not keeps_U:
            raise ValueError(f"grown_from climbs from a rung 1 or an s-NNP, not a "
                             f"{type(model).__name__} (rung 0 climbs with from_spline_meam)")
        if keeps_U and model.U is None:
            raise ValueError(f"{cls.__name__}.grown_from keeps the start's spline embedding U: "
                             f"it climbs from a rung 0, a rung 1 or a residual s-NNP, not a "
                             f"{type(model).__name__} without U")
        if n_radial < model.n_radial or n_angular < model.n_angular:
            raise ValueError(f"a grown s-NNP keeps every filter: it needs at least "
                             f"{model.n_radial}+{model.n_angular} filters, got "
                             f"{n_radial}+{n_angular}")
        if n_angular and model.filters.f is None:
            raise ValueError(f"this {type(model).__name__} has no angular filters to carry over "
                             f"into {n_angular} angular filters")
        rho = [[s.copy() for s in old] + _more_filters(old, n_radial, "rho")
               for old in model.filters.rho]
        f = g = None
        if n_angular:
            f = [[s.copy() for s in old] + _more_filters(old, n_angular, "f", angular_legs)
                 for old in model.filters.f]
            g = {k: [s.copy() for s in old] + _more_filters(old, n_angular, "g", angular_legs)
                 for k, old in model.filters.g.items()}
        out = cls._on_top_of(model, rho, f, g, widths, activation, seed)
        images = None if data is None else [getattr(item, "atoms", item) for item in data]
        if images is not None:          # the grown bank's filters on the data, for every path
            G = np.vstack([out.descriptors(a) for a in images])
            species = np.concatenate([out._atoms_species(a) for a in images])
        if model.mlp is None:         # rung 0 below a residual s-NNP: a zero network on its U
            if images is not None:
                out.mlp.set_normalization(G, species)
                out.distil_misfit = 0.0
            out.invalidate()
            return out
        if ((model.U is not None) == keeps_U and activation == model.mlp.activation
                and len(widths) == len(model.mlp.widths)
                and all(w >= o for w, o in zip(widths, model.mlp.widths))):
            # inputs: radial filters first, then angular; the old ones lead each group
            inputs = list(range(model.n_radial)) + [n_radial + k for k in range(model.n_angular)]
            out.mlp = model.mlp.embedded(out.filters.n_filters, inputs, widths, seed=seed)
            if images is not None:
                fresh = out.mlp.copy()
                fresh.set_normalization(G, species)
                new = np.setdiff1d(np.arange(out.filters.n_filters), inputs)
                out.mlp.mean[:, new], out.mlp.scale[:, new] = fresh.mean[:, new], fresh.scale[:, new]
            out.invalidate()
            if images is not None:
                diff = np.concatenate([(model.compute(a, ("energy",))["energies"]
                                        - out.compute(a, ("energy",))["energies"])
                                       for a in images])
                out.distil_misfit = float(np.sqrt(np.mean(diff ** 2)))
            return out
        if images is not None:
            base = out.copy()             # no network: the pair term, core, e0 (and U)
            for layers in base.mlp.weights:
                layers[-1] = (np.zeros_like(layers[-1][0]), np.zeros_like(layers[-1][1]))
            base.invalidate()
            target = np.concatenate([model.compute(a, ("energy",))["energies"]
                                     - base.compute(a, ("energy",))["energies"] for a in images])
            out.distil_misfit = out.mlp.distil(G, species, target, max_iter=distil_iter)
            out.invalidate()
        return out


@register_model_class
class SplineMEAMNN(_NetworkRung):
    """Rung 1: spline-MEAM plus a small neural-network correction.

        eps_a(G) = U_a(R_1 + A_1) - U_a(0) + MLP_a(G) - MLP_a(0)

    The first radial and angular filters feed U as in rung 0; all K_r + K_a filters feed the MLP.
    """

    embedding_parts = ("U", "mlp")

    def __init__(self, species, filters, U, mlp, pair=None, e0=None):
        super().__init__(species, filters, pair=pair, U=U, mlp=mlp, e0=e0)

    @classmethod
    def from_spline_meam(cls, model, widths=(8,), activation="tanh", seed=0):
        """Climb from rung 0: same filters, pair term and U, plus a zero MLP correction."""
        mlp = MLPEmbedding(model.n_species, model.filters.n_filters, widths, activation, seed=seed)
        out = cls(model.species, model.filters.copy(), [s.copy() for s in model.U], mlp,
                  pair=None if model.pair is None else {k: s.copy() for k, s in model.pair.items()},
                  e0=model.e0.copy())
        out.core = None if model.core is None else model.core.copy()
        return out


@register_model_class
class SNNP(_NetworkRung):
    """Rung 2: the spline-based neural-network potential, eps_a(G) = MLP_a(G) - MLP_a(0)."""

    embedding_parts = ("mlp",)

    def __init__(self, species, filters, mlp, pair=None, e0=None):
        super().__init__(species, filters, pair=pair, mlp=mlp, e0=e0)

    @classmethod
    def from_spline_meam(cls, model, n_radial=12, n_angular=4, widths=(16, 16),
                         activation="tanh", seed=0, data=None, distil_iter=500,
                         angular_cutoff=None, angular_legs=None):
        """Climb from a fitted rung 0: its radial and angular filters become filters 1 of the
        bank (more are added on the same knot grids), its pair term and e0 are kept.
        ``angular_cutoff`` (shorter than rung 0's f): every f_k, rung 0's included (tapered to
        zero there), ends at it, so fewer pairs enter triplets and angular filters cost less.
        ``angular_legs``: the basis of the added angular filters (``FilterBank.initial``).

        With ``data`` (a Dataset or a list of Atoms) the network is first fitted to rung 0's
        embedding U(R_1 + A_1) - U(0) on those atoms (``MLPEmbedding.distil``), so the s-NNP
        starts where rung 0 ended; ``model.distil_misfit`` holds the RMS misfit (eV/atom).
        Without data the network starts at zero (the pair term alone plus e0)."""
        if data is not None and model.U is None:
            raise ValueError("distilling needs a rung-0 model with an embedding U")
        rho = [[old[0].copy()] + _more_filters(old, n_radial, "rho") for old in model.filters.rho]
        f = g = None
        if n_angular:
            if model.filters.f is None:
                raise ValueError("this rung-0 model has no angular filters to carry over")
            f = []
            for old in model.filters.f:
                try:
                    first = shortened(old[0], angular_cutoff)
                except ValueError as exc:                     # name the argument
                    raise ValueError(f"angular_cutoff: {exc}") from None
                f.append([first] + _more_filters([first], n_angular, "f", angular_legs))
            g = {k: [old[0].copy()] + _more_filters(old, n_angular, "g", angular_legs)
                 for k, old in model.filters.g.items()}
        out = cls._on_top_of(model, rho, f, g, widths, activation, seed)
        if data is not None:
            images = [getattr(item, "atoms", item) for item in data]
            G = np.vstack([out.descriptors(a) for a in images])
            species = np.concatenate([out._atoms_species(a) for a in images])
            n = G[:, 0] + (G[:, n_radial] if n_angular else 0.0)
            target = np.empty(len(G))
            for a, U in enumerate(model.U):
                rows = species == a
                target[rows] = U(n[rows]) - U(np.array([0.0]))[0]
            out.distil_misfit = out.mlp.distil(G, species, target, max_iter=distil_iter)
            out.invalidate()
        return out


def _more_filters(bank, k_total, kind, angular_legs=None):
    """Filters len(bank)+1 .. k_total of a grown bank ("rho", "f" or "g"), on the knot grid of
    the bank's first filter and pinned to zero at that grid's end (a file's filter may end
    before the cutoff: the new ones must not continue): those of a fresh ``FilterBank.initial``
    of k_total filters on that grid (angular ones with its ``angular_legs``)."""
    old, k_have = bank[0], len(bank)
    if k_total <= k_have:
        return []
    if kind == "g":
        fresh = FilterBank.initial(["X"], 1, k_total, 2.0, 1.0, n_knots_angular=old.n_knots,
                                   angular_legs=angular_legs)
        src = fresh.g[(0, 0)]
        return [Spline(old.x0, old.x1, s(old.knots), float(s(np.array([old.x0]), True)[1][0]),
                       float(s(np.array([old.x1]), True)[1][0])) for s in src[k_have:]]
    fresh = FilterBank.initial(["X"], k_total, k_total, old.x1, old.x0, n_knots_radial=old.n_knots,
                               angular_legs=None if kind == "rho" else angular_legs)
    return [s.copy() for s in (fresh.rho[0] if kind == "rho" else fresh.f[0])[k_have:]]
