"""Neighbour lists against a brute-force search over periodic images."""
import itertools

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule

import snnp
from snnp.neighbors import NeighborList, check_geometry, neighbor_list


def brute_force(positions, cell, pbc, cutoff):
    """All (i, j, shift) with |x_j - x_i + shift @ cell| < cutoff, by enumerating images."""
    cell = np.asarray(cell, float)
    periodic = np.flatnonzero(pbc)
    reciprocal = np.linalg.pinv(cell[periodic]).T      # rows: reciprocal of the periodic lattice
    diameter = np.ptp(positions, axis=0).max() if len(positions) > 1 else 0.0
    ranges = []
    for d in range(3):
        if pbc[d]:
            spacing = 1.0 / np.linalg.norm(reciprocal[list(periodic).index(d)])
            n = int(np.ceil((cutoff + diameter) / spacing)) + 1
            ranges.append(range(-n, n + 1))
        else:
            ranges.append([0])
    pairs = set()
    for S in itertools.product(*ranges):
        d = positions[None, :, :] - positions[:, None, :] + np.array(S) @ cell
        r = np.linalg.norm(d, axis=-1)
        for i, j in zip(*np.nonzero(r < cutoff)):
            if i != j or any(S):
                pairs.add((int(i), int(j), *S))
    return pairs


def as_set(offsets, neighbors, shifts):
    centre = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return {(int(i), int(j), *map(int, s)) for i, j, s in zip(centre, neighbors, shifts)}


def _rattled(atoms, seed=3, amount=0.2):
    atoms = atoms.copy()
    atoms.rattle(amount, seed=seed)
    return atoms


CASES = {
    "cubic": _rattled(bulk("Si", "diamond", a=5.431, cubic=True)),
    # 2 atoms in a triclinic cell much smaller than twice the cutoff: many images of each atom
    "primitive_triclinic": _rattled(bulk("Si", "diamond", a=5.431)),
    "hcp_skewed": _rattled(bulk("Ti", "hcp", a=2.95, c=4.68)),
    "slab_TTF": _rattled(fcc111("Cu", size=(2, 2, 3), vacuum=4.0)),
    "wire_FFT": _rattled(Atoms("Cu4", positions=[[0, 0, 0], [2, 0, 0], [0, 2, 1], [2, 2, 1.5]],
                                cell=[0, 0, 2.5], pbc=[False, False, True])),
    "molecule_zero_cell": molecule("C6H6"),
    "atoms_outside_cell": Atoms("Si3", positions=[[-7, 0.5, 0], [12.1, 3, -4], [0, 0, 30]],
                                cell=[5, 5, 5], pbc=True),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("cutoff", [2.6, 5.5])
def test_full_list_equals_brute_force(name, cutoff):
    atoms = CASES[name]
    got = as_set(*neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff))
    assert got == brute_force(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)


def test_list_is_symmetric_and_independent_of_threads():
    atoms = _rattled(bulk("Si", "diamond", a=5.431, cubic=True).repeat(5))     # 1000 atoms
    lists = []
    for threads in (1, 2):
        snnp.set_num_threads(threads)
        lists.append(neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.0))
    snnp.set_num_threads(0)
    for a, b in zip(*lists):
        np.testing.assert_array_equal(a, b)
    pairs = as_set(*lists[0])
    assert all((j, i, -a, -b, -c) in pairs for i, j, a, b, c in pairs)


def test_skin_reuses_list_until_half_skin_exceeded():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    nl = NeighborList(4.5, skin=1.0)
    assert nl.update(atoms.positions, atoms.cell.array, atoms.pbc)
    moved = atoms.positions.copy()
    moved[0] += [0.3, 0.3, 0.0]          # 0.42 A < skin / 2
    assert not nl.update(moved, atoms.cell.array, atoms.pbc)
    moved[0] += [0.2, 0.0, 0.0]          # 0.58 A > skin / 2
    assert nl.update(moved, atoms.cell.array, atoms.pbc)
    assert nl.update(moved, atoms.cell.array * 1.01, atoms.pbc)     # new cell: rebuild
    assert nl.n_builds == 3


@pytest.mark.parametrize("positions, cell, pbc, message", [
    (np.zeros((2, 2)), np.eye(3), True, r"shape \(N, 3\)"),
    (np.zeros((0, 3)), np.eye(3), True, "no atoms"),
    ([[0, 0, 0], [np.nan, 0, 0]], np.eye(3) * 5, True, "NaN or infinite .*atom 1"),
    ([[0, 0, 0], [np.inf, 0, 0]], np.eye(3) * 5, True, "NaN or infinite"),
    ([[0, 0, 0]], np.zeros((3, 3)), True, "zero volume"),
    ([[0, 0, 0]], [[5, 0, 0], [10, 0, 0], [0, 0, 5]], True, "zero volume"),
    ([[0, 0, 0]], [[5, 0, 0], [0, 0, 0], [0, 0, 5]], [True, True, False], "zero area"),
    ([[0, 0, 0]], np.eye(2), True, r"cell must have shape \(3, 3\)"),
])
def test_bad_geometry_is_rejected(positions, cell, pbc, message):
    with pytest.raises(ValueError, match=message):
        check_geometry(positions, cell, pbc)


def test_tiny_cell_is_rejected_before_the_search_explodes():
    with pytest.raises(ValueError, match="cell is too small"):
        neighbor_list([[0, 0, 0]], np.eye(3) * 0.05, True, 5.0)
