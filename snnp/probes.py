"""Repulsion probes: synthetic structures at and below the edge of the training data, each with
the direction in which a physical potential's energy must rise.

The short-range rule (``snnp.core``) makes every model repulsive below each species pair's
shortest training distance, but the data say nothing about how the learned terms behave just
above it, nor about a whole crystal squeezed beyond the densest training cell.  A fit that
meets only the labels can leave a learned dimer attracting at the data edge (the energy then
dips where the core fades in) or an equation of state that sags under compression.  The probes
let the fit see those paths without labels, as one-sided (hinge) terms of ``Loss(repulsion=w)``:

- **pair approaches**: per species pair (a, b), a dimer and a trimer per species of the third
  atom (a or b; placed where an equilateral triangle of side d, the data's first-shell
  distance, puts it) with the pair at distances from ``r_out - 2 w`` up to d, every ``w / 2``
  (``r_out``: the core's outer radius, the shortest training distance; ``w``: its clamp
  width; at least up to ``r_out + w``).  The approach moves the second atom of the pair
  towards the first; the fit asks for dE/dlambda = -F . u >= 0.1 eV/A along it (u the unit
  approach): a pair pushed inside the data's first shell rises in energy, alone or beside a
  third atom, as it does inside the crystal.
- **compressions**: the lowest-energy periodic training cells (taken in turn from each
  composition, up to ``n_cells``) scaled uniformly to V/V0 = 0.40 .. 0.90; the fit asks for a pressure of at least
  1 GPa there (an equation of state that rises as the cell shrinks).

The probes carry no labels: they change nothing the loss says about the data, only what the
fit may do between and beyond them.  ``build_probes`` makes them; ``snnp.training.fit`` adds
them to the objective (not to the reported errors, the validation loss or the input statistics
of the network) when ``Loss.repulsion > 0``.
"""
import numpy as np
from ase import Atoms

__all__ = ["Probe", "build_probes", "approach_distances", "APPROACH_MARGIN", "APPROACH_STEP",
           "PRESSURE_MARGIN", "VOLUME_RATIOS"]

#: the smallest dE/dlambda (eV/A) a pair approach must show
APPROACH_MARGIN = 0.1
#: the smallest pressure (GPa) a compressed cell must show
PRESSURE_MARGIN = 1.0
#: spacing of the pair-approach probes, in units of the core's clamp width
APPROACH_STEP = 0.5
#: V/V0 of the compressed copies, 0.05 apart: the hinge holds the pressure up only at these
#: volumes, and with 0.1 between them an equation of state could still dip in between
VOLUME_RATIOS = tuple(np.round(np.linspace(0.40, 0.90, 11), 2))


class Probe:
    """One synthetic structure: ``atoms``, and either ``approach`` (an (N, 3) array of unit
    displacement directions along which the energy must rise: dE/dlambda = -sum_i F_i . u_i)
    or ``compressed`` (True: its pressure must be positive).  ``kind`` names it in reports;
    ``distance`` is the approaching pair's distance (A)."""

    def __init__(self, atoms, approach=None, compressed=False, kind="", distance=None):
        if (approach is None) == (not compressed):
            raise ValueError("a probe is either a pair approach or a compression")
        self.atoms = atoms
        self.approach = None if approach is None else np.asarray(approach, dtype=float)
        self.compressed = bool(compressed)
        self.kind = kind
        self.distance = distance          # the pair's distance (A), for a pair approach
        # what Batch reads from a Structure: no labels, unit weight
        self.energy = self.forces = self.stress = None
        self.weight, self.group, self.name = 1.0, None, kind


def _first_shell(structures, cutoff):
    """The median nearest-neighbour distance over the atoms of the lowest-energy structures."""
    from ase.neighborlist import neighbor_list
    ranked = _lowest_energy(structures, 8)
    d = []
    for st in ranked:
        i, dist = neighbor_list("id", st.atoms, cutoff)
        if len(i):
            nearest = np.full(len(st.atoms), np.inf)
            np.minimum.at(nearest, i, dist)
            d.append(nearest[np.isfinite(nearest)])
    return float(np.median(np.concatenate(d))) if d else None


def _lowest_energy(structures, n, periodic=False, max_atoms=None):
    """Up to ``n`` structures of lowest energy per atom (with an energy label), taken in turn
    from each composition (lowest first), so every composition of a compound set is
    represented."""
    buckets = {}
    for s in structures:
        if s.energy is None or (max_atoms and len(s.atoms) > max_atoms):
            continue
        if periodic and not (all(s.atoms.pbc) and s.atoms.cell.volume > 1e-6):
            continue
        buckets.setdefault(s.atoms.get_chemical_formula(empirical=True), []).append(s)
    queues = [sorted(b, key=lambda s: s.energy / len(s.atoms)) for _, b in sorted(buckets.items())]
    queues.sort(key=lambda q: q[0].energy / len(q[0].atoms))
    out = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def approach_distances(r_out, clamp_width, shell=None):
    """Distances of a pair-approach probe: from ``r_out - 2 w`` every ``APPROACH_STEP * w`` up
    to the first-shell distance ``shell`` (at least to ``r_out + w``)."""
    w = clamp_width
    top = max(r_out + w, shell or 0.0)
    n = int(np.ceil((top - (r_out - 2 * w)) / (APPROACH_STEP * w) - 1e-9)) + 1
    return np.linspace(r_out - 2 * w, top, n)


def build_probes(species, core, structures, cutoff, n_cells=4, max_atoms=64):
    """The repulsion probes of a model with ``species`` and short-range ``core`` (a
    ``ZBLCore`` with chosen radii) on training ``structures``: pair approaches for every
    species pair at the core's radii and compressed copies of up to ``n_cells`` of the
    lowest-energy periodic training cells with at most ``max_atoms`` atoms."""
    if core is None:
        raise ValueError("repulsion probes need the short-range core's radii: fit with a core "
                         "(core='auto')")
    probes = []
    shell = _first_shell(structures, cutoff)
    w = core.clamp_width
    for (a, b), (_, r_out) in sorted(core.radii.items()):
        pa, pb = species[a], species[b]
        r = approach_distances(r_out, w, shell)
        for x in r:
            pos = [[0.0, 0.0, 0.0], [x, 0.0, 0.0]]
            u = np.array([[0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
            probes.append(Probe(Atoms([pa, pb], positions=pos), approach=u, distance=x,
                                kind=f"dimer {pa}-{pb} at {x:.3f} A"))
            if shell is None:
                continue
            third = [0.5 * shell, 0.5 * np.sqrt(3.0) * shell, 0.0]
            for pc in sorted({pa, pb}):
                probes.append(Probe(Atoms([pa, pb, pc], positions=pos + [third]),
                                    approach=np.vstack([u, [[0.0, 0.0, 0.0]]]), distance=x,
                                    kind=f"trimer {pa}-{pb}+{pc} at {x:.3f} A"))
    cells = _lowest_energy(structures, n_cells, periodic=True, max_atoms=max_atoms)
    for st in cells:
        for ratio in VOLUME_RATIOS:
            atoms = Atoms(st.atoms.get_chemical_symbols(), positions=st.atoms.positions,
                          cell=st.atoms.cell.array, pbc=True)
            atoms.set_cell(atoms.cell.array * ratio ** (1.0 / 3.0), scale_atoms=True)
            name = st.name or atoms.get_chemical_formula()
            probes.append(Probe(atoms, compressed=True,
                                kind=f"{name} at V/V0 = {ratio:.2f}"))
    return probes
