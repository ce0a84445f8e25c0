"""Test structures for the spline-MEAM potentials: crystals, defects, surfaces, small cells."""
import numpy as np
from ase import Atoms
from ase.build import bulk, surface


def _rattle(atoms, amount, seed):
    atoms = atoms.copy()
    atoms.rattle(amount, seed=seed)
    return atoms


def _slab(atoms, layers, vacuum, seed):
    """A (001)/(0001) slab, periodic in-plane only (pbc T T F)."""
    slab = surface(atoms, (0, 0, 1), layers, vacuum=vacuum, periodic=False)
    slab.pbc = (True, True, False)
    return _rattle(slab, 0.05, seed)


def _vacancy(atoms, seed):
    atoms = atoms.copy()
    del atoms[0]
    return _rattle(atoms, 0.03, seed)


def _strained(atoms, seed):
    """A general triclinic cell: the primitive cell under a random shear, rattled."""
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.normal(size=(3, 3))),
                   scale_atoms=True)
    return _rattle(atoms, 0.05, seed)


def silicon():
    a = 5.431
    cubic = bulk("Si", "diamond", a=a, cubic=True)
    prim = bulk("Si", "diamond", a=a)
    return {
        "crystal": cubic.repeat(2),
        "rattled": _rattle(cubic.repeat(3), 0.05, 1),
        "vacancy": _vacancy(cubic.repeat(2), 2),
        "slab": _slab(prim, 6, 6.0, 3),
        "small_cell": _strained(prim, 4),            # 2 atoms, far below twice the cutoff
        "triclinic_supercell": _strained(prim.repeat((3, 2, 2)), 5),
    }


def titanium():
    hcp = bulk("Ti", "hcp", a=2.951, c=4.686)
    return {
        "crystal": hcp.repeat((3, 3, 2)),
        "rattled": _rattle(hcp.repeat((4, 4, 3)), 0.1, 6),
        "vacancy": _vacancy(hcp.repeat((3, 3, 2)), 7),
        "slab": _slab(hcp, 5, 6.0, 8),
        "small_cell": _strained(hcp, 9),
    }


def _octahedral_oxygen(cell_repeat, n_oxygen, seed):
    """hcp Ti with O on octahedral interstitial sites (O in the dilute limit)."""
    hcp = bulk("Ti", "hcp", a=2.951, c=4.686).repeat(cell_repeat)
    reps = np.array(cell_repeat)
    # octahedral sites of the ASE hcp cell (Ti at 0,0,0 and 1/3,2/3,1/2)
    sites = []
    for i, j, k in np.ndindex(*reps):
        for z in (0.25, 0.75):
            sites.append((np.array([2 / 3, 1 / 3, z]) + [i, j, k]) / reps)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(sites), size=n_oxygen, replace=False)
    o = Atoms("O" * n_oxygen, scaled_positions=[sites[c] for c in chosen], cell=hcp.cell,
              pbc=True)
    return _rattle(hcp + o, 0.05, seed)


def titanium_oxygen():
    rocksalt = bulk("TiO", "rocksalt", a=4.18)
    return {
        "Ti_crystal": bulk("Ti", "hcp", a=2.951, c=4.686).repeat((3, 3, 2)),
        "O_interstitial": _octahedral_oxygen((3, 3, 2), 1, 10),
        "O_interstitials_rattled": _octahedral_oxygen((3, 3, 3), 4, 11),
        "rocksalt_TiO": _rattle(rocksalt.repeat(2), 0.05, 12),
        "small_cell_TiO": _octahedral_oxygen((1, 1, 1), 1, 13),
        "slab_TiO": _slab(_octahedral_oxygen((2, 2, 2), 2, 14), 1, 6.0, 15),
    }


#: potential name -> (element list in the file's order, structures)
POTENTIALS = {
    "Si_1": (["Si"], silicon),
    "Si_2": (["Si"], silicon),
    "Ti": (["Ti"], titanium),
    "TiO": (["Ti", "O"], titanium_oxygen),
}


def cases():
    for pot, (elements, make) in POTENTIALS.items():
        for name in make():
            yield pot, name
