"""Models the conformance suite runs: the LAMMPS files and synthetic 1-, 2- and 3-species models."""
import numpy as np
from ase import Atoms
from ase.build import bulk

import snnp
from conftest import potential


def random_radial(rng, x0, x1, n, scale):
    """A smooth random radial spline pinned to value 0 and slope 0 at its last knot."""
    y = scale * rng.normal(size=n) * np.linspace(1.0, 0.0, n) ** 2
    y[-1] = 0.0
    return snnp.Spline(x0, x1, y, d0=scale * rng.normal(), dN=0.0)


def random_spline_meam(species, seed=0, cutoff=4.6):
    """A random but well-behaved multi-species spline-MEAM with pinned radial splines."""
    rng = np.random.default_rng(seed)
    n = len(species)
    pairs = [(a, b) for a in range(n) for b in range(a, n)]
    phi = {p: random_radial(rng, 1.8, cutoff - 0.1 * rng.random(), 8, 0.5) for p in pairs}
    rho = [random_radial(rng, 1.9, cutoff, 7, 0.3) for _ in species]
    f = [random_radial(rng, 1.7, cutoff - 0.2, 6, 0.6) for _ in species]
    g = {p: snnp.Spline(-1.0, 1.0, rng.normal(size=7) * 0.5, rng.normal(), rng.normal())
         for p in pairs}
    U = [snnp.Spline(-3.0, 3.0, 0.2 * rng.normal(size=6) + 0.1 * np.linspace(-3, 3, 6) ** 2,
                     rng.normal(), rng.normal()) for _ in species]
    return snnp.SplineMEAM(species, phi, rho, U, f, g, e0=rng.normal(size=n))


def alloy(symbols, seed):
    """A rattled, sheared fcc-like cell holding the given species in random order."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.9, cubic=True).repeat((2, 2, 2))
    atoms.set_chemical_symbols(rng.choice(symbols, size=len(atoms)))
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.02 * rng.normal(size=(3, 3))),
                   scale_atoms=True)
    atoms.rattle(0.08, seed=seed)
    return atoms


def si_cell(seed=1):
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 1, 1))
    atoms.set_cell(atoms.cell.array @ np.diag([1.01, 0.99, 1.02]), scale_atoms=True)
    atoms.rattle(0.06, seed=seed)
    return atoms


def tio_cell(seed=2):
    atoms = bulk("Ti", "hcp", a=2.951, c=4.686).repeat((2, 2, 2))
    atoms += Atoms("O", scaled_positions=[[1 / 3, 1 / 6, 0.125]], cell=atoms.cell)
    atoms.rattle(0.05, seed=seed)
    return atoms


#: name -> (model factory, structure factory)
MODELS = {
    "Si_1": (lambda: snnp.SplineMEAM.from_lammps(potential("Si_1")), si_cell),
    "TiO": (lambda: snnp.SplineMEAM.from_lammps(potential("TiO")), tio_cell),
    "synthetic_1": (lambda: random_spline_meam(["Cu"], 1), lambda: alloy(["Cu"], 3)),
    "synthetic_2": (lambda: random_spline_meam(["Cu", "Ag"], 2), lambda: alloy(["Cu", "Ag"], 4)),
    "synthetic_3": (lambda: random_spline_meam(["Cu", "Ag", "Au"], 3),
                    lambda: alloy(["Cu", "Ag", "Au"], 5)),
}

#: models whose radial splines all reach value 0 and slope 0 at the cutoff
SMOOTH = ["synthetic_1", "synthetic_2", "synthetic_3"]
