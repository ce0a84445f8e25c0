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


def _perturbed(spline, rng, scale, pinned):
    y = spline.values + scale * rng.normal(size=spline.n_knots)
    d0 = spline.d0 + scale * rng.normal()
    dN = spline.dN + scale * rng.normal()
    if pinned:
        y[-1], dN = 0.0, 0.0
    return snnp.Spline(spline.x0, spline.x1, y, d0, dN)


def random_ladder_model(cls, species, n_radial, n_angular, widths=(6, 5), activation="tanh",
                        seed=0, cutoff=4.6, angular_cutoff=None):
    """A random rung-1 or rung-2 model: perturbed filters, random MLP, pair term and e0."""
    rng = np.random.default_rng(seed)
    n = len(species)
    bank = snnp.FilterBank.initial(species, n_radial, n_angular, cutoff, r_min=1.7,
                                   angular_cutoff=angular_cutoff)
    rho = [[_perturbed(s, rng, 0.1, True) for s in b] for b in bank.rho]
    f = g = None
    if n_angular:
        f = [[_perturbed(s, rng, 0.1, True) for s in b] for b in bank.f]
        g = {k: [_perturbed(s, rng, 0.2, False) for s in b] for k, b in bank.g.items()}
    filters = snnp.FilterBank(species, rho, f, g)
    mlp = snnp.MLPEmbedding(n, n_radial + n_angular, widths, activation)
    mlp.weights = [[(rng.normal(size=W.shape) * 0.5, rng.normal(size=b.shape) * 0.3)
                    for W, b in layers] for layers in mlp.weights]
    mlp.mean = rng.normal(size=mlp.mean.shape)
    mlp.scale = rng.uniform(0.5, 2.0, size=mlp.scale.shape)
    pairs = [(a, b) for a in range(n) for b in range(a, n)]
    pair = {p: random_radial(rng, 1.8, cutoff, 8, 0.5) for p in pairs}
    e0 = rng.normal(size=n)
    if cls is snnp.SNNP:
        return snnp.SNNP(species, filters, mlp, pair=pair, e0=e0)
    U = [snnp.Spline(-3.0, 3.0, 0.3 * rng.normal(size=6), rng.normal(), rng.normal())
         for _ in species]
    return snnp.SplineMEAMNN(species, filters, U, mlp, pair=pair, e0=e0)


def with_core(model, r_in=2.2, r_out=2.6, clamp_width=0.3):
    """The model with a ZBL core on every species pair, r_out above the test cells' shortest
    pairs (about 2.4 A), so the switching zone and the clamp of the learned terms are exercised."""
    keys = [(a, b) for a in range(model.n_species) for b in range(a, model.n_species)]
    model.core = snnp.ZBLCore(model.species, {k: (r_in, r_out) for k in keys},
                              clamp_width=clamp_width)
    return model


def with_close_pair(atoms, r=1.6):
    """The cell with atom 1 moved to distance r from atom 0, inside the core's inner radius."""
    d = atoms.positions[1] - atoms.positions[0]
    atoms.positions[1] = atoms.positions[0] + d / np.linalg.norm(d) * r
    return atoms


#: name -> (model factory, structure factory)
MODELS = {
    "Si_1": (lambda: snnp.SplineMEAM.from_lammps(potential("Si_1")), si_cell),
    "TiO": (lambda: snnp.SplineMEAM.from_lammps(potential("TiO")), tio_cell),
    "synthetic_1": (lambda: random_spline_meam(["Cu"], 1), lambda: alloy(["Cu"], 3)),
    "synthetic_2": (lambda: random_spline_meam(["Cu", "Ag"], 2), lambda: alloy(["Cu", "Ag"], 4)),
    "synthetic_3": (lambda: random_spline_meam(["Cu", "Ag", "Au"], 3),
                    lambda: alloy(["Cu", "Ag", "Au"], 5)),
    "smeam_nn_1": (lambda: random_ladder_model(snnp.SplineMEAMNN, ["Cu"], 2, 2, seed=11),
                   lambda: alloy(["Cu"], 6)),
    "smeam_nn_2": (lambda: random_ladder_model(snnp.SplineMEAMNN, ["Cu", "Ag"], 2, 3, seed=12,
                                               activation="softplus"),
                   lambda: alloy(["Cu", "Ag"], 7)),
    "smeam_nn_3": (lambda: random_ladder_model(snnp.SplineMEAMNN, ["Cu", "Ag", "Au"], 1, 1,
                                               seed=13, activation="silu"),
                   lambda: alloy(["Cu", "Ag", "Au"], 8)),
    "snnp_1": (lambda: random_ladder_model(snnp.SNNP, ["Cu"], 4, 4, widths=(16, 16), seed=14),
               lambda: alloy(["Cu"], 9)),
    "snnp_2": (lambda: random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 2, seed=15,
                                           activation="silu"),
               lambda: alloy(["Cu", "Ag"], 10)),
    "snnp_3": (lambda: random_ladder_model(snnp.SNNP, ["Cu", "Ag", "Au"], 2, 2, widths=(7,),
                                           seed=16, activation="softplus"),
               lambda: alloy(["Cu", "Ag", "Au"], 11)),
    # angular filters ending at 3.4 A: the kernels skip pairs beyond it in the triplets
    "snnp_short_angular": (lambda: random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 3, seed=18,
                                                       angular_cutoff=3.4),
                           lambda: alloy(["Cu", "Ag"], 13)),
    "snnp_radial_only": (lambda: random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 0, seed=17),
                         lambda: alloy(["Cu", "Ag"], 12)),
    # the short-range rule: ZBL core switched on below 2.6 A, learned terms clamped there
    "smeam_core_2": (lambda: with_core(random_spline_meam(["Cu", "Ag"], 21)),
                     lambda: with_close_pair(alloy(["Cu", "Ag"], 14))),
    "smeam_nn_core_1": (lambda: with_core(random_ladder_model(snnp.SplineMEAMNN, ["Cu"], 2, 2,
                                                              seed=22)),
                        lambda: with_close_pair(alloy(["Cu"], 15), 1.2)),
    "snnp_core_2": (lambda: with_core(random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 2,
                                                          seed=23, angular_cutoff=3.4)),
                    lambda: with_close_pair(alloy(["Cu", "Ag"], 16))),
}

#: models whose radial splines all reach value 0 and slope 0 at the cutoff
SMOOTH = [name for name in MODELS if name not in ("Si_1", "TiO")]


def with_shared_filters(model):
    """The model with its filter bank tied across neighbour species (``FilterBank.share``)."""
    model.filters = model.filters.share()
    model.invalidate()
    return model
