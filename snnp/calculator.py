"""ASE calculator around any snnp model: it only adapts the model's arrays to ASE."""
from ase.calculators.calculator import Calculator, all_changes

from .backends import new_neighbor_list

__all__ = ["SNNPCalculator"]


class SNNPCalculator(Calculator):
    """ASE calculator for an snnp model.

    Parameters
    ----------
    model : snnp.Model
        Any rung of the ladder.
    skin : float
        Verlet skin in Angstrom: the neighbour list is reused between calls until an atom has
        moved more than ``skin / 2`` (MD and relaxations call the calculator every step).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses"]

    def __init__(self, model, skin=1.0, device="cpu", **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.device = device
        self.neighbors = new_neighbor_list(model.cutoff, skin, device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        wanted = set(properties) | {"energy", "forces"}
        if self.atoms.cell.volume > 1e-12:
            wanted.add("stress")     # nearly free once forces are computed
        if self.neighbors.cutoff != self.model.cutoff:
            self.neighbors = new_neighbor_list(self.model.cutoff, self.neighbors.skin, self.device)
        self.results.update(self.model.compute(self.atoms, tuple(wanted), neighbors=self.neighbors,
                                               device=self.device))
