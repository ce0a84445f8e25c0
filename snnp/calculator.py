"""ASE calculator around any snnp model: it only adapts the model's arrays to ASE."""
import warnings

from ase.calculators.calculator import Calculator, all_changes

from .backends import new_neighbor_list

__all__ = ["SNNPCalculator", "CloseApproachWarning"]


class CloseApproachWarning(UserWarning):
    """Two atoms came closer than the model's training data reached."""


class SNNPCalculator(Calculator):
    """ASE calculator for an snnp model.

    Parameters
    ----------
    model : snnp.Model
        Any rung of the ladder.
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
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses",
                              "extrapolation", "max_extrapolation"]

    def __init__(self, model, skin=1.0, device="cpu", strict=False, extrapolation=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.device = device
        self.strict = bool(strict)
        if extrapolation and model.extrapolation is None:
            raise ValueError("extrapolation=True needs a model with an extrapolation grade "
                             "reference (model.extrapolation; fits attach one)")
        self.extrapolation = bool(extrapolation)
        self.neighbors = new_neighbor_list(model.cutoff, skin, device)
        #: evaluations in which some pair was closer than model.short_range_limit
        self.close_approaches = 0
        #: the shortest distance seen in those (A), and the pair (distance, i, j)
        self.closest_approach = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        wanted = set(properties) | {"energy", "forces"}
        if self.atoms.cell.volume > 1e-12:
            wanted.add("stress")     # nearly free once forces are computed
        if self.extrapolation or wanted & {"extrapolation", "max_extrapolation"}:
            wanted.add("extrapolation")
        if self.neighbors.cutoff != self.model.cutoff:
            self.neighbors = new_neighbor_list(self.model.cutoff, self.neighbors.skin, self.device)
        results = self.model.compute(self.atoms, tuple(wanted), neighbors=self.neighbors,
                                     device=self.device, strict=self.strict)
        close = results.pop("closest_pair", None)
        if close is not None:
            self._record_close_approach(close)
        self.results.update(results)

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
                          CloseApproachWarning, stacklevel=3)
