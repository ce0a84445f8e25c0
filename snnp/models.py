"""The model ladder.  Rung 0, ``SplineMEAM``, is the LAMMPS ``meam/spline`` form.

Every model computes, for atom i of species a with neighbours j (species b) within the cutoff,

    e_i = 1/2 sum_j phi_ab(r_ij) + eps_a(G_i) + e0_a,   G_i = [R_i1..R_iKr, A_i1..A_iKa]

with radial filters R and angular filters A (docs/theory.md).  All of it is evaluated by the
shared C kernels; this module holds the splines, packs them into the kernels' block tables and
turns kernel output into energies, forces and stress (ASE conventions, docs/conventions.md).
"""
import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from . import _kernels
from .neighbors import NeighborList, check_geometry
from .splines import Spline

__all__ = ["Model", "SplineMEAM", "pair_index"]


def pair_index(a, b, n):
    """Index of the unordered species pair (a, b) in the order (0,0), (0,1)..(0,n-1), (1,1)..."""
    a, b = min(a, b), max(a, b)
    return a * n - a * (a - 1) // 2 + (b - a)


def _pack(blocks):
    """Pack blocks (lists of Splines sharing one knot grid) into the kernels' flat layout."""
    x0, h, nint, off, coef = [], [], [], [], []
    pos = 0
    for splines in blocks:
        first = splines[0]
        for s in splines[1:]:
            if (s.x0, s.x1, s.n_knots) != (first.x0, first.x1, first.n_knots):
                raise ValueError("splines of one filter bank must share their knot grid")
        C = np.stack([s.coefficients() for s in splines], axis=1)            # (n-1, K, 4)
        ext = np.array([[s.values[0], s.d0, s.values[-1], s.dN] for s in splines])
        data = np.concatenate([C.ravel(), ext.ravel()])
        x0.append(first.x0)
        h.append(first.h)
        nint.append(first.n_knots - 1)
        off.append(pos)
        coef.append(data)
        pos += data.size
    coef = np.concatenate(coef) if coef else np.zeros(0)
    return np.array(x0, float), np.array(h, float), np.array(nint), np.array(off), coef


class Model:
    """Shared behaviour of every rung: species handling, evaluation, ASE and file glue.

    Subclasses provide ``_tables()`` (the packed kernel tables), ``cutoff``, ``inner_cutoff``
    (shortest distance the radial splines describe), ``to_dict`` / ``_from_dict`` and
    ``n_params``.
    """

    def __init__(self, species, e0=None):
        species = [str(s) for s in species]
        if not species:
            raise ValueError("a model needs at least one species")
        if len(set(species)) != len(species):
            raise ValueError(f"species must be distinct, got {species}")
        self.species = species
        self.e0 = np.zeros(len(species)) if e0 is None else np.array(e0, dtype=float)
        if self.e0.shape != (len(species),):
            raise ValueError(f"e0 needs one value per species ({len(species)}), got {self.e0.shape}")
        #: raise when two atoms are closer than the radial splines' first knot
        self.check_short_distances = True
        self._cached_tables = None

    # -- species ---------------------------------------------------------------------------
    @property
    def n_species(self):
        return len(self.species)

    def species_indices(self, symbols):
        """Map chemical symbols to species indices, with a clear error for unknown elements."""
        lookup = {s: k for k, s in enumerate(self.species)}
        symbols = list(symbols)
        idx = np.fromiter((lookup.get(s, -1) for s in symbols), dtype=np.intc, count=len(symbols))
        self._raise_unknown(idx, symbols)
        return idx

    def _atoms_species(self, atoms):
        """Species indices of an ASE Atoms through its atomic numbers (no per-atom Python)."""
        if getattr(self, "_z_species", None) is None:
            lut = np.full(len(chemical_symbols), -1, dtype=np.intc)
            for k, s in enumerate(self.species):
                if s in atomic_numbers:
                    lut[atomic_numbers[s]] = k
            self._z_species = lut
        numbers = atoms.numbers
        idx = self._z_species[np.clip(numbers, 0, len(chemical_symbols) - 1)]
        if idx.min(initial=0) < 0:
            self._raise_unknown(idx, atoms.get_chemical_symbols())
        return idx

    def _raise_unknown(self, idx, symbols):
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            unknown = sorted({symbols[k] for k in bad})
            raise ValueError(f"the model knows only {self.species}; the structure contains "
                             f"{', '.join(unknown)} (first at atom {bad[0]})")

    # -- evaluation ------------------------------------------------------------------------
    def invalidate(self):
        """Call after changing splines in place so the kernel tables are rebuilt."""
        self._cached_tables = None

    @property
    def tables(self):
        if self._cached_tables is None:
            self._cached_tables = self._tables()
        return self._cached_tables

    def compute(self, atoms, properties=("energy", "forces", "stress"), neighbors=None):
        """Energy, per-atom energies, forces, stress and per-atom stresses of an ASE Atoms.

        ``properties`` may name energy, free_energy, energies, forces, stress, stresses.
        ``neighbors`` is an optional ``NeighborList`` kept between calls (the calculator keeps
        one with a Verlet skin).  Returns a dict in ASE units and sign conventions.
        """
        positions, cell, pbc = check_geometry(atoms.get_positions(), atoms.cell.array, atoms.pbc)
        species = self._atoms_species(atoms)
        if neighbors is None:
            neighbors = NeighborList(self.cutoff)
        elif neighbors.cutoff != self.cutoff:
            raise ValueError("neighbour list cutoff does not match the model cutoff")
        neighbors.update(positions, cell, pbc)
        want = set(properties)
        want_stress = bool(want & {"stress", "stresses"})
        volume = abs(np.linalg.det(cell))
        if want_stress and not volume > 1e-12:
            raise ValueError("stress needs a cell with nonzero volume; this structure's cell "
                             f"has volume {volume:.3g} A^3")
        out = self.tables.compute(positions, species, neighbors.offsets, neighbors.neighbors,
                                  neighbors.shift_vectors, forces="forces" in want,
                                  virial=want_stress, atom_virial="stresses" in want)
        self._check_distances(out, atoms)
        energies = out["energies"] + self.e0[species]
        energy = float(energies.sum())
        results = {"energy": energy, "free_energy": energy, "energies": energies}
        if "forces" in want:
            results["forces"] = out["forces"]
        if want_stress:
            W = out["virial"]
            results["stress"] = _voigt(0.5 * (W + W.T) / volume)
        if "stresses" in want:
            AW = out["atom_virial"]
            results["stresses"] = _voigt(0.5 * (AW + AW.transpose(0, 2, 1)) / volume)
        return results

    def _check_distances(self, out, atoms):
        if self.check_short_distances and out["rmin"] < self.inner_cutoff:
            i, j = out["rmin_pair"]
            raise ValueError(
                f"atoms {i} and {j} are {out['rmin']:.4g} A apart, closer than the "
                f"{self.inner_cutoff:.4g} A where this model's radial splines begin; energies "
                f"there are linear extrapolations. Set model.check_short_distances = False to "
                f"evaluate anyway.")

    def get_potential_energy(self, atoms):
        return self.compute(atoms, ("energy",))["energy"]

    def calculator(self, **kwargs):
        """An ASE calculator for this model (``snnp.SNNPCalculator``)."""
        from .calculator import SNNPCalculator
        return SNNPCalculator(self, **kwargs)

    # -- files -----------------------------------------------------------------------------
    def save(self, path, provenance=None):
        """Write the model as a versioned JSON file (atomically)."""
        from .io.modelfile import save_model
        save_model(self, path, provenance=provenance)

    def __eq__(self, other):
        return type(self) is type(other) and _deep_equal(self.to_dict(), other.to_dict())

    def __repr__(self):
        return (f"{type(self).__name__}(species={self.species}, cutoff={self.cutoff:.4g}, "
                f"n_params={self.n_params})")


def _voigt(s):
    """3x3 (or N x 3 x 3) tensor to Voigt order xx yy zz yz xz xy."""
    return np.stack([s[..., 0, 0], s[..., 1, 1], s[..., 2, 2],
                     s[..., 1, 2], s[..., 0, 2], s[..., 0, 1]], axis=-1)


def _deep_equal(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_deep_equal, a, b))
    return a == b


class SplineMEAM(Model):
    """Rung 0: spline-based MEAM, exactly LAMMPS ``pair_style meam/spline``.

        e_i = 1/2 sum_j phi_ab(r_ij) + U_a(n_i) - U_a(0) + e0_a
        n_i = sum_j rho_b(r_ij) + sum_{j<k} f_b(r_ij) f_c(r_ik) g_bc(cos theta_jik)

    for centre species a and neighbour species b, c (the multi-element form of Zhang and
    Trinkle).  ``phi`` and ``g`` are dicts keyed by species-index pairs (a, b) with a <= b;
    ``rho``, ``U`` and ``f`` are lists with one Spline per species.
    """

    def __init__(self, species, phi, rho, U, f=None, g=None, e0=None):
        super().__init__(species, e0)
        n = self.n_species
        pairs = [(a, b) for a in range(n) for b in range(a, n)]
        if (f is None) != (g is None):
            raise ValueError("give both f and g (angular term) or neither (EAM limit)")
        self.phi = {p: _as_spline(phi, p, "phi") for p in pairs}
        self.g = None if g is None else {p: _as_spline(g, p, "g") for p in pairs}
        for name, lst in (("rho", rho), ("U", U), ("f", f)):
            if lst is None:
                continue
            if len(lst) != n:
                raise ValueError(f"{name} needs one spline per species ({n}), got {len(lst)}")
            for s in lst:
                if not isinstance(s, Spline):
                    raise TypeError(f"{name} entries must be snnp.Spline objects, got {type(s)}")
        self.rho, self.U = list(rho), list(U)
        self.f = None if f is None else list(f)

    @property
    def has_angular(self):
        """False in the EAM limit (no f and g): the triplet loop is skipped entirely."""
        return self.f is not None

    # -- geometry of the potential -----------------------------------------------------------
    @property
    def radial_splines(self):
        return list(self.phi.values()) + self.rho + (self.f or [])

    @property
    def cutoff(self):
        """The largest last knot of phi, rho and f (LAMMPS's rule)."""
        return max(s.x1 for s in self.radial_splines)

    @property
    def inner_cutoff(self):
        """Shortest distance the radial splines describe (their smallest first knot)."""
        return min(s.x0 for s in self.radial_splines)

    @property
    def n_params(self):
        g = list(self.g.values()) if self.has_angular else []
        return sum(s.params.size for s in self.radial_splines + self.U + g)

    def _tables(self):
        n = self.n_species
        pairs = list(self.phi)
        npair = len(pairs)
        angular = self.has_angular
        blocks = [[self.phi[p]] for p in pairs] + [[s] for s in self.rho] + [[s] for s in self.U]
        if angular:
            blocks += [[s] for s in self.f] + [[self.g[p]] for p in pairs]
        x0, h, nint, off, coef = _pack(blocks)
        base_rho, base_U, base_f, base_g = npair, npair + n, npair + 2 * n, npair + 3 * n
        pidx = np.array([[pair_index(a, b, n) for b in range(n)] for a in range(n)]).ravel()
        none = np.full(n * n, -1)
        U0 = np.array([float(u(0.0)) for u in self.U])
        return _kernels.Tables(n, 1, int(angular), self.cutoff, x0, h, nint, off, coef, pidx,
                               np.arange(base_rho, base_rho + n),
                               np.arange(base_f, base_f + n) if angular else none[:n],
                               base_g + pidx if angular else none,
                               np.arange(base_U, base_U + n), U0)

    # -- LAMMPS files ------------------------------------------------------------------------
    @classmethod
    def from_lammps(cls, path, species=None):
        """Read a LAMMPS ``meam/spline`` file (old single-element or new multi-element format).

        Old-format files do not name their element: pass ``species=["Si"]``, or let it be taken
        from the file name when that starts with an element symbol (``Si_1.meam.spline``).
        """
        from .io.lammps import read_meam_spline
        d = read_meam_spline(path, species=species)
        return cls(d["species"], d["phi"], d["rho"], d["U"], d["f"], d["g"])

    def to_lammps(self, path, format="new", comment=None):
        """Write a LAMMPS ``meam/spline`` file; ``format="old"`` for the single-element layout."""
        from .io.lammps import write_meam_spline
        if np.any(self.e0 != 0):
            raise ValueError("LAMMPS meam/spline has no per-species reference energy e0; "
                             "this model has e0 = " + str(self.e0.tolist()))
        f, g = self.f, self.g
        if not self.has_angular:       # EAM limit: LAMMPS still wants f and g, zero them
            zero = Spline(-1.0, 1.0, [0.0, 0.0])
            f = [Spline(s.x0, s.x1, [0.0, 0.0]) for s in self.rho]
            g = {p: zero for p in self.phi}
        write_meam_spline(path, self.species, self.phi, self.rho, self.U, f, g,
                          format=format, comment=comment)

    # -- model files -------------------------------------------------------------------------
    def to_dict(self):
        n = self.n_species
        pk = lambda p: f"{self.species[p[0]]}-{self.species[p[1]]}"
        return {
            "species": self.species,
            "e0": self.e0.tolist(),
            "phi": {pk(p): _spline_dict(s) for p, s in self.phi.items()},
            "rho": [_spline_dict(s) for s in self.rho],
            "U": [_spline_dict(s) for s in self.U],
            "f": None if self.f is None else [_spline_dict(s) for s in self.f],
            "g": None if self.g is None else {pk(p): _spline_dict(s) for p, s in self.g.items()},
        }

    @classmethod
    def _from_dict(cls, d):
        species = d["species"]
        idx = {s: k for k, s in enumerate(species)}

        def pairs(m):
            out = {}
            for key, v in m.items():
                a, b = (idx[s] for s in key.split("-"))
                out[(min(a, b), max(a, b))] = _spline_from_dict(v)
            return out
        return cls(species, pairs(d["phi"]), [_spline_from_dict(v) for v in d["rho"]],
                   [_spline_from_dict(v) for v in d["U"]],
                   None if d["f"] is None else [_spline_from_dict(v) for v in d["f"]],
                   None if d["g"] is None else pairs(d["g"]), e0=d.get("e0"))


def _as_spline(mapping, key, name):
    a, b = key
    s = mapping.get((a, b), mapping.get((b, a)))
    if not isinstance(s, Spline):
        raise ValueError(f"{name} has no spline for species pair {key}")
    return s


def _spline_dict(s):
    return {"x0": s.x0, "x1": s.x1, "values": s.values.tolist(), "d0": s.d0, "dN": s.dN}


def _spline_from_dict(d):
    return Spline(d["x0"], d["x1"], d["values"], d["d0"], d["dN"])
