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

**Cleavage probes** (``build_cleavages``, their own weight ``Loss(cleavage=w)``) ask the same of
the other direction, a crystal pulled apart: the lowest-energy periodic training cell cut along
its (100), (110) and (111) planes (Miller indices of its own cell vectors) where the fewest
bonds cross, as a slab of two halves each at least a cutoff thick, with the halves apart by
``CLEAVAGE_SEPARATIONS`` times the cutoff.  The fit asks for dE/dlambda >= 0 as
the upper half moves away: splitting a crystal costs energy all the way until the halves no
longer see each other (a surface energy that is positive and reached without a barrier),
whatever the data held about surfaces.

The probes carry no labels: they change nothing the loss says about the data, only what the
fit may do between and beyond them.  ``build_probes`` and ``build_cleavages`` make them;
``snnp.training.fit`` adds them to the objective (not to the reported errors, the validation
loss or the input statistics of the network) when ``Loss.repulsion > 0`` or
``Loss.cleavage > 0``.
"""
import numpy as np
from ase import Atoms

__all__ = ["Probe", "build_probes", "build_cleavages", "approach_distances", "cleavage_slab",
           "APPROACH_MARGIN", "APPROACH_STEP", "PRESSURE_MARGIN", "VOLUME_RATIOS",
           "CLEAVAGE_MARGIN", "CLEAVAGE_PLANES", "CLEAVAGE_SEPARATIONS"]

#: the smallest dE/dlambda (eV/A) a pair approach must show
APPROACH_MARGIN = 0.1
#: the smallest pressure (GPa) a compressed cell must show
PRESSURE_MARGIN = 1.0
#: spacing of the pair-approach probes, in units of the core's clamp width
APPROACH_STEP = 0.5
#: the smallest dE/dlambda (eV/A) a cleavage must show: its energy may not fall as the halves part
CLEAVAGE_MARGIN = 0.0
#: the planes a crystal is cleaved along, as Miller indices of the cell's own vectors
CLEAVAGE_PLANES = ((1, 0, 0), (1, 1, 0), (1, 1, 1))
#: separations of the cleaved halves, in units of the model's cutoff: from a tenth of a bond
#: to where only the longest pairs across the gap still interact
CLEAVAGE_SEPARATIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
#: V/V0 of the compressed copies, 0.05 apart: the hinge holds the pressure up only at these
#: volumes, and with 0.1 between them an equation of state could still dip in between
VOLUME_RATIOS = tuple(np.round(np.linspace(0.40, 0.90, 11), 2))


class Probe:
    """One synthetic structure: ``atoms``, and either ``approach`` (an (N, 3) array of unit
    displacement directions along which the energy must rise by at least ``margin`` eV/A:
    dE/dlambda = -sum_i F_i . u_i, a pair approach or, with ``cleavage``, a crystal pulled
    apart) or ``compressed`` (True: its pressure must be positive).  ``kind`` names it in
    reports; ``distance`` is the approaching pair's distance (A), None for other probes."""

    def __init__(self, atoms, approach=None, compressed=False, kind="", distance=None,
                 margin=APPROACH_MARGIN, cleavage=False):
        if (approach is None) == (not compressed):
            raise ValueError("a probe is either a path (approach) or a compression")
        self.atoms = atoms
        self.approach = None if approach is None else np.asarray(approach, dtype=float)
        self.compressed = bool(compressed)
        self.kind = kind
        self.distance = distance          # the pair's distance (A), for a pair approach
        self.margin = float(margin)       # the smallest dE/dlambda (eV/A) along ``approach``
        self.cleavage = bool(cleavage)    # weighted by Loss.cleavage, not Loss.repulsion
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


def build_cleavages(structures, cutoff, max_atoms=64):
    """The cleavage probes of training ``structures``: the lowest-energy periodic cell with at
    most ``max_atoms`` atoms cleaved along each of ``CLEAVAGE_PLANES`` (``cleavage_slab``), the
    halves apart by ``CLEAVAGE_SEPARATIONS`` times the ``cutoff``; each probe
    asks that the energy not fall as the upper half moves away (dE/dlambda >= 0).  Empty when
    the data hold no periodic cell or no pair within the cutoff."""
    shell = _first_shell(structures, cutoff)
    cells = _lowest_energy(structures, 1, periodic=True, max_atoms=max_atoms)
    if shell is None or not cells:
        return []
    probes = []
    for hkl in CLEAVAGE_PLANES:
        separations = [factor * cutoff for factor in CLEAVAGE_SEPARATIONS]
        slabs = _cleavage_slabs(cells[0].atoms, hkl, cutoff, shell, separations)
        for factor, (atoms, upper) in zip(CLEAVAGE_SEPARATIONS, slabs):
            u = np.zeros((len(atoms), 3))
            u[upper] = _unit_normal(atoms.cell.array)
            probes.append(Probe(atoms, approach=u, margin=CLEAVAGE_MARGIN, cleavage=True,
                                kind=f"cleave ({''.join(map(str, hkl))}) apart by "
                                     f"{factor * cutoff:.3f} A"))
    return probes


def _unit_normal(cell):
    n = np.cross(cell[0], cell[1])
    return n / np.linalg.norm(n)


def _oriented(crystal, hkl, reach=3):
    """``crystal`` (periodic Atoms) in a cell whose first two vectors span its (hkl) plane and
    whose third is the shortest lattice vector one plane up (same atoms, same volume); and the
    plane spacing d (A)."""
    import itertools
    A = crystal.cell.array
    hkl = np.asarray(hkl)
    g = hkl @ np.linalg.inv(A).T                  # the plane normal in reciprocal space
    d = 1.0 / np.linalg.norm(g)
    normal = g * d
    vectors = [np.array(v) for v in itertools.product(range(-reach, reach + 1), repeat=3) if any(v)]
    in_plane = sorted((v for v in vectors if v @ hkl == 0), key=lambda v: np.linalg.norm(v @ A))
    area = abs(np.linalg.det(A)) / d              # the area of one plane's cell
    basis = next(((a, b) for a, b in itertools.combinations(in_plane, 2)
                  if abs(np.linalg.norm(np.cross(a @ A, b @ A)) - area) <= 1e-8 * area), None)
    up = min((v for v in vectors if v @ hkl == 1),
             key=lambda v: np.linalg.norm(v @ A - (v @ A @ normal) * normal))
    if basis is None:
        raise ValueError(f"no lattice basis of the ({' '.join(map(str, hkl))}) plane with "
                         f"indices up to {reach}")
    cell = np.array([basis[0], basis[1], up]) @ A
    if np.linalg.det(cell) < 0:
        cell[[0, 1]] = cell[[1, 0]]
    frac = np.linalg.solve(cell.T, crystal.positions.T).T % 1.0
    return Atoms(crystal.numbers, scaled_positions=frac, cell=cell, pbc=True), d


def cleavage_slab(crystal, hkl, cutoff, shell, separation, vacuum=None):
    """``crystal`` cleaved along its (hkl) plane: a slab of two halves, each a whole number of
    plane repeats at least ``cutoff`` thick, cut (inside the crystal and at both faces) between
    the two atomic planes that the fewest bonds (pairs within 1.2 ``shell``) cross, and the
    upper half moved ``separation`` (A) away from the lower; ``vacuum`` (default: the cutoff
    plus 1 A) separates the slab from its periodic image along the normal.  Returns (Atoms,
    boolean mask of the upper half's atoms); the slab is periodic in its plane."""
    return _cleavage_slabs(crystal, hkl, cutoff, shell, [separation], vacuum)[0]


def _cleavage_slabs(crystal, hkl, cutoff, shell, separations, vacuum=None):
    """``cleavage_slab`` at each of ``separations``: the plane, its cut and the halves are
    found once."""
    from ase.neighborlist import neighbor_list
    oriented, d = _oriented(crystal, hkl)
    repeats = int(np.ceil(cutoff / d - 1e-9))
    half = oriented.repeat((1, 1, repeats))
    normal, h = _unit_normal(half.cell.array), d * repeats
    z = (half.positions @ normal) % h
    i, delta = neighbor_list("iD", half, 1.2 * shell)
    dz = delta @ normal
    planes = np.unique(np.round(z, 6))
    gaps = (planes + np.append(planes[1:], planes[0] + h)) / 2 % h

    def crossing(g):                               # bonds crossing the plane at height g
        above = (z[i] - g) % h + dz
        return np.count_nonzero((above < 0) | (above >= h)) // 2

    cut = gaps[int(np.argmin([crossing(g) for g in gaps]))]
    # each atom moved by whole repeats of the cell's third vector to lie in [cut, cut + h)
    k = np.floor((half.positions @ normal - cut) / h)
    base = half.positions - k[:, None] * half.cell.array[2] - (cut * normal)
    vacuum = cutoff + 1.0 if vacuum is None else vacuum
    numbers = np.concatenate([half.numbers, half.numbers])
    upper = np.arange(len(numbers)) >= len(half)
    slabs = []
    for separation in separations:
        top = base + half.cell.array[2] + separation * normal          # bulk registry
        cell = half.cell.array.copy()
        cell[2] = normal * (2 * h + separation + vacuum)
        atoms = Atoms(numbers, positions=np.vstack([base, top]) + 0.5 * vacuum * normal,
                      cell=cell, pbc=True)
        slabs.append((atoms, upper.copy()))
    return slabs
