"""Training: the loss on energies, forces and stresses, and its analytic gradient.

The gradient of a loss on forces and stresses is a second derivative of the energy.  snnp gets
it without an autodiff framework from one identity (docs/theory.md, "Training gradients"):
after a forward pass fix, per structure s,

    kappa_s = dL/dE_s,   lambda_a = -dL/dF_a,   mu_s = (dL/dsigma_s) / V_s   (3x3, symmetric)

then dL/dtheta = dJ/dtheta with J = sum_s kappa_s E_s + D E_s, D the derivative along the
displacement field rdot_ij = lambda_j - lambda_i + mu_s r_ij.  Three kernel passes give it:
forward (E, F, virials), tangent (G_i and Gdot_i), and the parameter reverse pass; the
embedding's part is one reverse sweep through the primal-plus-tangent network.
"""
import numpy as np

from . import _kernels
from .models import _voigt
from .neighbors import neighbor_list

__all__ = ["Loss", "Batch", "loss_and_gradient", "EV_A3_TO_GPA"]

#: eV/A^3 in GPa
EV_A3_TO_GPA = 160.21766208


class Loss:
    """Weights of the training loss.

        L = w_energy * mean_s w_s ((E_s - E_s*) / N_s)^2            [eV/atom]^2
          + w_forces * mean_atoms w_s |F_a - F_a*|^2 / 3            [eV/A]^2
          + w_stress * mean_s w_s |sigma_s - sigma_s*|^2 / 6         [GPa]^2
          + curvature * sum_splines integral s''(x)^2 dx
          + l2 * sum of squared network weights (not biases)

    Means run over the structures (atoms) that carry that label, weighted by the per-structure
    weights w_s.
    """

    def __init__(self, energy=1.0, forces=0.01, stress=1e-4, curvature=1e-6, l2=1e-6):
        self.energy, self.forces, self.stress = float(energy), float(forces), float(stress)
        self.curvature, self.l2 = float(curvature), float(l2)
        if min(self.energy, self.forces, self.stress, self.curvature, self.l2) < 0:
            raise ValueError("loss weights must be >= 0")

    def to_dict(self):
        return dict(energy=self.energy, forces=self.forces, stress=self.stress,
                    curvature=self.curvature, l2=self.l2)


class Batch:
    """Structures concatenated into one system for the kernels, with their labels.

    Neighbour lists are built once per structure (training positions do not move).
    """

    def __init__(self, structures, model):
        if len(structures) == 0:
            raise ValueError("cannot train on an empty dataset")
        self.n_structures = len(structures)
        cutoff = model.cutoff
        pos, spc, struct, offs, nbrs, shifts = [], [], [], [np.zeros(1, np.int64)], [], []
        pair_start = 0
        n_atoms, volumes, energy, stress, weight = [], [], [], [], []
        forces, has_f = [], []
        start = 0
        for s_idx, st in enumerate(structures):
            atoms = st.atoms
            sp = model._atoms_species(atoms)
            o, j, _, vec = _search_vectors(atoms, cutoff)
            if len(j) == 0:
                raise ValueError(f"structure {s_idx}{_name(st)} has no neighbours within the "
                                 f"cutoff {cutoff:.3g} A: it tells the model nothing")
            pos.append(atoms.positions)
            spc.append(sp)
            struct.append(np.full(len(atoms), s_idx, np.intc))
            offs.append(o[1:] + pair_start)
            pair_start += int(o[-1])
            nbrs.append(j + start)
            shifts.append(vec)
            start += len(atoms)
            n_atoms.append(len(atoms))
            volumes.append(abs(np.linalg.det(atoms.cell.array)))
            energy.append(np.nan if st.energy is None else st.energy)
            stress.append(np.full(6, np.nan) if st.stress is None else st.stress)
            weight.append(st.weight)
            has_f.append(np.full(len(atoms), st.forces is not None))
            forces.append(np.zeros((len(atoms), 3)) if st.forces is None else st.forces)
        self.positions = np.concatenate(pos)
        self.species = np.concatenate(spc).astype(np.intc)
        self.structure = np.concatenate(struct)
        self.offsets = np.concatenate(offs).astype(np.int64)
        self.neighbors = np.concatenate(nbrs).astype(np.intc)
        self.shifts = np.concatenate(shifts)
        self.n_atoms = np.array(n_atoms, float)
        self.volume = np.array(volumes)
        self.energy = np.array(energy)
        self.stress = np.array(stress)
        self.weight = np.array(weight, float)
        self.forces = np.concatenate(forces)
        self.has_forces = np.concatenate(has_f)
        self.has_energy = np.isfinite(self.energy)
        self.has_stress = np.all(np.isfinite(self.stress), axis=1) & (self.volume > 1e-12)
        self.composition = np.zeros((self.n_structures, model.n_species))
        np.add.at(self.composition, (self.structure, self.species), 1.0)

    def per_structure(self, values):
        return np.bincount(self.structure, weights=values, minlength=self.n_structures)


def _name(structure):
    return f" ({structure.name})" if getattr(structure, "name", None) else ""


def _search_vectors(atoms, cutoff):
    from .neighbors import _search, check_geometry
    positions, cell, pbc = check_geometry(atoms.positions, atoms.cell.array, atoms.pbc)
    return _search(positions, cell, pbc, cutoff)


def predict(model, batch):
    """Energies (S,), forces (N, 3) and stresses (S, 6, eV/A^3; NaN without a cell volume)."""
    out = model.tables.compute(batch.positions, batch.species, batch.offsets, batch.neighbors,
                               batch.shifts, forces=True, virial=False,
                               atom_virial=bool(batch.has_stress.any()))
    model._check_distances(out)
    energy = batch.per_structure(out["energies"] + model.e0[batch.species])
    stress = np.full((batch.n_structures, 6), np.nan)
    if batch.has_stress.any():
        W = np.zeros((batch.n_structures, 3, 3))
        np.add.at(W, batch.structure, out["atom_virial"])
        W = 0.5 * (W + W.transpose(0, 2, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            stress = _voigt(W / batch.volume[:, None, None])
    return energy, out["forces"], stress


def loss_and_gradient(model, batch, loss, gradient=True):
    """Loss value and its gradient with respect to ``model.get_params()``."""
    energy, forces, stress = predict(model, batch)
    w = batch.weight
    S = batch.n_structures

    # residuals and the loss
    e_mask = batch.has_energy & (w > 0)
    f_mask = batch.has_forces & (w[batch.structure] > 0)
    s_mask = batch.has_stress & (w > 0)
    rE = np.where(e_mask, (energy - np.nan_to_num(batch.energy)) / batch.n_atoms, 0.0)
    rF = np.where(f_mask[:, None], forces - batch.forces, 0.0)
    rS = np.where(s_mask[:, None], (np.nan_to_num(stress) - np.nan_to_num(batch.stress)) * EV_A3_TO_GPA, 0.0)
    wE = np.where(e_mask, w, 0.0)
    wF = np.where(f_mask, w[batch.structure], 0.0)
    wS = np.where(s_mask, w, 0.0)
    nE, nF, nS = max(wE.sum(), 1e-300), max(wF.sum(), 1e-300), max(wS.sum(), 1e-300)
    L = (loss.energy * np.sum(wE * rE ** 2) / nE
         + loss.forces * np.sum(wF[:, None] * rF ** 2) / (3 * nF)
         + loss.stress * np.sum(wS[:, None] * rS ** 2) / (6 * nS))
    params = model.get_params()
    L += _regularisation(model, loss, params, gradient=False)
    if not gradient:
        return L, None

    # the displacement field and kappa (docs/theory.md)
    kappa = 2 * loss.energy * wE * rE / (batch.n_atoms * nE)
    lam = -(2 * loss.forces / (3 * nF)) * wF[:, None] * rF
    dS = 2 * loss.stress * wS[:, None] * rS / (6 * nS) * EV_A3_TO_GPA       # dL/dsigma (eV/A^3)
    M = np.zeros((S, 3, 3))
    M[:, 0, 0], M[:, 1, 1], M[:, 2, 2] = dS[:, 0], dS[:, 1], dS[:, 2]
    M[:, 1, 2] = M[:, 2, 1] = 0.5 * dS[:, 3]
    M[:, 0, 2] = M[:, 2, 0] = 0.5 * dS[:, 4]
    M[:, 0, 1] = M[:, 1, 0] = 0.5 * dS[:, 5]
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(s_mask[:, None, None], M / batch.volume[:, None, None], 0.0)
    field = (lam, mu, batch.structure)
    kappa_atoms = kappa[batch.structure]

    T = model.tables
    K = model.filters.n_filters
    tan = T.compute(batch.positions, batch.species, batch.offsets, batch.neighbors, batch.shifts,
                    mode=_kernels.MODE_TANGENT, forces=False, virial=False, field=field)
    G, Gdot = tan["G"][:, :K], tan["G"][:, K:2 * K]

    grad = np.zeros_like(params)
    layout = dict((g, sl) for g, sl in model.param_layout() if g in ("e0", "mlp"))
    grad[layout["e0"]] = kappa @ batch.composition
    gamma, Gbar = np.zeros_like(G), np.zeros_like(G)
    spline_grads = {}
    if model.U is not None:
        spline_grads.update(_spline_embedding_pass(model, batch, G, Gdot, kappa_atoms, gamma, Gbar))
    if model.mlp is not None:
        grad[layout["mlp"]] = _mlp_pass(model, batch, G, Gdot, kappa_atoms, gamma, Gbar)
    data_grad = T.param_grad(batch.positions, batch.species, batch.offsets, batch.neighbors,
                             batch.shifts, field, kappa_atoms, gamma, Gbar)
    entries = model._spline_entries()
    for (group, s, pin), g_data, (_, sl) in zip(entries, model._data_grad_to_params(data_grad),
                                                model.param_layout()[1:]):
        g = spline_grads.get(id(s), g_data)
        grad[sl] = np.concatenate([g[:-3], g[-2:-1]]) if pin else g
    grad += _regularisation(model, loss, params, gradient=True)
    return L, grad


def _spline_embedding_pass(model, batch, G, Gdot, kappa, gamma, Gbar):
    """U(n) - U(0) with n = R_1 + A_1: its parameter gradient, and its share of gamma, Gbar."""
    Kr = model.n_radial
    cols = [0] + ([Kr] if model.n_angular else [])
    n = G[:, cols].sum(axis=1)
    ndot = Gdot[:, cols].sum(axis=1)
    out = {}
    for a, U in enumerate(model.U):
        rows = np.flatnonzero(batch.species == a)
        Bv, Bd, Bdd = U.basis(n[rows])
        B0 = U.basis(np.array([0.0]))[0][0]
        p = U.params
        dU, d2U = Bd @ p, Bdd @ p
        for c in cols:
            gamma[rows, c] += dU
            Gbar[rows, c] += kappa[rows] * dU + d2U * ndot[rows]
        out[id(U)] = kappa[rows] @ Bv - kappa[rows].sum() * B0 + ndot[rows] @ Bd
    return out


def _mlp_pass(model, batch, G, Gdot, kappa, gamma, Gbar):
    mlp = model.mlp
    mean, scale = mlp.mean[batch.species], mlp.scale[batch.species]
    x_bar, xdot_bar, g = mlp.train_pass(batch.species, (G - mean) / scale, Gdot / scale, kappa)
    gamma += xdot_bar / scale
    Gbar += x_bar / scale
    # the reference value at G = 0, subtracted per atom: weight -sum(kappa) per species
    kref = -np.bincount(batch.species, weights=kappa, minlength=model.n_species)
    x0 = (0.0 - mlp.mean) / mlp.scale
    _, _, g_ref = mlp.train_pass(np.arange(model.n_species), x0, np.zeros_like(x0), kref)
    return g + g_ref


def _regularisation(model, loss, params, gradient):
    """Curvature penalty on every spline and L2 on network weights (value or gradient)."""
    out = np.zeros_like(params) if gradient else 0.0
    if loss.curvature > 0:
        for (group, s, pin), (_, sl) in zip(model._spline_entries(), model.param_layout()[1:]):
            Q = s.curvature_matrix()
            p = s.params
            if gradient:
                g = 2 * loss.curvature * (Q @ p)
                out[sl] += np.concatenate([g[:-3], g[-2:-1]]) if pin else g
            else:
                out += loss.curvature * p @ Q @ p
    if loss.l2 > 0 and model.mlp is not None:
        mask = _weight_mask(model)
        sl = dict(model.param_layout())["mlp"]
        w = params[sl]
        if gradient:
            out[sl] += 2 * loss.l2 * w * mask
        else:
            out += loss.l2 * np.sum(mask * w * w)
    return out


def _weight_mask(model):
    """1 for network weights, 0 for biases, over the flat MLP parameters."""
    parts = []
    for layers in model.mlp.weights:
        for W, b in layers:
            parts += [np.ones(W.size), np.zeros(b.size)]
    return np.concatenate(parts)
