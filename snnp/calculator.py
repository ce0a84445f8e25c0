"""ASE calculator around any snnp model: it only adapts the model's arrays to ASE."""
from ase.calculators.calculator import Calculator, all_changes

from .neighbors import NeighborList

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

    def __init__(self, model, skin=1.0, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.neighbors = NeighborList(model.cutoff, skin=skin)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        wanted = set(properties) | {"energy", "forces"}
        if self.atoms.cell.volume > 1e-12:
            wanted.add("stress")     # nearly free once forces are computed
        if self.neighbors.cutoff != self.model.cutoff:
            self.neighbors = NeighborList(self.model.cutoff, skin=self.neighbors.skin)
        self.results.update(self.model.compute(self.atoms, tuple(wanted), neighbors=self.neighbors))
