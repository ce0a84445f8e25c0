"""The model ladder: one class hierarchy from spline-MEAM to the spline neural-network potential.

Every model computes, for atom i of species a with neighbours j (species b) within the cutoff,

    e_i = 1/2 sum_j phi_ab(r_ij) + eps_a(G_i) + e0_a,    G_i = [R_i1..R_iKr, A_i1..A_iKa]

from three parts (docs/theory.md): an optional pair term phi, a ``FilterBank`` giving G_i, and an
embedding eps: a spline U of the density n_i = R_i1 + A_i1 (rung 0, ``SplineMEAM``), U plus a
small MLP of G_i (rung 1, ``SplineMEAMNN``), or an MLP alone (rung 2, ``SNNP``).  All of it runs
in the shared C kernels; this module holds the parameters, packs them for the kernels and turns
kernel output into energies, forces and stress (ASE conventions, docs/conventions.md).
"""
import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from . import _kernels
from .backends import check_device, new_neighbor_list
from .embedding import MLPEmbedding
from .filters import FilterBank, pair_keys, shortened
from .neighbors import check_geometry
from .splines import Spline

__all__ = ["Model", "SplineMEAM", "SplineMEAMNN", "SNNP", "presets", "pair_index"]


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
        C = np.stack([s.coefficients() for s in splines], axis=2)            # (n-1, 4, K)
        ext = np.array([[s.values[0], s.d0, s.values[-1], s.dN] for s in splines]).T   # (4, K)
        data = np.concatenate([C.ravel(), ext.ravel()])
        x0.append(first.x0)
        h.append(first.h)
        nint.append(first.n_knots - 1)
        off.append(pos)
        coef.append(data)
        pos += data.size
    coef = np.concatenate(coef) if coef else np.zeros(0)
    return np.array(x0, float), np.array(h, float), np.array(nint), np.array(off), coef


#: top-level keys of a model dict that may be null (the part is absent)
_OPTIONAL_PARTS = ("pair", "U", "mlp", "core", "extrapolation")


def nonfinite_entry(obj, path="", optional=()):
    """The first number of a JSON-like ``obj`` (dicts, lists, numbers) that is NaN, infinite
    or null, as (its path, e.g. "e0[0]" or "mlp.weights[0][1].W[2][3]", and "NaN", "infinite"
    or "null"); None when every number is finite.  ``optional``: keys of ``obj`` itself whose
    value may be null (a part the model lacks)."""
    if obj is None:
        return path, "null"
    if isinstance(obj, dict):
        for key, value in obj.items():
            if value is None and key in optional:
                continue
            found = nonfinite_entry(value, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for k, value in enumerate(obj):
            found = nonfinite_entry(value, f"{path}[{k}]")
            if found:
                return found
    elif isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return path, "NaN" if np.isnan(obj) else "infinite"
    return None


def check_finite_model_dict(d, where="model parameters"):
    """Refuse a model dict (``Model.to_dict``) holding a NaN, infinite or null number: a
    ValueError "<where>: <path> is NaN" names the first one."""
    found = nonfinite_entry(d, optional=_OPTIONAL_PARTS) if isinstance(d, dict) else None
    if found:
        raise ValueError(f"{where}: {found[0]} is {found[1]}")


def _voigt(s):
    """3x3 (or N x 3 x 3) tensor to Voigt order xx yy zz yz xz xy."""
    return np.stack([s[..., 0, 0], s[..., 1, 1], s[..., 2, 2],
                     s[..., 1, 2], s[..., 0, 2], s[..., 0, 1]], axis=-1)


class Model:
    """One rung of the ladder: pair term + filter bank + embedding (spline U and/or MLP) + e0.

    Subclasses fix which embedding parts exist; the evaluation, files and calculator are shared.
    """

    #: which embedding parts the class requires: "U", "mlp" or both
    embedding_parts = ()

    def __init__(self, species, filters, pair=None, U=None, mlp=None, e0=None):
        species = [str(s) for s in species]
        if not species:
            raise ValueError("a model needs at least one species")
        if len(set(species)) != len(species):
            raise ValueError(f"species must be distinct, got {species}")
        self.species = species
        n = len(species)
        if not isinstance(filters, FilterBank) or filters.species != species:
            raise ValueError("filters must be a FilterBank over the model's species")
        self.filters = filters
        self.pair = None
        if pair is not None:
            self.pair = {}
            for key in pair_keys(n):
                s = pair.get(key, pair.get(key[::-1]))
                if not isinstance(s, Spline):
                    raise ValueError(f"pair term has no spline for species pair {key}")
                self.pair[key] = s
            if filters.pinned and any(s.values[-1] != 0 or s.dN != 0 for s in self.pair.values()):
                raise ValueError("pinned models need pair splines ending with value 0, slope 0")
        for part, value in (("U", U), ("mlp", mlp)):
            if (part in self.embedding_parts) != (value is not None):
                need = "needs" if part in self.embedding_parts else "takes no"
                raise ValueError(f"{type(self).__name__} {need} {part!r} embedding part")
        if U is not None:
            if len(U) != n or not all(isinstance(s, Spline) for s in U):
                raise ValueError(f"U needs one Spline per species ({n})")
            if filters.n_radial < 1:
                raise ValueError("the spline embedding U needs at least one radial filter")
        self.U = None if U is None else list(U)
        if mlp is not None and (mlp.n_species != n or mlp.n_inputs != filters.n_filters):
            raise ValueError(f"MLP must have {n} species and {filters.n_filters} inputs, "
                             f"got {mlp.n_species} and {mlp.n_inputs}")
        self.mlp = mlp
        self.e0 = np.zeros(n) if e0 is None else np.array(e0, dtype=float)
        if self.e0.shape != (n,):
            raise ValueError(f"e0 needs one value per species ({n}), got {self.e0.shape}")
        #: raise (instead of warning through the calculator) when two atoms come closer than
        #: the data reached (``short_range_limit``); atoms on top of each other always raise
        self.check_short_distances = False
        self.provenance = {}
        self._cached_tables = None
        self._cached_device = None
        self._core = None
        self._extrapolation = None

    # -- structure -------------------------------------------------------------------------
    @property
    def n_species(self):
        return len(self.species)

    @property
    def n_radial(self):
        return self.filters.n_radial

    @property
    def n_angular(self):
        return self.filters.n_angular

    def _radial_splines(self):
        return (list(self.pair.values()) if self.pair else []) + self.filters.radial_splines()

    @property
    def cutoff(self):
        """The largest last knot of the pair and radial splines (LAMMPS's rule)."""
        return max(s.x1 for s in self._radial_splines())

    @property
    def inner_cutoff(self):
        """Shortest distance the radial splines describe (their smallest first knot)."""
        return min(s.x0 for s in self._radial_splines())

    @property
    def short_range_limit(self):
        """Below this distance the model is outside its data: the core's smallest r_out (the
        shortest training distance of any pair), or without a core the splines' first knot."""
        if self.core is not None:
            return min(r for _, r in self.core.radii.values())
        return self.inner_cutoff

    @property
    def core(self):
        """The screened-nuclear core and clamp of the learned terms (``snnp.core.ZBLCore``),
        or None (LAMMPS meam/spline files and version-1 model files have none)."""
        return self._core

    @core.setter
    def core(self, core):
        from .core import ZBLCore
        if core is not None and (not isinstance(core, ZBLCore) or core.species != self.species):
            raise ValueError("the core must be a ZBLCore over the model's species")
        if core is not None and core.r_out >= self.cutoff:
            raise ValueError(f"the core's outer radius {core.r_out:.4g} A must lie inside the "
                             f"cutoff {self.cutoff:.4g} A")
        self._core = core
        self.invalidate()

    def set_core(self, core):
        """Attach a ``snnp.core.ZBLCore`` (or None to remove it); returns the model."""
        self.core = core
        return self

    @property
    def extrapolation(self):
        """The extrapolation grade reference (``snnp.ExtrapolationGrade``) or None."""
        return self._extrapolation

    @extrapolation.setter
    def extrapolation(self, grade):
        from .coverage import ExtrapolationGrade
        if grade is not None:
            if not isinstance(grade, ExtrapolationGrade):
                raise ValueError("extrapolation must be an snnp.ExtrapolationGrade or None")
            if grade.mean.shape != (self.n_species, self.filters.n_filters):
                raise ValueError(f"the extrapolation grade has shape {grade.mean.shape}; this "
                                 f"model has {self.n_species} species and "
                                 f"{self.filters.n_filters} filters")
        self._extrapolation = grade
        self.invalidate()

    @property
    def n_params(self):
        """Number of free parameters: splines (less pinned ends), MLP weights, e0."""
        return self.param_layout()[-1][1].stop

    # -- parameter vector --------------------------------------------------------------------
    #: parameter groups in the order of the flat vector
    PARAM_GROUPS = ("e0", "pair", "radial", "angular", "U", "mlp")

    def _spline_entries(self):
        """(group, spline, pinned) for every spline, in the order of the parameter vector."""
        pinned = self.filters.pinned
        out = [("pair", self.pair[k], pinned) for k in pair_keys(self.n_species)] if self.pair else []
        out += [("radial", s, pinned) for bank in self.filters.rho for s in bank]
        if self.filters.f is not None:
            out += [("angular", s, pinned) for bank in self.filters.f for s in bank]
            out += [("angular", s, False) for k in pair_keys(self.n_species)
                    for s in self.filters.g[k]]
        out += [("U", s, False) for s in (self.U or [])]
        return out

    def param_layout(self):
        """Slices of the flat parameter vector: list of (group, slice) in vector order."""
        sizes = [("e0", self.n_species)]
        sizes += [(g, s.params.size - (2 if pin else 0)) for g, s, pin in self._spline_entries()]
        if self.mlp is not None:
            sizes.append(("mlp", self.mlp.n_params))
        out, pos = [], 0
        for g, n in sizes:
            out.append((g, slice(pos, pos + n)))
            pos += n
        return out

    def get_params(self):
        """All free parameters as one flat vector (groups in ``PARAM_GROUPS`` order)."""
        parts = [self.e0]
        for _, s, pin in self._spline_entries():
            p = s.params
            parts.append(np.concatenate([p[:-3], p[-2:-1]]) if pin else p)
        if self.mlp is not None:
            parts.append(np.concatenate(self.mlp.flat_weights()))
        return np.concatenate(parts)

    def set_params(self, vector):
        """Set every free parameter from a flat vector laid out as ``get_params``."""
        vector = np.asarray(vector, dtype=float)
        layout = self.param_layout()
        if vector.shape != (layout[-1][1].stop,):
            raise ValueError(f"parameter vector needs {layout[-1][1].stop} values, got {vector.shape}")
        self.e0 = vector[layout[0][1]].copy()
        for (group, s, pin), (_, sl) in zip(self._spline_entries(), layout[1:]):
            v = vector[sl]
            if pin:     # values except the last (0), d0; dN stays 0
                s.values[:-1] = v[:-1]
                s.d0 = float(v[-1])
            else:
                s.values[:] = v[:-2]
                s.d0, s.dN = float(v[-2]), float(v[-1])
        if self.mlp is not None:
            flat = vector[layout[-1][1]]
            per = self.mlp.n_params // self.n_species
            for a, layers in enumerate(self.mlp.weights):
                chunk, pos = flat[a * per:(a + 1) * per], 0
                new = []
                for W, b in layers:
                    W = chunk[pos:pos + W.size].reshape(W.shape)
                    pos += W.size
                    new.append((W.copy(), chunk[pos:pos + b.size].copy()))
                    pos += b.size
                self.mlp.weights[a] = new
        self.invalidate()

    def param_groups(self):
        """Boolean masks over the parameter vector, one per group."""
        n = self.param_layout()[-1][1].stop
        masks = {g: np.zeros(n, bool) for g in self.PARAM_GROUPS}
        for g, sl in self.param_layout():
            masks[g][sl] = True
        return masks

    def _data_grad_to_params(self, data_grad):
        """Map a gradient over the kernels' packed spline data to the spline parameters.

        Returns a list aligned with ``_spline_entries`` (None for splines not in the kernel
        tables' gradient, i.e. U, whose gradient the embedding computes)."""
        from .splines import coefficient_matrix
        blocks, _ = self._block_layout()
        # offsets in _pack's layout, from the knot counts alone (no coefficients needed)
        sizes = [((b[0].n_knots - 1) * 4 + 4) * len(b) for b in blocks]
        off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        by_id = {}
        for b, splines in enumerate(blocks):
            n = splines[0].n_knots
            K = len(splines)
            C = data_grad[off[b]:off[b] + (n - 1) * K * 4].reshape(n - 1, 4, K)
            ext = data_grad[off[b] + (n - 1) * K * 4: off[b] + (n - 1) * K * 4 + 4 * K].reshape(4, K)
            M = coefficient_matrix(n, splines[0].h)
            for k, s in enumerate(splines):
                g = np.einsum("ic,icp->p", C[:, :, k], M)
                g[0] += ext[0, k]
                g[n] += ext[1, k]
                g[n - 1] += ext[2, k]
                g[n + 1] += ext[3, k]
                by_id[id(s)] = g
        return [by_id.get(id(s)) for _, s, _ in self._spline_entries()]

    # -- species ---------------------------------------------------------------------------
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
        idx = self._z_species[np.clip(atoms.numbers, 0, len(chemical_symbols) - 1)]
        if idx.min(initial=0) < 0:
            self._raise_unknown(idx, atoms.get_chemical_symbols())
        return idx

    def _raise_unknown(self, idx, symbols):
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            unknown = sorted({symbols[k] for k in bad})
            raise ValueError(f"the model knows only {self.species}; the structure contains "
                             f"{', '.join(unknown)} (first at atom {bad[0]})")

    # -- kernel tables ---------------------------------------------------------------------
    def invalidate(self):
        """Call after changing parameters in place so the kernel tables are rebuilt."""
        self._cached_tables = None
        self._cached_device = None

    def __getstate__(self):
        """Pickle and deep-copy without the compiled kernel tables and GPU copies (extension
        objects that cannot be pickled); they are rebuilt on the next evaluation."""
        state = self.__dict__.copy()
        state["_cached_tables"] = None
        state["_cached_device"] = None
        return state

    @property
    def tables(self):
        if self._cached_tables is None:
            self._cached_tables = self._tables()
        return self._cached_tables

    def _block_layout(self):
        """Blocks in kernel order and the index of each part's first block."""
        n = self.n_species
        pairs = pair_keys(n)
        blocks, first = [], {}
        if self.pair is not None:
            first["pair"] = len(blocks)
            blocks += [[self.pair[p]] for p in pairs]
        first["rho"] = len(blocks)
        blocks += self.filters.rho
        if self.filters.f is not None:
            first["f"] = len(blocks)
            blocks += self.filters.f
            first["g"] = len(blocks)
            blocks += [self.filters.g[p] for p in pairs]
        if self.U is not None:
            first["U"] = len(blocks)
            blocks += [[s] for s in self.U]
        return blocks, first

    def _tables(self):
        n = self.n_species
        blocks, first = self._block_layout()
        x0, h, nint, off, coef = _pack(blocks)
        pidx = np.array([[pair_index(a, b, n) for b in range(n)] for a in range(n)]).ravel()
        per_species = lambda part: (first[part] + np.arange(n)) if part in first else np.full(n, -1)
        per_pair = lambda part: (first[part] + pidx) if part in first else np.full(n * n, -1)
        U0 = np.array([float(u(0.0)) for u in self.U]) if self.U is not None else np.zeros(n)
        return _kernels.Tables(n, self.n_radial, self.n_angular, self.cutoff, x0, h, nint, off,
                               coef, per_pair("pair"), per_species("rho"), per_species("f"),
                               per_pair("g"), per_species("U"), U0,
                               mlp=self.mlp.kernel_spec() if self.mlp is not None else None,
                               core=None if self.core is None else self.core.table(),
                               grade=None if self.extrapolation is None
                               else self.extrapolation.kernel_reference())

    def _device_model(self):
        """This model's tables on the GPU (snnp.backends.gpu), built once per parameter set."""
        if self._cached_device is None:
            from .backends import gpu
            self._cached_device = gpu.DeviceModel(self)
        return self._cached_device

    # -- evaluation ------------------------------------------------------------------------
    def _prepare(self, atoms, neighbors, device="cpu"):
        positions, cell, pbc = check_geometry(atoms.get_positions(), atoms.cell.array, atoms.pbc)
        species = self._atoms_species(atoms)
        if neighbors is None:
            neighbors = new_neighbor_list(self.cutoff, device=device)
        elif neighbors.cutoff != self.cutoff:
            raise ValueError("neighbour list cutoff does not match the model cutoff")
        neighbors.update(positions, cell, pbc)
        return positions, cell, species, neighbors

    def compute(self, atoms, properties=("energy", "forces", "stress"), neighbors=None,
                device="cpu", strict=None):
        """Energy, per-atom energies, forces, stress and per-atom stresses of an ASE Atoms.

        ``properties`` may name energy, free_energy, energies, forces, stress, stresses and
        extrapolation (per-atom grades, with "max_extrapolation"; needs
        ``model.extrapolation``).  Results also hold "closest_pair" (distance, i, j) when two
        atoms are closer than ``short_range_limit``; ``strict=True`` (default:
        ``model.check_short_distances``) raises instead.  Atoms on top of each other raise.
        ``neighbors`` is an optional ``NeighborList`` kept between calls (the calculator keeps
        one with a Verlet skin; ``snnp.new_neighbor_list(cutoff, skin, device)`` makes the
        right kind).  ``device``: "cpu" (compiled C, OpenMP) or "gpu" (the same kernels
        through CuPy, ``snnp.backends.gpu``).  Returns a dict in ASE units and sign conventions.
        """
        check_device(device)
        positions, cell, species, nl = self._prepare(atoms, neighbors, device)
        want = set(properties)
        want_stress = bool(want & {"stress", "stresses"})
        volume = abs(np.linalg.det(cell))
        if want_stress and not volume > 1e-12:
            raise ValueError("stress needs a cell with nonzero volume; this structure's cell "
                             f"has volume {volume:.3g} A^3")
        want_grade = "extrapolation" in want or "max_extrapolation" in want
        if want_grade and self.extrapolation is None:
            raise ValueError("this model carries no extrapolation grade reference; attach one "
                             "with model.extrapolation = snnp.ExtrapolationGrade.from_data("
                             "model, training_data) (fits do it)")
        if device == "gpu":
            from .backends import gpu
            out = gpu.compute(self, positions, species, nl, "forces" in want, want_stress,
                              "stresses" in want, grade=want_grade)
        else:
            out = self.tables.compute(positions, species, nl.offsets, nl.neighbors,
                                      nl.shift_vectors, forces="forces" in want,
                                      virial=want_stress, atom_virial="stresses" in want,
                                      grade=want_grade)
        close = self._check_distances(out, strict)
        energies = out["energies"] + self.e0[species]
        energy = float(energies.sum())
        results = {"energy": energy, "free_energy": energy, "energies": energies}
        if close is not None:
            results["closest_pair"] = close
        if want_grade:
            results["extrapolation"] = out["grade"]
            results["max_extrapolation"] = float(out["grade"].max(initial=0.0))
        if "forces" in want:
            results["forces"] = out["forces"]
        if want_stress:
            W = out["virial"]
            results["stress"] = _voigt(0.5 * (W + W.T) / volume)
        if "stresses" in want:
            AW = out["atom_virial"]
            results["stresses"] = _voigt(0.5 * (AW + AW.transpose(0, 2, 1)) / volume)
        return results

    def descriptors(self, atoms, neighbors=None):
        """The filter values G_i (N, K_r + K_a) of every atom: what the embedding sees."""
        positions, _, species, nl = self._prepare(atoms, neighbors)
        out = self.tables.compute(positions, species, nl.offsets, nl.neighbors, nl.shift_vectors,
                                  mode=_kernels.MODE_DESCRIPTORS, forces=False, virial=False,
                                  descriptors=True)
        self._check_distances(out, strict=False)
        return out["G"][:, :self.filters.n_filters]

    def embedding_energy(self, G, species=0):
        """Embedding energy eps(G) and its gradient for filter rows G of one species (or array)."""
        G = np.atleast_2d(np.asarray(G, dtype=float))
        sp = np.broadcast_to(np.asarray(species), (len(G),))
        return self.tables.embed(sp, G)

    def _check_distances(self, out, strict=None):
        """Raise for coincident atoms; for a pair closer than ``short_range_limit`` return
        (distance, i, j), or raise when strict."""
        i, j = out["rmin_pair"]
        if out["rmin"] == 0.0:
            raise ValueError(f"atoms {i} and {j} sit at the same position (or on a periodic "
                             "image of each other)")
        limit = self.short_range_limit
        if not out["rmin"] < limit:
            return None
        strict = self.check_short_distances if strict is None else strict
        if strict:
            where = ("the ZBL core and clamped learned terms act there" if self.core is not None
                     else "energies there are linear extrapolations of the splines")
            raise ValueError(
                f"atoms {i} and {j} are {out['rmin']:.4g} A apart, closer than the "
                f"{limit:.4g} A this model's data reach; {where}. Use strict=False (or "
                f"model.check_short_distances = False) to evaluate anyway.")
        return (float(out["rmin"]), int(i), int(j))

    def fit(self, train, validation=None, **options):
        """Fit to an ``snnp.Dataset``; returns the model (see ``snnp.training.fit``)."""
        from .training import fit
        return fit(self, train, validation, **options)

    def score(self, dataset):
        """Errors on a Dataset: energy (meV/atom), force (eV/A) and stress (GPa) RMSE and MAE,
        overall and per group."""
        from .training import Batch, errors
        return errors(self, Batch(dataset.structures, self))

    def get_potential_energy(self, atoms):
        return self.compute(atoms, ("energy",))["energy"]

    def calculator(self, **kwargs):
        """An ASE calculator for this model (``snnp.SNNPCalculator``; ``device="gpu"`` runs
        it on the GPU)."""
        from .calculator import SNNPCalculator
        return SNNPCalculator(self, **kwargs)

    # -- files -----------------------------------------------------------------------------
    def save(self, path, provenance=None):
        """Write the model as a versioned JSON file (atomically)."""
        from .io.modelfile import save_model
        save_model(self, path, provenance=provenance)

    def to_lammps_plugin(self, path):
        """Write the kernel-table file that LAMMPS ``pair_style snnp`` reads (docs/lammps.md)."""
        from .io.lammps_snnp import write_kernel_tables
        write_kernel_tables(self, path)

    def to_dict(self):
        sp = self.species
        return {
            "species": sp,
            "e0": self.e0.tolist(),
            "pair": None if self.pair is None else
            {f"{sp[a]}-{sp[b]}": s.to_dict() for (a, b), s in self.pair.items()},
            "filters": self.filters.to_dict(),
            "U": None if self.U is None else [s.to_dict() for s in self.U],
            "mlp": None if self.mlp is None else self.mlp.to_dict(),
            "core": None if self.core is None else self.core.to_dict(),
            "extrapolation": None if self.extrapolation is None else self.extrapolation.to_dict(),
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild a model from ``to_dict``; a NaN, infinite or null number anywhere in its
        parameters is a ValueError naming its path (e.g. "e0[0] is NaN")."""
        check_finite_model_dict(d)
        species = d["species"]
        idx = {s: k for k, s in enumerate(species)}
        pair = None
        if d.get("pair") is not None:
            pair = {}
            for key, v in d["pair"].items():
                a, b = (idx[s] for s in key.split("-"))
                pair[(min(a, b), max(a, b))] = Spline.from_dict(v)
        model = Model.__new__(cls)
        Model.__init__(model, species, FilterBank.from_dict(d["filters"], species), pair=pair,
                       U=None if d.get("U") is None else [Spline.from_dict(v) for v in d["U"]],
                       mlp=None if d.get("mlp") is None else MLPEmbedding.from_dict(d["mlp"]),
                       e0=d.get("e0"))
        if d.get("core") is not None:
            from .core import ZBLCore
            model.core = ZBLCore.from_dict(d["core"], species)
        if d.get("extrapolation") is not None:
            from .coverage import ExtrapolationGrade
            model.extrapolation = ExtrapolationGrade.from_dict(d["extrapolation"])
        return model

    def copy(self):
        return type(self).from_dict(self.to_dict())

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return (f"{type(self).__name__}(species={self.species}, filters={self.n_radial}+"
                f"{self.n_angular}, mlp={self.mlp.widths if self.mlp else None}, "
                f"cutoff={self.cutoff:.4g}, n_params={self.n_params})")


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
        from .io.lammps import read_meam_spline
        d = read_meam_spline(path, species=species)
        return cls(d["species"], d["phi"], d["rho"], d["U"], d["f"], d["g"])

    def to_lammps(self, path, format="new", comment=None, drop_e0=False):
        """Write a LAMMPS ``meam/spline`` file; ``format="old"`` for the single-element layout.

        ``meam/spline`` has no per-species reference energy: a fitted model's e0 can only be
        left out (``drop_e0=True``), which shifts LAMMPS energies by -e0 per atom of each species
        and leaves forces and stresses unchanged."""
        from .io.lammps import write_meam_spline
        if np.any(self.e0 != 0) and not drop_e0:
            raise ValueError("LAMMPS meam/spline has no per-species reference energy e0; this "
                             "model has e0 = " + str(self.e0.tolist()) + " eV. Pass "
                             "drop_e0=True (snnp export --drop-e0) to write it without: LAMMPS "
                             "energies are then snnp's minus e0 per atom (higher where e0 < 0), "
                             "forces and stresses equal")
        if self.pair is None:
            raise ValueError("LAMMPS meam/spline needs a pair term phi; this model has none")
        if self.core is not None:
            import warnings
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
        ``pair_style hybrid/overlay meam/spline zbl r_in r_out`` and one ``pair_coeff i j zbl
        Z_i Z_j`` per type pair (types numbered as the species).  pair_style zbl has one r_in,
        r_out for all pairs, so a model whose pairs differ gets the first pair's."""
        from ase.data import atomic_numbers
        r_in, r_out = self.core.radii[(0, 0)]
        z = [atomic_numbers[s] for s in self.species]
        coeffs = "; ".join(f"pair_coeff {a + 1} {b + 1} zbl {z[a]} {z[b]}"
                           for a in range(self.n_species) for b in range(a, self.n_species))
        return (f"pair_style hybrid/overlay meam/spline zbl {r_in:.10g} {r_out:.10g}; "
                f"pair_coeff * * meam/spline FILE {' '.join(self.species)}; {coeffs}")


class SplineMEAMNN(Model):
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


class SNNP(Model):
    """Rung 2: the spline-based neural-network potential, eps_a(G) = MLP_a(G) - MLP_a(0)."""

    embedding_parts = ("mlp",)

    def __init__(self, species, filters, mlp, pair=None, e0=None):
        super().__init__(species, filters, pair=pair, mlp=mlp, e0=e0)

    @classmethod
    def from_spline_meam(cls, model, n_radial=12, n_angular=4, widths=(16, 16),
                         activation="tanh", seed=0, data=None, distil_iter=500,
                         angular_cutoff=None):
        """Climb from a fitted rung 0: its radial and angular filters become filters 1 of the
        bank (more are added on the same knot grids), its pair term and e0 are kept.
        ``angular_cutoff`` (shorter than rung 0's f): every f_k, rung 0's included (tapered to
        zero there), ends at it, so fewer pairs enter triplets and angular filters cost less.

        With ``data`` (a Dataset or a list of Atoms) the network is first fitted to rung 0's
        embedding U(R_1 + A_1) - U(0) on those atoms (``MLPEmbedding.distil``), so the s-NNP
        starts where rung 0 ended; ``model.distil_misfit`` holds the RMS misfit (eV/atom).
        Without data the network starts at zero (the pair term alone plus e0)."""
        def added(old_bank, k_total, kind):
            """Filters 2..K on the grid of rung 0's filter, pinned to zero at that grid's end
            (a file's filter may end before the cutoff: the new ones must not continue)."""
            old = old_bank[0]
            if k_total <= 1:
                return []
            if kind == "g":
                fresh = FilterBank.initial(["X"], 1, k_total, 2.0, 1.0, n_knots_angular=old.n_knots)
                src = fresh.g[(0, 0)]
                return [Spline(old.x0, old.x1, s(old.knots), float(s(np.array([old.x0]), True)[1][0]),
                               float(s(np.array([old.x1]), True)[1][0])) for s in src[1:]]
            fresh = FilterBank.initial(["X"], k_total, k_total, old.x1, old.x0,
                                       n_knots_radial=old.n_knots)
            return [s.copy() for s in (fresh.rho[0] if kind == "rho" else fresh.f[0])[1:]]

        if data is not None and model.U is None:
            raise ValueError("distilling needs a rung-0 model with an embedding U")
        rho = [[old[0].copy()] + added(old, n_radial, "rho") for old in model.filters.rho]
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
                f.append([first] + added([first], n_angular, "f"))
            g = {k: [old[0].copy()] + added(old, n_angular, "g") for k, old in model.filters.g.items()}
        filters = FilterBank(model.species, rho, f, g, pinned=model.filters.pinned)
        mlp = MLPEmbedding(model.n_species, n_radial + n_angular, widths, activation, seed=seed)
        pair = None if model.pair is None else {k: v.copy() for k, v in model.pair.items()}
        out = cls(model.species, filters, mlp, pair=pair, e0=model.e0.copy())
        out.core = None if model.core is None else model.core.copy()
        if data is not None:
            images = [getattr(item, "atoms", item) for item in data]
            G = np.vstack([out.descriptors(a) for a in images])
            species = np.concatenate([out._atoms_species(a) for a in images])
            n = G[:, 0] + (G[:, n_radial] if n_angular else 0.0)
            target = np.empty(len(G))
            for a, U in enumerate(model.U):
                rows = species == a
                target[rows] = U(n[rows]) - U(np.array([0.0]))[0]
            out.distil_misfit = mlp.distil(G, species, target, max_iter=distil_iter)
            out.invalidate()
        return out


#: the ladder, from classical to machine-learned: name -> (class, K_r, K_a, hidden widths).
#: Radial filters cost one spline per pair, angular ones one per triplet, so the s-NNPs carry
#: more radial than angular filters (costs per MD step: docs/theory.md).
LADDER = {
    "smeam": (SplineMEAM, 1, 1, None),
    "smeam_nn": (SplineMEAMNN, 1, 1, (8,)),
    "snnp_small": (SNNP, 2, 2, (8,)),
    "snnp_medium": (SNNP, 12, 4, (16, 16)),
    "snnp_large": (SNNP, 16, 8, (32, 32)),
}


def presets(species=("X",), cutoff=5.0, r_min=1.5, activation="tanh", seed=0,
            angular_cutoff=None, core=True):
    """The ladder presets as unfitted models, in order from s-MEAM to large s-NNPs.

    Returns a dict name -> model; ``model.n_params`` gives each preset's size.  All presets
    have a pinned pair term and start from ``FilterBank.initial`` filters; MLPs start with a zero
    output layer and U with zero values, so an unfitted model has zero energy.
    ``angular_cutoff``: where every preset's angular filters f_k end (default: the cutoff).
    Pairs beyond it enter no triplet: the three-body terms see only the nearer neighbours, as
    in Lenosky's Si meam/spline (f ends at 3.5 A, the pair term at 4.5 A), and every rung gets
    cheaper.  Rungs 0 and 1 stay in the meam/spline form (a spline may end before the cutoff).
    ``core``: give every preset of chemical elements a ZBL core (``snnp.ZBLCore``) whose radii
    ``fit`` chooses from the training data (until then r_out = r_min); False: none.
    """
    from .core import ZBLCore
    from .training import _elements
    species = list(species)
    n = len(species)
    out = {}
    for name, (cls, K_r, K_a, widths) in LADDER.items():
        filters = FilterBank.initial(species, K_r, K_a, cutoff, r_min,
                                     angular_cutoff=angular_cutoff)
        pair = {k: Spline(r_min, cutoff, np.zeros(12)) for k in pair_keys(n)}
        U = [Spline(-1.0, 10.0, np.zeros(10)) for _ in species] if cls is not SNNP else None
        mlp = (MLPEmbedding(n, K_r + K_a, widths, activation, seed=seed)
               if widths is not None else None)
        if cls is SplineMEAM:
            model = Model.__new__(SplineMEAM)
            Model.__init__(model, species, filters, pair=pair, U=U)
        elif cls is SplineMEAMNN:
            model = SplineMEAMNN(species, filters, U, mlp, pair=pair)
        else:
            model = SNNP(species, filters, mlp, pair=pair)
        if core and _elements(species):
            model.core = ZBLCore(species, default_r_out=r_min)
        out[name] = model
    return out
