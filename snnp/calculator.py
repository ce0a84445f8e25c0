"""ASE calculator around any snnp model: it only adapts the model's arrays to ASE."""
import os
import threading
import warnings

from ase.calculators.calculator import (Calculator, PropertyNotImplementedError,
                                        all_changes)

from .backends import new_neighbor_list

__all__ = ["SNNPCalculator", "CloseApproachWarning", "StressNotDefinedError"]


class CloseApproachWarning(UserWarning):
    """Two atoms came closer than the model's training data reached."""


class StressNotDefinedError(PropertyNotImplementedError, ValueError):
    """Stress was asked of a structure whose cell has no volume (a molecule or cluster).

    ASE's ``PropertyNotImplementedError``, and a ``ValueError`` as ``Model.compute`` raises."""


class SNNPCalculator(Calculator):
    """ASE calculator for an snnp model.

    Parameters
    ----------
    model : snnp.Model, str or path
        Any rung of the ladder, or what ``snnp.load`` reads: a model file or a zoo name
        ("Si/snnp_small").
    skin : float
        Verlet skin in Angstrom: the neighbour list is reused between calls until an atom has
        moved more than ``skin / 2`` (MD and relaxations call the calculator every step).
    device : str
        "cpu" or "gpu".
    strict : bool
        Raise ``ValueError`` when two atoms come closer than ``model.short_range_limit`` (the
        shortest distance in the model's training data) instead of evaluating them.  By default
        the model's short-range core handles such an approach: the calculator warns once
        (``CloseApproachWarning``) and counts them (``close_approaches``, ``closest_approach``).
        Atoms on top of each other always raise.
    extrapolation : bool
        Also compute the per-atom extrapolation grade every call: ``results["extrapolation"]``
        (per atom) and ``results["max_extrapolation"]`` (needs a model with a grade reference,
        which fitted models carry).

    Stress ("stress", "stresses") of a cell without volume raises ASE's
    ``PropertyNotImplementedError`` (``StressNotDefinedError``, also a ``ValueError``); energy
    and forces of such a structure are computed as usual.

    Threads: one calculator is evaluated by one thread at a time (a lock around
    ``get_property`` and ``calculate``), so a calculator shared by threads gives each its own
    structure's results, one after the other; use one calculator per thread to run them in
    parallel.  Calculators pickle and deep-copy (``copy.deepcopy(atoms)``): the neighbour
    list and the model's compiled tables are left out and rebuilt on the next call.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses",
                              "extrapolation", "max_extrapolation"]

    def __init__(self, model, skin=1.0, device="cpu", strict=False, extrapolation=False,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, (str, os.PathLike)):
            from .io.modelfile import load
            model = load(model)
        self.model = model
        self.device = device
        self.strict = bool(strict)
        if extrapolation and model.extrapolation is None:
            raise ValueError("extrapolation=True needs a model with an extrapolation grade "
                             "reference (model.extrapolation; fits attach one)")
        self.extrapolation = bool(extrapolation)
        self._skin = float(skin)
        self.neighbors = new_neighbor_list(model.cutoff, skin, device)
        self._lock = threading.RLock()
        #: evaluations in which some pair was closer than model.short_range_limit
        self.close_approaches = 0
        #: the shortest distance seen in those (A), and the pair (distance, i, j)
        self.closest_approach = None

    def __getstate__(self):
        # the lock cannot be pickled; the neighbour list (device arrays on the GPU) is rebuilt
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state["neighbors"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def get_property(self, name, atoms=None, allow_calculation=True):
        with self._lock:        # check state, calculate and read results as one step
            return super().get_property(name, atoms, allow_calculation)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        with self._lock:
            self._calculate(atoms, properties, system_changes)

    def _calculate(self, atoms, properties, system_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        wanted = set(properties) | {"energy", "forces"}
        volume = abs(self.atoms.cell.volume)
        no_stress = not volume > 1e-12 and wanted & {"stress", "stresses"}
        if volume > 1e-12:
            wanted.add("stress")     # nearly free once forces are computed
        else:
            wanted -= {"stress", "stresses"}
        if self.extrapolation or wanted & {"extrapolation", "max_extrapolation"}:
            wanted.add("extrapolation")
        if self.neighbors is None or self.neighbors.cutoff != self.model.cutoff:
            self.neighbors = new_neighbor_list(self.model.cutoff, self._skin, self.device)
        results = self.model.compute(self.atoms, tuple(wanted), neighbors=self.neighbors,
                                     device=self.device, strict=self.strict)
        close = results.pop("closest_pair", None)
        if close is not None:
            self._record_close_approach(close)
        self.results.update(results)
        if no_stress:
            raise StressNotDefinedError(
                f"stress needs a cell with nonzero volume; this structure's cell has volume "
                f"{volume:.3g} A^3 (energy and forces are computed)")

    def _record_close_approach(self, close):
        self.close_approaches += 1
        if self.closest_approach is None or close[0] < self.closest_approach[0]:
            self.closest_approach = close
        if self.close_approaches == 1:
            r, i, j = close
            limit = self.model.short_range_limit
            how = ("its screened-nuclear core and clamped learned terms describe it"
                   if self.model.core is not None else
                   "this model has no short-range core: its splines extrapolate linearly")
            warnings.warn(f"atoms {i} and {j} are {r:.4g} A apart, closer than the {limit:.4g} A "
                          f"the model's training data reach; {how}. Warned once per calculator; "
                          f"calc.close_approaches counts such steps (strict=True raises)",
                          CloseApproachWarning, stacklevel=4)
