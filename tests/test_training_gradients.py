"""The analytic loss gradient equals central finite differences for every rung and group."""
import numpy as np
import pytest

import snnp
from models_for_tests import (alloy, random_ladder_model, random_spline_meam, with_core,
                              with_shared_filters)
from snnp.data import Structure
from snnp.training import Batch, Loss, loss_and_gradient


def _data(species, n=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = alloy(species, seed + k)
        out.append(Structure(atoms, energy=5 * rng.normal(), forces=rng.normal(size=(len(atoms), 3)),
                             stress=0.01 * rng.normal(size=6), weight=1.0 + k))
    if n >= 3:      # a structure without stress, one without forces
        out[1].stress = None
        out[2].forces = None
    return out


MODELS = {
    "smeam_1": lambda: random_spline_meam(["Cu"], 1),
    "smeam_2": lambda: random_spline_meam(["Cu", "Ag"], 2),
    "smeam_nn_1": lambda: random_ladder_model(snnp.SplineMEAMNN, ["Cu"], 2, 2, widths=(5,), seed=1),
    "smeam_nn_2": lambda: random_ladder_model(snnp.SplineMEAMNN, ["Cu", "Ag"], 1, 2, widths=(4,),
                                              activation="softplus", seed=2),
    "snnp_1": lambda: random_ladder_model(snnp.SNNP, ["Cu"], 2, 2, widths=(4, 3), seed=3),
    "snnp_2": lambda: random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 2, 1, widths=(4,),
                                          activation="silu", seed=4),
    # with a core whose clamp window (r_out - w, r_out) holds the cells' shortest pairs: the learned splines
    # of those pairs see r_eff, and their gradients carry dr_eff/dr
    "smeam_core_2": lambda: with_core(random_spline_meam(["Cu", "Ag"], 5)),
    "snnp_core_2": lambda: with_core(random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 2, 2,
                                                         widths=(4,), seed=6)),
    # filters tied across neighbour species: each tied filter's gradient sums its copies'
    "smeam_shared_2": lambda: with_shared_filters(random_spline_meam(["Cu", "Ag"], 7)),
    "snnp_shared_3": lambda: with_shared_filters(random_ladder_model(
        snnp.SNNP, ["Cu", "Ag", "Au"], 2, 2, widths=(4,), seed=8)),
}


@pytest.mark.parametrize("name", MODELS)
def test_loss_gradient_equals_finite_differences(name):
    model = MODELS[name]()
    species = model.species
    batch = Batch(_data(species), model)
    loss = Loss(energy=1.0, forces=0.3, stress=0.5, curvature=1e-3, l2=1e-3)
    p0 = model.get_params()
    value, grad = loss_and_gradient(model, batch, loss)
    h = 1e-6
    fd = np.zeros_like(p0)
    for i in range(len(p0)):
        p = p0.copy()
        p[i] += h
        model.set_params(p)
        up = loss_and_gradient(model, batch, loss, gradient=False)[0]
        p[i] -= 2 * h
        model.set_params(p)
        down = loss_and_gradient(model, batch, loss, gradient=False)[0]
        fd[i] = (up - down) / (2 * h)
    model.set_params(p0)
    assert value > 0
    for group, sl in model.param_layout():
        if sl.stop > sl.start:
            assert np.abs(fd[sl]).max() > 0, f"{group} has no effect on the loss"
    assert np.abs(grad - fd).max() <= 1e-6 * np.abs(fd).max()


@pytest.mark.parametrize("name", ["smeam_core_2", "snnp_core_2"])
def test_repulsion_term_gradient_equals_finite_differences(name):
    """Loss(repulsion=..., cleavage=...) on labelled structures plus the probes of
    ``snnp.probes`` (pair approaches, compressed cells and cleavages, several of each kind
    violated), every other term on: the hinges enter the gradient through the force field
    (approaches, cleavages) and the stress field (compressions)."""
    from snnp.probes import VOLUME_RATIOS, build_cleavages, build_probes
    from snnp.training import predict, repulsion_violations
    model = MODELS[name]()
    structures = _data(model.species)
    for k, st in enumerate(structures):
        st.energy = -3.0 * len(st.atoms) + k               # ranks the cells to compress
    probes = build_probes(model.species, model.core, structures, model.cutoff, n_cells=2)
    kinds = {p.kind.split()[0] for p in probes}
    assert {"dimer", "trimer"} <= kinds and sum(p.compressed for p in probes) == 2 * len(VOLUME_RATIOS)
    cleavages = build_cleavages(structures, model.cutoff)
    batch = Batch(structures + probes + cleavages, model)
    _, forces, stress = predict(model, batch)
    h = repulsion_violations(batch, forces, stress)[0]
    n, m = len(structures), len(structures) + len(probes)
    assert (h[n:m] > 0).sum() >= 3 and (h[m:] > 0).sum() >= 3 and not h[:n].any()
    loss = Loss(energy=1.0, forces=0.3, stress=0.5, curvature=1e-3, l2=1e-3, repulsion=2.0,
                cleavage=0.7)
    value, grad = loss_and_gradient(model, batch, loss)
    for term in ("repulsion", "cleavage"):          # each term has its own weight
        without = loss_and_gradient(model, batch, Loss(**{**loss.to_dict(), term: 0.0}))
        assert value > without[0] and np.abs(grad - without[1]).max() > 1e-3 * np.abs(grad).max()
    fd = _finite_difference_gradient(model, batch, loss)
    assert np.abs(grad - fd).max() <= 1e-6 * np.abs(fd).max()


def _finite_difference_gradient(model, batch, loss, h=1e-6):
    p0 = model.get_params()
    fd = np.zeros_like(p0)
    for i in range(len(p0)):
        for sign in (1, -1):
            p = p0.copy()
            p[i] += sign * h
            model.set_params(p)
            fd[i] += sign * loss_and_gradient(model, batch, loss, gradient=False)[0] / (2 * h)
    model.set_params(p0)
    return fd


@pytest.mark.parametrize("name", ["smeam_2", "smeam_nn_2", "snnp_1", "snnp_2"])
def test_prior_term_gradient_equals_finite_differences(name):
    """Loss(prior=...) with every other term on: the per-atom pull towards a prior model's
    energies enters the gradient through per-atom kappa and e0."""
    from snnp.training import _attach_prior
    model = MODELS[name]()
    structures = _data(model.species)
    batch = Batch(structures, model)
    _attach_prior(batch, structures, random_spline_meam(model.species, seed=11))
    loss = Loss(energy=1.0, forces=0.3, stress=0.5, curvature=1e-3, l2=1e-3, prior=0.7)
    value, grad = loss_and_gradient(model, batch, loss)
    without = loss_and_gradient(model, batch, Loss(energy=1.0, forces=0.3, stress=0.5,
                                                   curvature=1e-3, l2=1e-3))
    assert value > without[0]
    assert np.abs(grad - without[1]).max() > 1e-3 * np.abs(grad).max()
    fd = _finite_difference_gradient(model, batch, loss)
    assert np.abs(grad - fd).max() <= 1e-6 * np.abs(fd).max()


def test_force_part_equals_parameter_gradient_of_displaced_energies():
    """DESIGN's independent cross-check: with only a force term, dL/dtheta equals
    [grad_theta E(x + h lam) - grad_theta E(x - h lam)] / 2h, with lam = -dL/dF."""
    from snnp.training import predict
    model = random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 2, 2, widths=(4,), seed=7)
    structure = _data(["Cu", "Ag"], n=1)[0]
    structure.stress = None
    batch = Batch([structure], model)
    _, grad = loss_and_gradient(model, batch, Loss(energy=0.0, forces=1.0, stress=0.0,
                                                   curvature=0.0, l2=0.0))
    _, forces, _ = predict(model, batch)
    lam = -(2 / (3 * len(forces))) * (forces - batch.forces)

    def energy_gradient(positions):
        """grad_theta E from an energy-only loss: dL/dtheta = kappa grad_theta E."""
        b = Batch([structure], model)
        b.positions = positions
        b.forces[:] = 0.0
        b.has_forces[:] = False
        b.energy[:] = -1e3
        _, g = loss_and_gradient(model, b, Loss(energy=1.0, forces=0.0, stress=0.0,
                                                curvature=0.0, l2=0.0))
        E = predict(model, b)[0][0]
        return g / (2 * (E + 1e3) / b.n_atoms[0] ** 2)

    h = 1e-5
    cross = (energy_gradient(batch.positions + h * lam)
             - energy_gradient(batch.positions - h * lam)) / (2 * h)
    assert np.abs(grad).max() > 0
    assert np.abs(cross - grad).max() <= 1e-5 * np.abs(grad).max()
