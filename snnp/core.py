"""The short-range rule: a screened-nuclear (ZBL) core and clamped learned terms below the data.

Below the shortest distance a species pair has in the training data, nothing the fit saw tells
the learned terms what to do, and left alone their splines continue linearly and the network
extrapolates: in practice atoms attract and fuse.  ``ZBLCore`` fixes both halves of that, per
unordered species pair (docs/theory.md, "Where the data end"):

- the Ziegler-Biersack-Littmark universal screened-Coulomb potential between the two nuclei,
  switched off between ``r_in`` and ``r_out`` exactly as LAMMPS ``pair_style zbl r_in r_out``
  switches it (energy, force and curvature reach zero at ``r_out``), and
- the learned radial splines of the pair (phi, rho, f) see the distance through ``r_eff``:
  r itself from ``r_out`` up, frozen at ``r_c = r_out - w`` below ``r_c``, and in between
  ``r_c + w q((r - r_c)/w)`` with ``q(t) = 6t^3 - 8t^4 + 3t^5``, which joins both ends with
  equal value, slope and curvature.  Below ``r_c`` the learned terms therefore do not change
  with r at all, and the core alone pushes the atoms apart.

Above ``r_out`` neither part acts: the model is exactly its learned terms.  With ``r_out`` at
the shortest training distance of the pair (``ZBLCore.from_data``, what ``fit`` does by
default), no training pair is touched by the rule, so a fit with it in place sees the same
data as one without.  The kernels evaluate both (``src_cython/kernels.h``, ``snnp_core`` and
``snnp_clamped``), so the CPU, GPU and LAMMPS front ends agree.
"""
import numpy as np
from ase.data import atomic_numbers

__all__ = ["ZBLCore", "zbl", "zbl_switched", "shortest_distances"]

#: e^2 / (4 pi eps0) in eV A (LAMMPS metal units' qqr2e)
COULOMB = 14.399645
#: ZBL universal screening: phi(x) = sum_k c_k exp(-d_k x), x = r / a
ZBL_C = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_D = (3.19980, 0.94229, 0.40290, 0.20162)
#: a = ZBL_A0 / (Z_i^0.23 + Z_j^0.23), in A
ZBL_A0 = 0.46850
#: default distance between the switching radii and the clamp width (A)
SWITCH_WIDTH = 0.1
CLAMP_WIDTH = 0.1
#: kernels.h SNNP_CORE_STRIDE
STRIDE = 11


def _screening(Z1, Z2):
    return ZBL_A0 / (Z1 ** 0.23 + Z2 ** 0.23)


def zbl(r, Z1, Z2, derivative=0):
    """The unswitched ZBL energy (eV) between nuclei Z1, Z2 at distances r (A), or its first or
    second derivative in r (NumPy reference of the kernel's formula)."""
    r = np.asarray(r, dtype=float)
    a, zz = _screening(Z1, Z2), Z1 * Z2 * COULOMB
    phi = dphi = d2phi = 0.0
    for c, d in zip(ZBL_C, ZBL_D):
        e = c * np.exp(-d * r / a)
        phi, dphi, d2phi = phi + e, dphi - d / a * e, d2phi + (d / a) ** 2 * e
    if derivative == 0:
        return zz * phi / r
    if derivative == 1:
        return zz * (dphi / r - phi / r ** 2)
    return zz * (d2phi / r - 2 * dphi / r ** 2 + 2 * phi / r ** 3)


def _switch(Z1, Z2, r_in, r_out):
    """LAMMPS pair_zbl's switching coefficients sw1..sw5 (pair_zbl.cpp, set_coeff)."""
    tc = r_out - r_in
    fc, fcp, fcpp = (float(zbl(r_out, Z1, Z2, k)) for k in range(3))
    swa = (-3.0 * fcp + tc * fcpp) / (tc * tc)
    swb = (2.0 * fcp - tc * fcpp) / (tc * tc * tc)
    swc = -fc + 0.5 * tc * fcp - tc * tc * fcpp / 12.0
    return swa, swb, swa / 3.0, swb / 4.0, swc


def zbl_switched(r, Z1, Z2, r_in, r_out):
    """Energy and dE/dr of ZBL switched off between r_in and r_out as LAMMPS pair_style zbl."""
    r = np.asarray(r, dtype=float)
    sw1, sw2, sw3, sw4, sw5 = _switch(Z1, Z2, r_in, r_out)
    t = np.clip(r - r_in, 0.0, None)
    e = zbl(r, Z1, Z2) + sw5 + t ** 3 * (sw3 + sw4 * t)
    de = zbl(r, Z1, Z2, 1) + t ** 2 * (sw1 + sw2 * t)
    inside = r < r_out
    return np.where(inside, e, 0.0), np.where(inside, de, 0.0)


def shortest_distances(species, images, cutoff=None):
    """Shortest distance (A) of every unordered species pair (a, b), a <= b, over a list of ASE
    Atoms (or Structures); pairs that never come within ``cutoff`` (default 6 A) are absent."""
    from ase.neighborlist import neighbor_list
    lookup = {s: k for k, s in enumerate(species)}
    cutoff = 6.0 if cutoff is None else float(cutoff)
    out = {}
    for item in images:
        atoms = getattr(item, "atoms", item)
        i, j, d = neighbor_list("ijd", atoms, cutoff)
        if d.size == 0:
            continue
        sp = np.array([lookup[s] for s in atoms.get_chemical_symbols()])
        a, b = np.minimum(sp[i], sp[j]), np.maximum(sp[i], sp[j])
        for key in set(zip(a.tolist(), b.tolist())):
            r = float(d[(a == key[0]) & (b == key[1])].min())
            if 0 < r < out.get(key, np.inf):
                out[key] = r
    return out


class ZBLCore:
    """A ZBL core per unordered species pair, and the radius below which learned terms clamp.

    Parameters
    ----------
    species : list of str
        Chemical symbols (atomic numbers give the nuclear charges).
    radii : dict or None
        ``{(a, b): (r_in, r_out)}`` by species-index pair, a <= b (A).  ``None``: every pair
        gets ``r_out = default_r_out`` until a fit sets the radii from its training data.
    clamp_width : float
        w of the clamp (A): learned radial splines see r from ``r_out`` up and are frozen
        below ``r_out - w`` (kernels.h, ``snnp_clamped``); it must be below every r_out.
    auto : bool
        Whether ``fit`` may choose the radii from the training data (``from_data``); radii the
        user sets are kept (``auto=False``).
    """

    def __init__(self, species, radii=None, clamp_width=CLAMP_WIDTH, auto=None,
                 default_r_out=1.5, switch_width=SWITCH_WIDTH):
        from .filters import pair_keys
        self.species = [str(s) for s in species]
        unknown = [s for s in self.species if s not in atomic_numbers]
        if unknown:
            raise ValueError(f"the ZBL core needs chemical elements; {unknown} are not")
        self.Z = [atomic_numbers[s] for s in self.species]
        keys = pair_keys(len(self.species))
        self.auto = (radii is None) if auto is None else bool(auto)
        if radii is None:
            radii = {k: (default_r_out - switch_width, default_r_out) for k in keys}
        self.radii = {}
        for key in keys:
            value = radii.get(key, radii.get(key[::-1]))
            if value is None:
                raise ValueError(f"the ZBL core has no radii for species pair "
                                 f"{self.species[key[0]]}-{self.species[key[1]]}")
            r_in, r_out = (float(v) for v in value)
            if not (np.isfinite(r_in) and np.isfinite(r_out) and 0.0 < r_in < r_out):
                raise ValueError(f"ZBL core radii of {self.species[key[0]]}-"
                                 f"{self.species[key[1]]} need 0 < r_in < r_out, got "
                                 f"({r_in}, {r_out})")
            self.radii[key] = (r_in, r_out)
        self.clamp_width = float(clamp_width)
        if not (np.isfinite(self.clamp_width) and self.clamp_width > 0):
            raise ValueError(f"clamp_width must be a positive length, got {clamp_width}")
        shortest = min(r_out for _, r_out in self.radii.values())
        if self.clamp_width >= shortest:
            raise ValueError(f"clamp_width {self.clamp_width:g} A must be shorter than every "
                             f"r_out (the shortest is {shortest:g} A)")

    @classmethod
    def from_data(cls, species, images, switch_width=SWITCH_WIDTH, clamp_width=CLAMP_WIDTH,
                  cutoff=None):
        """Radii from the data: r_out at each pair's shortest distance in ``images``, r_in
        ``switch_width`` below it.  A pair the data never bring within ``cutoff`` takes the
        shortest r_out of the pairs that occur.  The result has ``auto=False``."""
        from .filters import pair_keys
        found = shortest_distances(species, images, cutoff)
        if not found:
            raise ValueError("the data have no pair of atoms to set the core's radii from")
        fallback = min(found.values())
        radii = {}
        for key in pair_keys(len(species)):
            r_out = found.get(key, fallback)
            radii[key] = (max(r_out - switch_width, 0.5 * r_out), r_out)
        return cls(species, radii, clamp_width=clamp_width, auto=False)

    def table(self):
        """The kernels' table (n_species**2, STRIDE), per ordered species pair."""
        n = len(self.species)
        out = np.zeros((n, n, STRIDE))
        for (a, b), (r_in, r_out) in self.radii.items():
            Za, Zb = self.Z[a], self.Z[b]
            row = np.array([Za * Zb * COULOMB, 1.0 / _screening(Za, Zb), r_in, r_out,
                            *_switch(Za, Zb, r_in, r_out), r_out - self.clamp_width,
                            self.clamp_width])
            out[a, b] = out[b, a] = row
        return out.reshape(n * n, STRIDE)

    def energy(self, r, a=0, b=0):
        """The core's energy and dE/dr for species indices a, b at distances r (NumPy)."""
        r_in, r_out = self.radii[(min(a, b), max(a, b))]
        return zbl_switched(r, self.Z[a], self.Z[b], r_in, r_out)

    @property
    def r_out(self):
        """The largest outer radius: from it up no pair feels the core or the clamp."""
        return max(r for _, r in self.radii.values())

    def to_dict(self):
        sp = self.species
        return {"type": "zbl", "clamp_width": self.clamp_width, "auto": self.auto,
                "radii": {f"{sp[a]}-{sp[b]}": [r_in, r_out]
                          for (a, b), (r_in, r_out) in self.radii.items()}}

    @classmethod
    def from_dict(cls, d, species):
        if d.get("type") != "zbl":
            raise ValueError(f"unknown core type {d.get('type')!r} (snnp knows 'zbl')")
        idx = {s: k for k, s in enumerate(species)}
        radii = {}
        for key, value in d["radii"].items():
            a, b = (idx[s] for s in key.split("-"))
            radii[(min(a, b), max(a, b))] = tuple(value)
        return cls(species, radii, clamp_width=d.get("clamp_width", CLAMP_WIDTH),
                   auto=bool(d.get("auto", False)))

    def copy(self):
        return ZBLCore.from_dict(self.to_dict(), self.species)

    def __eq__(self, other):
        return isinstance(other, ZBLCore) and self.to_dict() == other.to_dict() \
            and self.species == other.species

    def __repr__(self):
        sp = self.species
        pairs = ", ".join(f"{sp[a]}-{sp[b]}: {r_in:.3g}-{r_out:.3g}"
                          for (a, b), (r_in, r_out) in self.radii.items())
        return f"ZBLCore({pairs}, clamp_width={self.clamp_width:g})"
