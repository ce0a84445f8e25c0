"""Curves that show how a model behaves where its training data end.

Each function returns the distances (or volume ratios) and the model's energies along a path:
two atoms pushed together alone (``dimer_curve``), beside a third (``trimer_curve``) or inside a
crystal (``crystal_pair_curve``), a crystal compressed uniformly (``eos_curve``), and a crystal
pulled apart along a plane (``cleavage_curve``).  A physical potential's energy rises along
each path as the atoms come together, and along the last as the halves part; ``snnp plot
--curves`` draws them for any model, and the tests check them for every zoo model.
"""
import numpy as np
from ase import Atoms

__all__ = ["dimer_curve", "trimer_curve", "crystal_pair_curve", "eos_curve", "cleavage_curve",
           "reference_crystal", "short_range_report", "inward_drop"]

#: crystals of the zoo's elements (and a few more) for the in-crystal and EOS curves
CRYSTALS = {"Li": ("bcc", 3.44), "Mo": ("bcc", 3.16), "Si": ("diamond", 5.431),
            "Cu": ("fcc", 3.61), "Ni": ("fcc", 3.52), "W": ("bcc", 3.165), "Fe": ("bcc", 2.87),
            "Al": ("fcc", 4.05), "Ge": ("diamond", 5.66), "C": ("diamond", 3.567),
            "InP": ("zincblende", 5.87), "GaAs": ("zincblende", 5.65)}


def _energies(model, images):
    return np.array([model.compute(a, ("energy",), strict=False)["energy"] for a in images])


def _distances(r):
    r = np.asarray(r, dtype=float)
    if r.ndim != 1 or not np.all(r > 0):
        raise ValueError("distances must be a 1-d array of positive lengths")
    return r


def dimer_curve(model, r, species=None):
    """Energy (eV) of two atoms at distances r (A), in vacuum; ``species`` = (a, b) symbols."""
    r = _distances(r)
    a, b = species or (model.species[0], model.species[0])
    return r, _energies(model, [Atoms([a, b], positions=[[0, 0, 0], [x, 0, 0]]) for x in r])


def trimer_curve(model, r, species=None, r_fixed=None):
    """Energy of three atoms: atoms 0 and 1 at distance r along x, atom 2 where an equilateral
    triangle of side ``r_fixed`` (default: the crystal's nearest-neighbour distance) puts it."""
    r = _distances(r)
    sp = species or [model.species[0]] * 3
    d = r_fixed or _nearest_neighbour(reference_crystal(model.species[0]))
    third = [0.5 * d, np.sqrt(3) / 2 * d, 0.0]
    return r, _energies(model, [Atoms(sp, positions=[[0, 0, 0], [x, 0, 0], third]) for x in r])


def reference_crystal(element, repeat=None):
    """The element's (or compound's: "InP") ground-state crystal (``CRYSTALS``), cubic cell,
    repeated to at least about 2 x the usual 5 A cutoff."""
    from ase.build import bulk
    if element not in CRYSTALS:
        raise ValueError(f"no reference crystal for {element!r}; pass a structure "
                         f"(known: {sorted(CRYSTALS)})")
    kind, a = CRYSTALS[element]
    atoms = bulk(element, kind, a=a, cubic=True)
    return atoms.repeat(repeat or max(2, int(np.ceil(10.0 / a))))


def _nearest_neighbour(atoms):
    from ase.neighborlist import neighbor_list
    return float(neighbor_list("d", atoms, 6.0).min())


def crystal_pair_curve(model, r, atoms=None):
    """Energy of a crystal (default ``reference_crystal``) as atom 0's nearest neighbour is
    moved along their bond to distance r from it, every other atom held in place."""
    from ase.neighborlist import neighbor_list
    r = _distances(r)
    atoms = atoms.copy() if atoms is not None else reference_crystal(model.species[0])
    i, j, D = neighbor_list("ijD", atoms, 6.0)
    rows = np.flatnonzero(i == 0)
    k = rows[np.argmin(np.linalg.norm(D[rows], axis=1))]
    u = D[k] / np.linalg.norm(D[k])
    images = []
    for x in r:
        a = atoms.copy()
        a.positions[j[k]] = a.positions[0] + x * u
        images.append(a)
    return r, _energies(model, images)


def eos_curve(model, volume_ratios, atoms=None):
    """Energy per atom of a crystal compressed or stretched uniformly to V/V0."""
    v = np.asarray(volume_ratios, dtype=float)
    atoms = atoms if atoms is not None else reference_crystal(model.species[0])
    images = []
    for ratio in v:
        a = atoms.copy()
        a.set_cell(a.cell.array * ratio ** (1.0 / 3.0), scale_atoms=True)
        images.append(a)
    return v, _energies(model, images) / len(atoms)


def cleavage_curve(model, separations, hkl=(1, 0, 0), atoms=None):
    """Energy per unit of new surface (J/m^2) of a crystal (default ``reference_crystal``)
    cleaved along its (hkl) plane where the fewest bonds break, the two halves (each at least
    the model's cutoff thick) rigidly apart by ``separations`` (A, >= 0), relative to the
    halves together: (E(s) - E(0)) / 2A.  Beyond the cutoff it is the unrelaxed surface
    energy of that termination; a physical potential's rises all the way out
    (``snnp.probes.cleavage_slab`` builds the slabs; Miller indices of the crystal's cell)."""
    from .probes import _cleavage_slabs
    s = np.asarray(separations, dtype=float)
    if s.ndim != 1 or not np.all(s >= 0):
        raise ValueError("separations must be a 1-d array of lengths >= 0")
    atoms = atoms if atoms is not None else reference_crystal(model.species[0])
    images = [a for a, _ in _cleavage_slabs(atoms, hkl, model.cutoff, _nearest_neighbour(atoms),
                                             np.append(0.0, s))]
    cell = images[0].cell.array
    area = np.linalg.norm(np.cross(cell[0], cell[1]))
    e = _energies(model, images)
    from ase.units import J, m
    return s, (e[1:] - e[0]) / (2 * area) * (m ** 2 / J)          # eV/A^2 -> J/m^2


def inward_drop(x, energy):
    """The largest energy drop met moving to smaller x along a curve (0 when the energy only
    rises as x decreases), and the x where the drop ends."""
    x, e = np.asarray(x, float), np.asarray(energy, float)
    order = np.argsort(x)
    x, e = x[order], e[order]
    above = np.maximum.accumulate(e[::-1])[::-1]        # max energy at or beyond each point
    gap = above - e
    k = int(np.argmax(gap))
    return float(gap[k]), float(x[k])


def short_range_report(model, r_min=0.3, points=200, crystal=None):
    """For a one-element model: the dimer, trimer and in-crystal pair curves from ``r_min`` to
    the crystal's nearest-neighbour distance and the EOS from V/V0 = 0.4 to 1, each with its
    largest inward drop (eV; 0 when the energy rises all the way in), and the cleavage curves
    of the crystal's (100), (110) and (111) planes out to the cutoff plus 1 A (J/m^2), each
    with its largest outward drop ("inward_drop" of the reversed path; 0 when the energy
    rises all the way out) and its last value, the surface energy ("surface_energy"):
    ``{"nearest_neighbour": d, name: {"x", "energy", "inward_drop", "drop_at"}}`` with names
    dimer, trimer, crystal_pair, eos, cleavage_100, cleavage_110 and cleavage_111."""
    crystal = crystal if crystal is not None else reference_crystal(model.species[0])
    nn = _nearest_neighbour(crystal)
    r = np.linspace(r_min, nn, points)
    out = {"nearest_neighbour": nn}
    for name, (x, e) in (("dimer", dimer_curve(model, r)),
                         ("trimer", trimer_curve(model, r, r_fixed=nn)),
                         ("crystal_pair", crystal_pair_curve(model, r, crystal)),
                         ("eos", eos_curve(model, np.linspace(0.4, 1.0, 61), crystal))):
        drop, where = inward_drop(x, e)
        out[name] = {"x": x.tolist(), "energy": e.tolist(), "inward_drop": drop, "drop_at": where}
    separations = np.linspace(0.0, model.cutoff + 1.0, 41)[1:]
    for hkl in ((1, 0, 0), (1, 1, 0), (1, 1, 1)):
        x, e = cleavage_curve(model, separations, hkl, crystal)
        drop, where = inward_drop(-x, e)            # outward along the cleavage
        out["cleavage_" + "".join(map(str, hkl))] = {
            "x": x.tolist(), "energy": e.tolist(), "inward_drop": drop, "drop_at": -where,
            "surface_energy": float(e[-1])}
    return out
