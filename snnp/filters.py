"""Filter banks: the learned spline "filters" that encode an atom's surroundings.

    R_ik = sum_j         rho_k^{b}(r_ij)                                    k = 1..K_r
    A_ik = sum_{j<l}     f_k^{b}(r_ij) f_k^{c}(r_il) g_k^{bc}(cos theta_jil)   k = 1..K_a

rho and f are indexed by the neighbour's species b, g by the unordered neighbour pair (b, c).
The K filters of one species (or pair) share a knot grid, so the kernels locate the interval
once for all of them.  Radial filters of new models are pinned to value 0 and slope 0 at the
cutoff, so energies and forces are continuous there (files read from LAMMPS keep their ends).

A *shared* bank (``FilterBank.share()``, ``presets(..., shared_filters=True)``) ties the filters
across neighbour species: rho_k^b = rho_k, f_k^b = f_k and g_k^{bc} = g_k for every b, c, so an
atom's descriptors count its neighbours whatever their element (the network, the pair term and
e0 stay per species).  The kernels still see one bank per species, identical copies; the model's
parameter vector holds each tied filter once (``tied()``).
"""
import numpy as np

from .splines import Spline

__all__ = ["FilterBank", "pair_keys", "shortened", "angular_reach", "angular_channels",
           "MIN_SHELL_GAP"]


def pair_keys(n):
    """Unordered species-index pairs (a, b), a <= b, in the order LAMMPS files use."""
    return [(a, b) for a in range(n) for b in range(a, n)]


def _taper(r, cutoff, width):
    """1 well inside, smoothly (C1) to 0 at the cutoff."""
    t = np.clip((r - (cutoff - width)) / width, 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def _sampled_spline(func, x0, x1, n, pinned):
    x = np.linspace(x0, x1, n)
    y = func(x)
    h = 1e-6 * (x1 - x0)
    d0 = (func(np.array([x0 + h]))[0] - func(np.array([x0 - h]))[0]) / (2 * h)
    dN = (func(np.array([x1 + h]))[0] - func(np.array([x1 - h]))[0]) / (2 * h)
    if pinned:
        y[-1], dN = 0.0, 0.0
    return Spline(x0, x1, y, d0, dN)


def shortened(spline, end, taper=0.3):
    """``spline`` on the same number of knots, ending (value and slope 0) at ``end``: its values
    times a C1 taper over the last ``taper`` fraction of [x0, end].  An ``end`` at or beyond
    the last knot returns a copy.  Used to give an angular filter a shorter reach
    (``SNNP.from_spline_meam(angular_cutoff=...)``), which the kernels turn into skipped pairs."""
    if end is None or end >= spline.x1:
        return spline.copy()
    if not spline.x0 < end:
        raise ValueError(f"the new end {end} must exceed the spline's first knot ({spline.x0})")
    width = taper * (end - spline.x0)
    return _sampled_spline(lambda r: spline(r) * _taper(r, end, width), spline.x0, end,
                           spline.n_knots, True)


#: the smallest empty interval of the pair distribution, in units of the nearest-neighbour
#: distance, that ``angular_reach`` takes for the end of the first coordination shell
MIN_SHELL_GAP = 0.25


def angular_reach(structures, cutoff, r_min=1.5, min_gap=MIN_SHELL_GAP, n_lowest=8):
    """Where the angular filters should end for this data: at the first clear gap between
    neighbour shells, so the three-body terms see the first coordination shell and not the
    shells beyond (as in 1NN/2NN-MEAM and Lenosky's Si meam/spline, docs/theory.md).

    Over the atoms of the ``n_lowest`` lowest-energy structures (per composition, as
    ``snnp.probes`` chooses them), d_k is the median distance to an atom's k-th nearest
    neighbour (the median keeps a hot or defective cell among them from blurring the shells).
    The first k with d_{k+1} - d_k wider than ``min_gap`` times d_1 ends the shell, and the
    reach is d_{k+1} (the next shell; the filters' taper starts well before it).  Returns that
    distance, or None (the full ``cutoff``) where no such gap lies inside the cutoff or no
    structure has an energy label.  Diamond Si: the 4 first neighbours, then 3.84 A at
    a = 5.43; fcc: 12, then a; bcc, whose 8 + 6 first neighbours are one shell: a sqrt 2."""
    from ase.neighborlist import neighbor_list
    from .probes import _lowest_energy
    tables = []
    for st in _lowest_energy(structures, n_lowest):
        i, dist = neighbor_list("id", st.atoms, cutoff)
        count = np.bincount(i, minlength=len(st.atoms))
        order = np.lexsort((dist, i))                  # by atom, then by distance
        rank = np.arange(len(i)) - np.repeat(np.cumsum(count) - count, count)
        table = np.full((len(st.atoms), max(count.max(initial=0), 1)), np.inf)
        table[i[order], rank] = dist[order]
        tables.append(table)
    if not tables:
        return None
    width = max(t.shape[1] for t in tables)
    if width < 2:
        return None
    d = np.median(np.vstack([np.pad(t, ((0, 0), (0, width - t.shape[1])),
                                    constant_values=np.inf) for t in tables]), axis=0)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return None
    wide = np.flatnonzero(np.diff(d) > min_gap * d[0])
    if not len(wide):
        return None
    end = float(d[wide[0] + 1])
    return end if r_min < end < cutoff else None


def angular_channels(n_angular, legs=None):
    """The (leg a, leg b, Legendre degree c) of each of ``n_angular`` starting angular filters
    (``FilterBank.initial``): None, filter k is (k, k, k); ``legs`` = P, every leg pair
    a <= b of P legs with every degree c < C, C = n_angular / (P (P + 1) / 2), in the order
    c, then (a, b) -- so filter 0 is (0, 0, 0), the filter a climb from rung 0 carries over.
    Refuses an ``n_angular`` that is not a multiple of the number of leg pairs."""
    n_angular = int(n_angular)
    if legs is None:
        return [(k, k, k) for k in range(n_angular)]
    if isinstance(legs, bool) or not float(legs).is_integer() or legs < 1:
        raise ValueError(f"angular_legs must be a whole number >= 1 (or None), got {legs!r}")
    legs = int(legs)
    pairs = [(a, b) for a in range(legs) for b in range(a, legs)]
    if n_angular % len(pairs):
        raise ValueError(f"angular_legs={legs} gives {len(pairs)} leg pairs per Legendre degree: "
                         f"the number of angular filters must be a multiple of it, got "
                         f"{n_angular}")
    return [(a, b, c) for c in range(n_angular // len(pairs)) for a, b in pairs]


class FilterBank:
    """K_r radial and K_a angular filters for every species.

    Parameters
    ----------
    species : list of str
    rho : list (one per neighbour species) of lists of K_r Splines sharing a grid
    f : list (one per neighbour species) of lists of K_a Splines, or None (no angular filters)
    g : dict {(b, c): list of K_a Splines on cos theta}, b <= c, or None
    pinned : bool
        Require every radial filter to end with value 0 and slope 0 (new models); files from
        LAMMPS are read with ``pinned=False``.
    shared : bool
        The filters are tied across neighbour species: every species' rho and f bank and every
        pair's g bank must be the same functions (``share()`` makes such a bank).
    """

    def __init__(self, species, rho, f=None, g=None, pinned=True, shared=False):
        self.species = list(species)
        n = len(self.species)
        if (f is None) != (g is None):
            raise ValueError("give both f and g (angular filters) or neither")
        if len(rho) != n:
            raise ValueError(f"rho needs one filter list per species ({n}), got {len(rho)}")
        self.rho = [list(bank) for bank in rho]
        self.n_radial = len(self.rho[0])
        if any(len(bank) != self.n_radial for bank in self.rho):
            raise ValueError("every species needs the same number of radial filters")
        if f is None:
            self.f, self.g, self.n_angular = None, None, 0
        else:
            if len(f) != n:
                raise ValueError(f"f needs one filter list per species ({n}), got {len(f)}")
            self.f = [list(bank) for bank in f]
            self.n_angular = len(self.f[0])
            self.g = {}
            for key in pair_keys(n):
                bank = g.get(key, g.get(key[::-1]))
                if bank is None:
                    raise ValueError(f"g has no filters for species pair {key}")
                self.g[key] = list(bank)
            banks = self.f + list(self.g.values())
            if self.n_angular == 0 or any(len(b) != self.n_angular for b in banks):
                raise ValueError("f and g need the same number (>= 1) of angular filters "
                                 "for every species and pair")
        for bank in self.banks():
            for s in bank:
                if not isinstance(s, Spline):
                    raise TypeError(f"filters must be snnp.Spline objects, got {type(s)}")
            first = bank[0]
            if any((s.x0, s.x1, s.n_knots) != (first.x0, first.x1, first.n_knots) for s in bank):
                raise ValueError("the filters of one species (or pair) must share a knot grid")
        self.pinned = bool(pinned)
        if self.pinned:
            for s in self.radial_splines():
                if s.values[-1] != 0.0 or s.dN != 0.0:
                    raise ValueError("pinned radial filters must end with value 0 and slope 0 "
                                     f"at the cutoff; got value {s.values[-1]}, slope {s.dN}")
        self.shared = bool(shared)
        if any(s != group[0] for group in self.tied() for s in group[1:]):
            raise ValueError("a shared filter bank needs the same filters for every neighbour "
                             "species and pair; FilterBank.share() makes one")

    # -- structure -------------------------------------------------------------------------
    def banks(self):
        """All filter banks in kernel order: rho per species, f per species, g per pair."""
        out = list(self.rho)
        if self.f is not None:
            out += self.f + [self.g[k] for k in pair_keys(len(self.species))]
        return out

    def tied(self):
        """Groups of filters that are one function (a shared bank): for each filter k, the
        rho_k of every species, the f_k of every species and the g_k of every pair, the first
        of each group standing for all.  Empty for an unshared bank."""
        if not self.shared:
            return []
        n = len(self.species)
        out = [[self.rho[b][k] for b in range(n)] for k in range(self.n_radial)]
        if self.f is not None:
            keys = pair_keys(n)
            out += [[self.f[b][k] for b in range(n)] for k in range(self.n_angular)]
            out += [[self.g[key][k] for key in keys] for k in range(self.n_angular)]
        return [group for group in out if len(group) > 1]

    def primary(self):
        """The banks whose filters stand for their tied copies (a shared bank: species 0's rho
        and f, pair (0, 0)'s g), or every bank: ``(rho, f, g)`` as lists of banks."""
        keys = pair_keys(len(self.species))
        if self.shared:
            return ([self.rho[0]], None if self.f is None else [self.f[0]],
                    None if self.g is None else [self.g[keys[0]]])
        return (self.rho, self.f, None if self.g is None else [self.g[k] for k in keys])

    def sync(self):
        """Copy each tied group's first filter into the others (after its parameters moved)."""
        for group in self.tied():
            first = group[0]
            for s in group[1:]:
                s.values[:] = first.values
                s.d0, s.dN = first.d0, first.dN

    def share(self):
        """A shared copy of this bank: every neighbour species gets species 0's rho and f
        filters and every pair the g filters of pair (0, 0)."""
        n = len(self.species)
        rho = [[s.copy() for s in self.rho[0]] for _ in range(n)]
        if self.f is None:
            return FilterBank(self.species, rho, pinned=self.pinned, shared=True)
        f = [[s.copy() for s in self.f[0]] for _ in range(n)]
        g0 = self.g[pair_keys(n)[0]]
        g = {key: [s.copy() for s in g0] for key in pair_keys(n)}
        return FilterBank(self.species, rho, f, g, pinned=self.pinned, shared=True)

    def radial_splines(self):
        return [s for bank in self.rho + (self.f or []) for s in bank]

    @property
    def n_filters(self):
        return self.n_radial + self.n_angular

    @property
    def cutoff(self):
        return max(s.x1 for s in self.radial_splines())

    @property
    def inner_cutoff(self):
        return min(s.x0 for s in self.radial_splines())

    @property
    def n_params(self):
        """Free parameters: pinned ends of radial filters and tied copies do not count."""
        rho, f, g = self.primary()
        radial = [s for bank in rho + (f or []) for s in bank]
        total = sum(s.params.size for bank in rho + (f or []) + (g or []) for s in bank)
        return total - (2 * len(radial) if self.pinned else 0)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def initial(cls, species, n_radial, n_angular, cutoff, r_min=1.5, n_knots_radial=12,
                n_knots_angular=10, angular_cutoff=None, angular_legs=None):
        """A smooth, deterministic starting bank for training.

        Radial filters are Gaussian bumps spread between ``r_min`` and the cutoff (one broad
        decaying function when K = 1), tapered to zero at the cutoff.  Angular filters have
        decaying radial parts f_k, which end at ``angular_cutoff`` (default: the cutoff), and
        Legendre polynomials of cos theta as g_k.  Pairs beyond the angular cutoff enter no
        triplet, so a shorter one makes angular filters cheaper (the kernels skip those pairs).

        ``angular_legs`` chooses how the K_a angular filters share out their radial and angular
        parts (``angular_channels``): None, filter k has the k-th decay length and P_k (K_a
        lengths, Legendre degrees 0..K_a-1); P, the filters are every (leg pair, degree)
        product of P decay lengths and K_a / (P (P + 1) / 2) Legendre degrees, a leg pair
        (a, b) with a < b entering as the leg (f_a + f_b) / 2.  Through the polarisation
        identity the network's first layer then sees the mixed-leg three-body terms
        sum f_a(r_ij) f_b(r_il) g(cos theta) as well (docs/theory.md, "Angular channels").
        """
        angular_cutoff = cutoff if angular_cutoff is None else float(angular_cutoff)
        channels = angular_channels(n_angular, angular_legs)
        if not r_min < angular_cutoff <= cutoff:
            raise ValueError(f"angular_cutoff must lie in (r_min, cutoff] = ({r_min}, {cutoff}], "
                             f"got {angular_cutoff}")
        span = cutoff - r_min
        taper = 0.3 * span

        def bump(k, K):
            if K == 1:
                return lambda r: np.exp(-(r - r_min) / (0.4 * span)) * _taper(r, cutoff, taper)
            mu, sig = r_min + (k + 0.5) * span / K, 0.6 * span / K
            return lambda r: np.exp(-0.5 * ((r - mu) / sig) ** 2) * _taper(r, cutoff, taper)

        def legendre(k):
            c = np.zeros(k + 1)
            c[k] = 1.0
            return lambda x: np.polynomial.legendre.legval(x, c)

        n = len(species)
        rho = [[_sampled_spline(bump(k, n_radial), r_min, cutoff, n_knots_radial, True)
                for k in range(n_radial)] for _ in species]
        if n_angular == 0:
            return cls(species, rho)
        span_a = angular_cutoff - r_min

        n_legs = 1 + max(b for _, b, _ in channels)

        def decay(k):
            lam = span_a * (0.25 + 0.5 * k / max(n_legs - 1, 1))
            return lambda r: np.exp(-(r - r_min) / lam)

        def leg(a, b):
            return lambda r: (0.5 * (decay(a)(r) + decay(b)(r))
                              * _taper(r, angular_cutoff, 0.3 * span_a))

        f = [[_sampled_spline(leg(a, b), r_min, angular_cutoff, n_knots_radial, True)
              for a, b, _ in channels] for _ in species]
        g = {key: [_sampled_spline(legendre(c), -1.0, 1.0, n_knots_angular, False)
                   for _, _, c in channels] for key in pair_keys(n)}
        return cls(species, rho, f, g)

    def copy(self):
        cp = lambda banks: [[s.copy() for s in bank] for bank in banks]
        g = None if self.g is None else {k: [s.copy() for s in v] for k, v in self.g.items()}
        return FilterBank(self.species, cp(self.rho), None if self.f is None else cp(self.f), g,
                          pinned=self.pinned, shared=self.shared)

    # -- files -----------------------------------------------------------------------------
    def to_dict(self):
        sp = self.species
        d = {"n_radial": self.n_radial, "n_angular": self.n_angular, "pinned": self.pinned,
             "rho": {sp[b]: [s.to_dict() for s in bank] for b, bank in enumerate(self.rho)}}
        if self.f is not None:
            d["f"] = {sp[b]: [s.to_dict() for s in bank] for b, bank in enumerate(self.f)}
            d["g"] = {f"{sp[a]}-{sp[b]}": [s.to_dict() for s in bank]
                      for (a, b), bank in self.g.items()}
        if self.shared:
            d["shared"] = True
        return d

    @classmethod
    def from_dict(cls, d, species):
        idx = {s: k for k, s in enumerate(species)}
        load = lambda bank: [Spline.from_dict(s) for s in bank]
        rho = [load(d["rho"][s]) for s in species]
        f = g = None
        if d.get("f") is not None:
            f = [load(d["f"][s]) for s in species]
            g = {}
            for key, bank in d["g"].items():
                a, b = (idx[s] for s in key.split("-"))
                g[(min(a, b), max(a, b))] = load(bank)
        return cls(species, rho, f, g, pinned=d.get("pinned", True),
                   shared=d.get("shared", False))
