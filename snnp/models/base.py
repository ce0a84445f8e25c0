"""``Model``: what every rung of the ladder has, and where the rest of it lives.

This file holds construction (the parts and their checks), the model's shape (species,
filters, cutoffs, the short-range core and extrapolation grade) and the species lookup.  The
other concerns are mixins, one file each:

- ``params.py``   the flat parameter vector: layout, ``get_params`` / ``set_params``, groups,
                  and mapping a kernel gradient back onto the spline parameters
- ``tables.py``   packing the splines and network into the C kernels' tables (``model.tables``)
                  and their GPU copy; ``invalidate()`` after changing parameters in place
- ``evaluate.py`` ``compute`` (energy, forces, stress), ``descriptors``, distance checks
- ``files.py``    ``to_dict`` / ``from_dict``, ``save``, ``to_lammps_plugin``, ``copy``, ``==``

Fitting and the ASE calculator are the modules below the models (``snnp.training``,
``snnp.calculator``); ``fit``, ``score`` and ``calculator`` here only hand the model to them.
"""
import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from .. import training
from ..calculator import SNNPCalculator
from ..core import ZBLCore
from ..coverage import ExtrapolationGrade
from ..filters import FilterBank, pair_keys
from ..splines import Spline
from .evaluate import EvaluationMixin
from .files import FilesMixin
from .params import ParametersMixin
from .tables import KernelTablesMixin

__all__ = ["Model"]


class Model(ParametersMixin, KernelTablesMixin, EvaluationMixin, FilesMixin):
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

    @classmethod
    def _from_parts(cls, species, filters, pair=None, U=None, mlp=None, e0=None):
        """A ``cls`` built by the generic ``Model.__init__`` from the parts (the rungs' own
        constructors take them under other names: ``from_dict`` and ``presets`` use this)."""
        model = Model.__new__(cls)
        Model.__init__(model, species, filters, pair=pair, U=U, mlp=mlp, e0=e0)
        return model

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
        if grade is not None:
            if not isinstance(grade, ExtrapolationGrade):
                raise ValueError("extrapolation must be an snnp.ExtrapolationGrade or None")
            if grade.mean.shape != (self.n_species, self.filters.n_filters):
                raise ValueError(f"the extrapolation grade has shape {grade.mean.shape}; this "
                                 f"model has {self.n_species} species and "
                                 f"{self.filters.n_filters} filters")
        self._extrapolation = grade
        self.invalidate()

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

    # -- fitting and the calculator (snnp.training, snnp.calculator) -----------------------
    def fit(self, train, validation=None, **options):
        """Fit to an ``snnp.Dataset``; returns the model (see ``snnp.training.fit``)."""
        return training.fit(self, train, validation, **options)

    def score(self, dataset):
        """Errors on a Dataset: energy (meV/atom), force (eV/A) and stress (GPa) RMSE and MAE,
        overall and per group."""
        return training.errors(self, training.Batch(dataset.structures, self))

    def calculator(self, **kwargs):
        """An ASE calculator for this model (``snnp.SNNPCalculator``; ``device="gpu"`` runs
        it on the GPU)."""
        return SNNPCalculator(self, **kwargs)

    def __repr__(self):
        return (f"{type(self).__name__}(species={self.species}, filters={self.n_radial}+"
                f"{self.n_angular}, mlp={self.mlp.widths if self.mlp else None}, "
                f"cutoff={self.cutoff:.4g}, n_params={self.n_params})")
