"""Reference data of the elements that a fit can lean on where the training data are silent.

``COHESIVE_ENERGY``: the experimental cohesive energy of each element's ground-state solid, eV
per atom, at 0 K and 1 atm (C. Kittel, *Introduction to Solid State Physics*, 8th ed., ch. 3,
table 1).  ``free_atom_estimate`` turns it into an estimate of each species' isolated-atom
energy in the labels' own energy zero: the lowest energy per atom of that element's elemental
structures in the data plus its cohesive energy (docs/training.md, "The energy zero").
"""
import numpy as np

__all__ = ["COHESIVE_ENERGY", "free_atom_estimate"]

#: eV/atom, Kittel's table (experimental; DFT's differ by a few tenths of an eV)
COHESIVE_ENERGY = {
    "Li": 1.63, "Be": 3.32, "B": 5.81, "C": 7.37, "N": 4.92, "O": 2.60, "F": 0.84,
    "Na": 1.113, "Mg": 1.51, "Al": 3.39, "Si": 4.63, "P": 3.43, "S": 2.85, "Cl": 1.40,
    "K": 0.934, "Ca": 1.84, "Sc": 3.90, "Ti": 4.85, "V": 5.31, "Cr": 4.10, "Mn": 2.92,
    "Fe": 4.28, "Co": 4.39, "Ni": 4.44, "Cu": 3.49, "Zn": 1.35, "Ga": 2.81, "Ge": 3.85,
    "As": 2.96, "Se": 2.46, "Br": 1.22, "Rb": 0.852, "Sr": 1.72, "Y": 4.37, "Zr": 6.25,
    "Nb": 7.57, "Mo": 6.82, "Tc": 6.85, "Ru": 6.74, "Rh": 5.75, "Pd": 3.89, "Ag": 2.95,
    "Cd": 1.16, "In": 2.52, "Sn": 3.14, "Sb": 2.75, "Te": 2.19, "I": 1.11, "Cs": 0.804,
    "Ba": 1.90, "La": 4.47, "Hf": 6.44, "Ta": 8.10, "W": 8.90, "Re": 8.03, "Os": 8.17,
    "Ir": 6.94, "Pt": 5.84, "Au": 3.81, "Hg": 0.67, "Tl": 1.88, "Pb": 2.03, "Bi": 2.18,
}


def free_atom_estimate(structures, species):
    """Each species' isolated-atom energy estimated from the data: the lowest energy per atom
    among the structures made of that element alone, plus its ``COHESIVE_ENERGY``.

    Returns ``({element: eV}, None)``, or ``(None, why)`` where an element has no cohesive
    energy in the table or no energy-labelled structure of that element alone (a compound
    set without its elemental solids): the estimate needs the crystal's energy in the labels'
    own zero."""
    lowest = {}
    for s in structures:
        if s.energy is None:
            continue
        elements = set(s.atoms.get_chemical_symbols())
        if len(elements) == 1:
            (el,) = elements
            lowest[el] = min(lowest.get(el, np.inf), s.energy / len(s.atoms))
    unknown = [el for el in species if el not in COHESIVE_ENERGY]
    if unknown:
        return None, f"no cohesive energy known for {unknown} (snnp.reference.COHESIVE_ENERGY)"
    missing = [el for el in species if el not in lowest]
    if missing:
        return None, (f"no energy-labelled structure of {missing} alone in the data, so no "
                      "crystal energy to add the cohesive energy to")
    return {el: float(lowest[el] + COHESIVE_ENERGY[el]) for el in species}, None
