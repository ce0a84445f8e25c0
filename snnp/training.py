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
import functools
import hashlib
import json
import logging
import sys
import time

import numpy as np
from ase.units import GPa

from ase.stress import full_3x3_to_voigt_6_stress

from . import _kernels

__all__ = ["Loss", "Batch", "loss_and_gradient", "EV_A3_TO_GPA", "FitDivergedError"]

#: eV/A^3 in GPa (from ASE's units, the one source of unit constants)
EV_A3_TO_GPA = 1.0 / GPa

#: progress of fits: one INFO line per checkpoint; configure with the ``logging`` module
#: (the CLI's ``--log-level`` and log file do)
logger = logging.getLogger("snnp.training")


class FitDivergedError(ValueError):
    """A fit whose loss or parameters became NaN or infinite partway through (on valid input:
    too large a learning rate, say).  The model is left at its best parameters so far."""


#: the relative round-off within which ``fit(no_worse_than=...)`` counts an error as within
NO_WORSE_RTOL = 1e-9


class Loss:
    """Weights of the training loss::

        L = w_energy * mean_s w_s ((E_s - E_s*) / N_s)^2            [eV/atom]^2
          + w_forces * mean_atoms w_s |F_a - F_a*|^2 / 3            [eV/A]^2
          + w_stress * mean_s w_s |sigma_s - sigma_s*|^2 / 6         [GPa]^2
          + curvature * sum_splines integral s''(x)^2 dx
          + l2 * sum of squared network weights (not biases)
          + prior * mean_atoms w_s (e_i - e_i^prior)^2                [eV]^2
          + repulsion * mean_probes h_p^2                             [eV/A]^2, [GPa]^2
          + cleavage * mean_cleavages h_c^2                           [eV/A]^2

    The last term needs ``fit(..., prior=model)``: it pulls the per-atom energies e_i towards
    those of a simpler fitted model (rung 0, say).  Total energies fix only the sums of e_i
    over each structure; the prior picks, among the decompositions that fit about as well, the
    one nearest the simpler model's, meant to give a network something to fall back on where
    its data say little (on mlearn Si its effect was within the scatter between fits:
    docs/accuracy.md).

    The repulsion term needs no labels: ``fit`` adds the probes of ``snnp.probes`` (pair
    approaches at the data edge, training cells compressed to V/V0 = 0.4-0.9) and h_p is how far
    a probe's energy fails to rise along its path: max(0, margin - dE/dlambda) in eV/A for an
    approach, max(0, margin - pressure) in GPa for a compression (docs/theory.md, "Where the
    data end").  The cleavage term is its counterpart for a crystal pulled apart:
    ``snnp.probes.build_cleavages`` cleaves the lowest-energy training cell along three planes
    and h_c = max(0, -dE/dlambda) as the halves part, so the energy may not fall on the way to
    two free surfaces.  Neither can be combined with the prior.

    Means run over the structures (atoms) that carry that label, weighted by the per-structure
    weights w_s.  Every weight must be a finite number >= 0, and at least one of energy,
    forces, stress and prior > 0 (else there is nothing to fit): a ValueError names the weight.
    """

    #: the weights, in the order of the constructor's arguments
    WEIGHTS = ("energy", "forces", "stress", "curvature", "l2", "prior", "repulsion", "cleavage")

    def __init__(self, energy=1.0, forces=0.01, stress=1e-4, curvature=1e-8, l2=1e-7, prior=0.0,
                 repulsion=0.0, cleavage=0.0):
        for name, value in zip(self.WEIGHTS, (energy, forces, stress, curvature, l2, prior,
                                              repulsion, cleavage)):
            try:
                setattr(self, name, float(value))
            except (TypeError, ValueError):
                raise ValueError(f"Loss weight {name} must be a number, got {value!r}") from None
        self.check()

    def check(self):
        """Raise a ValueError naming a weight that is NaN, infinite or negative, or when every
        data weight (energy, forces, stress, prior) is zero; ``fit`` calls it again."""
        for name in self.WEIGHTS:
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"Loss weight {name} must be finite, got {value}")
            if value < 0:
                raise ValueError(f"loss weights must be >= 0; {name} is {value}")
        if not (self.energy or self.forces or self.stress or self.prior):
            raise ValueError("Loss weights energy, forces, stress and prior are all zero: the "
                             "loss would fit nothing; give at least one a positive weight")

    def to_dict(self):
        out = dict(energy=self.energy, forces=self.forces, stress=self.stress,
                   curvature=self.curvature, l2=self.l2)
        if self.prior:
            out["prior"] = self.prior
        if self.repulsion:
            out["repulsion"] = self.repulsion
        if self.cleavage:
            out["cleavage"] = self.cleavage
        return out


class Batch:
    """Structures concatenated into one system for the kernels, with their labels.

    ``Batch(structures, model)`` searches each structure's neighbours once (training positions
    do not move); ``batch.subset(indices)`` makes mini-batches from those lists.
    """

    def __init__(self, structures, model, _parts=None):
        if _parts is None:
            if len(structures) == 0:
                raise ValueError("cannot train on an empty dataset")
            _parts = [_prepare(k, st, model) for k, st in enumerate(structures)]
        self.parts, self.n_species = _parts, model.n_species
        self.n_structures = len(_parts)
        cat = lambda key: np.concatenate([p[key] for p in _parts])
        sizes = np.array([len(p["species"]) for p in _parts])
        pairs = np.array([len(p["neighbors"]) for p in _parts])
        atom_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pair_start = np.concatenate([[0], np.cumsum(pairs)[:-1]])
        self.positions = cat("positions")
        self.species = cat("species").astype(np.intc)
        self.structure = np.repeat(np.arange(self.n_structures), sizes).astype(np.intc)
        self.offsets = np.concatenate([[0]] + [p["offsets"][1:] + s for p, s in zip(_parts, pair_start)]).astype(np.int64)
        self.neighbors = np.concatenate([p["neighbors"] + s for p, s in zip(_parts, atom_start)]).astype(np.intc)
        self.shifts = cat("shifts")
        self.n_atoms = sizes.astype(float)
        self.volume = np.array([p["volume"] for p in _parts])
        self.energy = np.array([p["energy"] for p in _parts])
        self.stress = np.array([p["stress"] for p in _parts])
        self.weight = np.array([p["weight"] for p in _parts])
        self.forces = cat("forces")
        self.has_forces = cat("has_forces")
        self.groups = [p["group"] for p in _parts]
        self.has_energy = np.isfinite(self.energy)
        self.has_stress = np.all(np.isfinite(self.stress), axis=1) & (self.volume > 1e-12)
        self.prior_energies = (cat("prior_energies") if all("prior_energies" in p for p in _parts)
                               else None)
        # repulsion probes (snnp.probes): approach directions per atom, compressed cells
        self.approach = cat("approach")
        self.is_approach = np.array([p["is_approach"] for p in _parts])
        self.compressed = np.array([p["compressed"] for p in _parts])
        self.margin = np.array([p["margin"] for p in _parts])
        self.is_cleavage = np.array([p["cleavage"] for p in _parts])
        self.composition = np.zeros((self.n_structures, self.n_species))
        np.add.at(self.composition, (self.structure, self.species), 1.0)

    def subset(self, indices, model):
        return Batch(None, model, _parts=[self.parts[i] for i in indices])

    def per_structure(self, values):
        return np.bincount(self.structure, weights=values, minlength=self.n_structures)


def _prepare(index, st, model):
    atoms = st.atoms
    o, j, _, vec = _search_vectors(atoms, model.cutoff)
    if len(j) == 0:
        raise ValueError(f"structure {index}{_name(st)} has no neighbours within the cutoff "
                         f"{model.cutoff:.3g} A: it tells the model nothing")
    n = len(atoms)
    return {"positions": atoms.positions.copy(), "species": model._atoms_species(atoms),
            "offsets": o, "neighbors": j, "shifts": vec,
            "volume": abs(np.linalg.det(atoms.cell.array)),
            "energy": np.nan if st.energy is None else st.energy,
            "stress": np.full(6, np.nan) if st.stress is None else st.stress,
            "weight": st.weight, "group": st.group, "index": index, "name": st.name,
            "forces": np.zeros((n, 3)) if st.forces is None else st.forces,
            "has_forces": np.full(n, st.forces is not None),
            "approach": np.zeros((n, 3)) if getattr(st, "approach", None) is None else st.approach,
            "is_approach": getattr(st, "approach", None) is not None,
            "margin": getattr(st, "margin", 0.0),
            "cleavage": bool(getattr(st, "cleavage", False)),
            "compressed": bool(getattr(st, "compressed", False))}


def _name(structure):
    return f" ({structure.name})" if getattr(structure, "name", None) else ""


def _search_vectors(atoms, cutoff):
    from .neighbors import _search, check_geometry
    positions, cell, pbc = check_geometry(atoms.positions, atoms.cell.array, atoms.pbc)
    return _search(positions, cell, pbc, cutoff)


def predict(model, batch, atom_energies=False):
    """Energies (S,), forces (N, 3) and stresses (S, 6, eV/A^3; NaN without a cell volume);
    with ``atom_energies`` also the per-atom energies (N,), e0 included."""
    out = model.tables.compute(batch.positions, batch.species, batch.offsets, batch.neighbors,
                               batch.shifts, forces=True, virial=False,
                               atom_virial=bool(batch.has_stress.any() or batch.compressed.any()))
    _check_batch_distances(model, batch, out)
    eps = out["energies"] + model.e0[batch.species]
    energy = batch.per_structure(eps)
    stress = np.full((batch.n_structures, 6), np.nan)
    if batch.has_stress.any() or batch.compressed.any():
        W = np.zeros((batch.n_structures, 3, 3))
        np.add.at(W, batch.structure, out["atom_virial"])
        W = 0.5 * (W + W.transpose(0, 2, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            # Voigt order xx yy zz yz xz xy (W is symmetric: ASE's averaging of the
            # off-diagonal pairs changes no bit); C order as the kernels' arrays
            stress = np.ascontiguousarray(full_3x3_to_voigt_6_stress(W / batch.volume[:, None, None]))
        stress[batch.volume <= 1e-12] = np.nan          # no cell: no stress
    if atom_energies:
        return energy, out["forces"], stress, eps
    return energy, out["forces"], stress


def _check_batch_distances(model, batch, out):
    """``model._check_distances`` for a concatenated batch: a coincident or (strict) close pair
    is named by its structure (dataset index, name, group) and its atoms' indices there, not
    by its indices in the batch."""
    try:
        model._check_distances(out)
    except ValueError as exc:
        i, j = (int(x) for x in out["rmin_pair"])
        k = int(batch.structure[i])
        first = int(np.searchsorted(batch.structure, k))
        part = batch.parts[k]
        what = f"structure {part.get('index', k)}"
        if part.get("name"):
            what += f" ({part['name']})"
        if part.get("group") is not None:
            what += f", group {part['group']!r}"
        message = str(exc).replace(f"atoms {i} and {j}", f"atoms {i - first} and {j - first}", 1)
        raise ValueError(f"{what}: {message}") from None


def repulsion_violations(batch, forces, stress):
    """How far each probe of ``batch`` fails to rise along its path (0 where it does, and for
    every structure that is not a probe): (h, dh/dF per atom (N, 3), dh/dsigma_ii per structure
    (S,), eV/A^3); h in eV/A for approaches and cleavages (each against its own margin), GPa
    for compressions (``snnp.probes``)."""
    from .probes import PRESSURE_MARGIN
    h = np.zeros(batch.n_structures)
    dh_dF = np.zeros_like(batch.approach)
    dh_ds = np.zeros(batch.n_structures)
    if batch.is_approach.any():
        # dE/dlambda = -sum_i F_i . u_i must reach the margin
        slope = -batch.per_structure(np.einsum("ij,ij->i", forces, batch.approach))
        h = np.where(batch.is_approach, np.maximum(0.0, batch.margin - slope), h)
        # approach directions are zero outside approach probes: only violated ones pull
        dh_dF = np.where((h > 0)[batch.structure, None], batch.approach, 0.0)
    if batch.compressed.any():
        trace = np.where(batch.compressed[:, None], np.nan_to_num(stress[:, :3]), 0.0).sum(axis=1)
        pressure = -trace / 3 * EV_A3_TO_GPA
        hc = np.where(batch.compressed, np.maximum(0.0, PRESSURE_MARGIN - pressure), 0.0)
        h = np.where(batch.compressed, hc, h)
        dh_ds = np.where(hc > 0, EV_A3_TO_GPA / 3, 0.0)
    return h, dh_dF, dh_ds


def _probe_weights(batch, loss):
    """Each structure's weight in the probes' terms, w / (number of probes of its term): the
    repulsion term's mean over pair approaches and compressions, the cleavage term's over
    cleavages (0 for structures that are not probes, or whose term has no weight)."""
    cleave = batch.is_cleavage
    repel = (batch.is_approach | batch.compressed) & ~cleave
    w = np.zeros(batch.n_structures)
    if loss.repulsion > 0 and repel.any():
        w[repel] = loss.repulsion / repel.sum()
    if loss.cleavage > 0 and cleave.any():
        w[cleave] = loss.cleavage / cleave.sum()
    return w


def repulsion_penalty(model, batch, loss):
    """The probes' terms of the loss on ``batch`` (repulsion and cleavage; 0 without probes
    or weights)."""
    w = _probe_weights(batch, loss)
    if not w.any():
        return 0.0
    _, forces, stress = predict(model, batch)
    h = repulsion_violations(batch, forces, stress)[0]
    return float(np.sum(w * h ** 2))


def loss_and_gradient(model, batch, loss, gradient=True):
    """Loss value and its gradient with respect to ``model.get_params()``."""
    energy, forces, stress, eps = predict(model, batch, atom_energies=True)
    w = batch.weight
    S = batch.n_structures
    prior = loss.prior > 0 and batch.prior_energies is not None

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
    if prior:
        rP, wP = eps - batch.prior_energies, w[batch.structure]
        nP = max(wP.sum(), 1e-300)
        L += loss.prior * np.sum(wP * rP ** 2) / nP
    wR = _probe_weights(batch, loss)
    repel = bool(wR.any())
    if repel:
        h, dh_dF, dh_ds = repulsion_violations(batch, forces, stress)
        L += np.sum(wR * h ** 2)
    params = model.get_params()
    L += _regularisation(model, loss, params, gradient=False)
    if not gradient:
        return L, None

    # the displacement field and kappa (docs/theory.md)
    kappa = 2 * loss.energy * wE * rE / (batch.n_atoms * nE)
    lam = -(2 * loss.forces / (3 * nF)) * wF[:, None] * rF
    dS = 2 * loss.stress * wS[:, None] * rS / (6 * nS) * EV_A3_TO_GPA       # dL/dsigma (eV/A^3)
    stressed = s_mask
    if repel:                                    # the probes' hinges: dL/dF and dL/dsigma
        lam = lam - (2 * wR * h)[batch.structure, None] * dh_dF
        dS[:, :3] += (2 * wR * h * dh_ds)[:, None]
        stressed = s_mask | batch.compressed
    M = np.zeros((S, 3, 3))
    M[:, 0, 0], M[:, 1, 1], M[:, 2, 2] = dS[:, 0], dS[:, 1], dS[:, 2]
    M[:, 1, 2] = M[:, 2, 1] = 0.5 * dS[:, 3]
    M[:, 0, 2] = M[:, 2, 0] = 0.5 * dS[:, 4]
    M[:, 0, 1] = M[:, 1, 0] = 0.5 * dS[:, 5]
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(stressed[:, None, None], M / batch.volume[:, None, None], 0.0)
    field = (lam, mu, batch.structure)
    kappa_atoms = kappa[batch.structure]
    if prior:                                    # d(prior term)/d e_i, per atom
        kappa_atoms = kappa_atoms + 2 * loss.prior * wP * rP / nP

    T = model.tables
    K = model.filters.n_filters
    tan = T.compute(batch.positions, batch.species, batch.offsets, batch.neighbors, batch.shifts,
                    mode=_kernels.MODE_TANGENT, forces=False, virial=False, field=field)
    G, Gdot = tan["G"][:, :K], tan["G"][:, K:2 * K]

    grad = np.zeros_like(params)
    layout = dict((g, sl) for g, sl in model.param_layout() if g in ("e0", "mlp"))
    grad[layout["e0"]] = np.bincount(batch.species, weights=kappa_atoms, minlength=model.n_species)
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


# -- metrics --------------------------------------------------------------------------------

def error_stats(x):
    """RMSE, MAE and count of the errors ``x`` (NaN and 0 when there are none)."""
    x = np.asarray(x, float).ravel()
    if x.size == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "n": 0}
    return {"rmse": float(np.sqrt(np.mean(x * x))), "mae": float(np.mean(np.abs(x))),
            "n": int(x.size)}


def errors(model, batch):
    """Prediction errors: energy per atom (meV/atom), force components (eV/A), stress (GPa),
    RMSE and MAE, overall and per group."""
    energy, forces, stress = predict(model, batch)
    stats = error_stats

    def block(sel):
        e = sel & batch.has_energy
        s = sel & batch.has_stress
        a = sel[batch.structure] & batch.has_forces
        return {"energy_meV_per_atom": stats(1e3 * (energy[e] - batch.energy[e]) / batch.n_atoms[e]),
                "forces_eV_per_A": stats(forces[a] - batch.forces[a]),
                "stress_GPa": stats(EV_A3_TO_GPA * (stress[s] - batch.stress[s]))}

    out = block(np.ones(batch.n_structures, bool))
    groups = sorted({g for g in batch.groups if g is not None}, key=str)
    if groups:
        out["groups"] = {g: block(np.array([x == g for x in batch.groups])) for g in groups}
    return out


def _summary(err):
    return (f"E {err['energy_meV_per_atom']['rmse']:.3g} meV/atom  "
            f"F {err['forces_eV_per_A']['rmse']:.3g} eV/A")


# -- initialisation ---------------------------------------------------------------------------

def free_atom_energies(model, e0):
    """``e0`` ({element: eV}, one entry per species of ``model``) as a vector in the model's
    species order; a missing element, an element the model lacks or a non-finite energy is an
    error naming it."""
    if not isinstance(e0, dict):
        raise TypeError(f"e0 must be a dict {{element: isolated-atom energy in eV}}, got "
                        f"{type(e0).__name__}")
    extra = sorted(set(e0) - set(model.species))
    if extra:
        raise ValueError(f"e0 names elements {extra} that the model does not have "
                         f"(its species: {model.species})")
    missing = [el for el in model.species if el not in e0]
    if missing:
        raise ValueError(f"e0 needs an isolated-atom energy for every species; missing {missing}")
    out = np.array([float(e0[el]) for el in model.species])
    bad = [el for el, v in zip(model.species, out) if not np.isfinite(v)]
    if bad:
        raise ValueError(f"e0 for {bad} is not a finite number")
    return out


def initialise_reference_energies(model, batch):
    """Per-species e0 by least squares of the energy labels on composition."""
    rows = batch.has_energy
    if not rows.any():
        return
    A = batch.composition[rows]
    energy, _, _ = predict(model, batch)
    residual = batch.energy[rows] - (energy[rows] - A @ model.e0)
    e0, *_ = np.linalg.lstsq(A, residual, rcond=None)
    model.e0 = e0
    model.invalidate()


def initialise_embedding_inputs(model, batch):
    """Freeze the network's input standardisation and U's knot range to the training data."""
    out = model.tables.compute(batch.positions, batch.species, batch.offsets, batch.neighbors,
                               batch.shifts, mode=_kernels.MODE_DESCRIPTORS, forces=False,
                               virial=False, descriptors=True)
    G = out["G"][:, :model.filters.n_filters]
    if model.mlp is not None and not any(np.any(layers[-1][0]) for layers in model.mlp.weights):
        # only an untrained network (zero output layer) gets new statistics: a trained one,
        # being refined or climbed from rung 0, keeps the inputs it was fitted with
        model.mlp.set_normalization(G, batch.species)
    if model.U is not None:
        from .splines import Spline
        cols = [0] + ([model.n_radial] if model.n_angular else [])
        n = G[:, cols].sum(axis=1)
        for a, U in enumerate(model.U):
            dens = n[batch.species == a]
            if dens.size == 0 or np.any(U.values != 0):
                continue        # keep a U that already carries information
            lo, hi = min(dens.min(), 0.0), dens.max()
            pad = 0.1 * (hi - lo) + 1e-3
            model.U[a] = Spline(lo - pad, hi + pad, np.zeros(U.n_knots), 0.0, 0.0)
    model.invalidate()


# -- optimisation -----------------------------------------------------------------------------

class _Objective:
    """Loss and gradient over the free parameters (frozen groups held fixed)."""

    def __init__(self, model, batch, loss, free):
        self.model, self.batch, self.loss, self.free = model, batch, loss, free
        self.full = model.get_params()
        self.evaluations = 0

    def params(self, x):
        p = self.full.copy()
        p[self.free] = x
        return p

    def __call__(self, x, batch=None):
        self.model.set_params(self.params(x))
        value, grad = loss_and_gradient(self.model, batch or self.batch, self.loss)
        self.evaluations += 1
        return value, grad[self.free]


def preconditioner(objective, x0, splines, probes=8, eps=1e-4, seed=0):
    """Diagonal scaling for L-BFGS from a Hutchinson estimate of the Hessian diagonal.

    ``objective(x) -> (value, gradient)``; ``splines`` marks the entries of x that are spline
    parameters.  Spline parameters feed many bonds each and live on scales unrelated to the
    network's, so the loss is badly conditioned in them; each is scaled by 1/sqrt|H_ii|
    (normalised to the median).  Network weights keep unit scale: with a zero output layer
    their curvature starts at zero and the estimate would blow them up.  The caller restores
    its parameters to x0 afterwards.  Returns scales for x."""
    rng = np.random.default_rng(seed)
    acc = np.zeros_like(x0)
    for _ in range(probes):
        z = rng.choice([-1.0, 1.0], size=x0.size)
        acc += z * (objective(x0 + eps * z)[1] - objective(x0 - eps * z)[1]) / (2 * eps)
    diag = np.abs(acc / probes)
    scale = np.ones_like(x0)
    if splines.any():
        d = diag[splines]
        d = np.maximum(d, 1e-8 * max(d.max(), 1e-300))
        scale[splines] = np.sqrt(np.median(d) / d)
    return scale


def _lbfgs_chunk(objective, x0, D, iterations, callback=None):
    """At most ``iterations`` L-BFGS steps from x0 in the scaled coordinates x = x0 + D y (D from
    ``preconditioner``); a fresh start each call, so a checkpoint boundary is a restart.
    ``callback(x)`` is called after each iteration (progress bars, learning curves).  Returns
    the end point and SciPy's result."""
    from scipy.optimize import minimize
    scaled = lambda y: (lambda v: (v[0], v[1] * D))(objective(x0 + D * y))
    res = minimize(scaled, np.zeros_like(x0), jac=True, method="L-BFGS-B",
                   callback=None if callback is None else (lambda y: callback(x0 + D * y)),
                   options={"maxiter": iterations, "maxcor": 30, "ftol": 1e-14, "gtol": 1e-12})
    return x0 + D * res.x, res


def _lbfgs_chunk_rescued(objective, x0, D, iterations, estimate=None, estimated_at=None,
                         callback=None, report=None):
    """``_lbfgs_chunk``, run again where its line search fails at once (SciPy's status 2
    without one step): that is a scaling estimated where the curvature differed (a hinge term
    of the probes, flat where the scaling was estimated, has made a parameter it scaled up
    stiff).  ``estimate(x)`` (None: no rescue) gives the scaling at x: the chunk runs again
    with it (skipped where x is ``estimated_at``, the point D was estimated at, which would
    give D again), then with no scaling, before it counts as spent; ``report(what)`` hears of
    each retry.  Returns (end point, SciPy's result, the scaling the chunk ended with, the
    point the last scaling was estimated at)."""
    for rescale in (None, "here", "unit"):
        if rescale == "here":
            if estimated_at is not None and np.array_equal(x0, estimated_at):
                continue
            D, estimated_at = estimate(x0), x0.copy()
        elif rescale == "unit":
            D = np.ones_like(x0)
        if rescale is not None and report is not None:
            report("diagonal scaling estimated again there" if rescale == "here"
                   else "scaling dropped")
        x, res = _lbfgs_chunk(objective, x0, D, iterations, callback=callback)
        if not (res.status == 2 and res.nit == 0) or estimate is None:
            break
    return x, res, D, estimated_at


def _one_blas_thread(func):
    """Run ``func`` with NumPy's BLAS limited to one thread.

    A fit alternates the compiled kernels (OpenMP threads) with the network's NumPy matrix
    products (BLAS threads).  Each pool keeps its threads spinning for a while after its work
    ends, so on a machine with as many cores as threads the two pools fight over the cores: on
    2 cores a full-batch gradient of snnp_medium or snnp_large took 1.14-1.27x longer with
    BLAS threads than without (benchmarks/bench_training.py --compare-blas).  The network's
    matrices (atoms x 16 or 32) are too small to gain from BLAS threads anyway.
    ``threadpoolctl`` finds the BLAS NumPy loaded (OpenBLAS, MKL, BLIS) and restores it after.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)
    return wrapper


@_one_blas_thread
def fit(model, train, validation=None, *, loss=None, optimizer="lbfgs", max_iter=500,
        epochs=100, batch_size=16, learning_rate=2e-3, freeze=(), checkpoint=None,
        checkpoint_every=100, patience=None, seed=0, initialise=True, precondition=True,
        prior=None, e0=None, core="auto", extrapolation=24, log=True, progress="auto",
        curve_every="auto", no_worse_than=None):
    """Fit ``model`` to a Dataset (energies, forces, stresses) and return it.

    optimizer "lbfgs": full-batch SciPy L-BFGS, restarted every ``checkpoint_every`` iterations
    (the checkpoint boundary, so a resumed run repeats an uninterrupted one exactly), at most
    ``max_iter`` iterations.  optimizer "adam": mini-batches of ``batch_size`` structures for
    ``epochs`` epochs, checkpointed every epoch.  Rerun with a larger ``max_iter`` (``epochs``)
    and the same checkpoint to extend a fit: the result is that of one longer run.  ``freeze``: parameter groups held fixed (see
    ``Model.PARAM_GROUPS``), a tuple of names or one name as a string (``freeze="radial"`` is
    ``("radial",)``).  ``max_iter``, ``epochs``, ``batch_size`` and ``checkpoint_every`` must
    be positive integers; labels, structure weights and ``Loss`` weights must be finite, and
    something must carry weight: all are checked before any work, each error naming the value.  ``patience``: stop after that many checkpoints without a better
    validation loss (the best model is kept).  ``checkpoint``: path of a resumable checkpoint,
    written atomically.  ``initialise``: set e0 by least squares on composition and freeze the
    embedding's input statistics first.  ``prior``: a fitted model whose per-atom energies on
    the training structures the ``Loss(prior=...)`` term pulls towards (rung 0 for a climb).
    ``e0``: isolated-atom energies {element: eV} in the labels' energy zero; e0 is held there
    instead of fitted, so the pair term and embedding carry the whole cohesive energy and an
    atom losing neighbours climbs towards the free atom's energy (docs/training.md).
    ``core``: the short-range rule (docs/theory.md, "Where the data end"). "auto" (default):
    a model without a core, or with one whose radii are still to be chosen (presets), gets a
    ``ZBLCore`` with r_out at each species pair's shortest distance in ``train``; a core with
    radii the user set is kept.  A ``ZBLCore``: use that one.  None: leave the model's core as
    it is.  Models of non-element species ("X") get none.  ``extrapolation``: the number of
    centres of the ``ExtrapolationGrade`` the fitted model carries, from ``train`` (0: none).
    ``log``: True (default) reports each checkpoint (train and validation RMSE) at INFO level on
    the ``snnp.training`` logger; a callable gets each line instead; False: silent.
    ``progress``: a tqdm progress bar of the iterations (epochs) with the latest RMSEs and the
    time left; "auto" (default) shows it when standard error is a terminal and ``log`` is on.
    The learning curve (step, seconds, train and validation energy and force RMSE) is kept in
    ``model.provenance["history"]``: one entry per checkpoint (with the objective) and, for
    L-BFGS, one every ``curve_every`` iterations between them ("auto": a tenth of
    ``checkpoint_every``; 0: checkpoints only); measuring those points costs a forward pass
    and leaves the optimisation unchanged.  ``snnp.fitlog.write_fit_log`` writes it as CSV.
    ``no_worse_than``: validation RMSEs ``{"energy": meV/atom, "forces": eV/A}`` (either or
    both; needs a validation set) the kept model should not exceed, e.g. the rung below's in a
    ladder: the best checkpoint is the one of lowest validation loss among those within them
    (to a relative round-off of ``NO_WORSE_RTOL``, 1e-9; the start included), and only where
    none is, the lowest overall; ``model.provenance["no_worse_than_met"]`` says which.
    A loss or parameters that turn NaN or infinite partway through stop the fit with a
    ``FitDivergedError`` naming the step; the model keeps its best parameters so far and the
    checkpoint its last finite state.  Deterministic for a given seed and thread count.

    Example::

        ds = snnp.datasets.emt_copper()
        train, val = ds.split(0.1)
        model = snnp.presets(["Cu"])["smeam"]
        snnp.training.fit(model, train, val, max_iter=50)     # or model.fit(train, val, ...)
    """
    from .core import ZBLCore
    from .data import Dataset
    loss = loss or Loss()
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be an snnp.Loss, got {type(loss).__name__}")
    loss.check()                        # weights may have been changed after construction
    if not isinstance(train, Dataset):
        raise TypeError("train must be an snnp.Dataset")
    if len(train) == 0:
        raise ValueError("the training set is empty")
    if not any(s.energy is not None or s.forces is not None or s.stress is not None for s in train):
        raise ValueError("the training set has no energy, force or stress labels to fit")
    _check_labels(train, "training")
    if validation is not None:
        _check_labels(validation, "validation")
    _check_something_to_fit(train, loss)
    for name, value in (("max_iter", max_iter), ("epochs", epochs), ("batch_size", batch_size),
                        ("checkpoint_every", checkpoint_every)):
        _check_positive_int(name, value)
    if curve_every != "auto":
        _check_non_negative_int("curve_every", curve_every)
    if patience is not None and (isinstance(patience, bool) or not isinstance(
            patience, (int, np.integer)) or patience < 0):
        raise ValueError(f"patience must be None or a number of checkpoints >= 0, got {patience!r}")
    no_worse_than = _check_no_worse_than(no_worse_than, validation)
    if not (isinstance(learning_rate, (int, float, np.number)) and np.isfinite(learning_rate)
            and learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if isinstance(freeze, str):                 # freeze="radial": one group
        freeze = (freeze,)
    unknown = set(freeze) - set(model.PARAM_GROUPS)
    if unknown:
        raise ValueError(f"unknown parameter groups {sorted(unknown)}; groups: {model.PARAM_GROUPS}")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    say = _reporter(log)
    e0 = None if e0 is None else free_atom_energies(model, e0)      # checked up front
    if isinstance(extrapolation, bool) or not isinstance(extrapolation, (int, np.integer)) \
            or extrapolation < 0:
        raise ValueError(f"extrapolation must be a number of centres >= 0, got {extrapolation!r}")
    for term in ("repulsion", "cleavage"):
        if loss.prior > 0 and getattr(loss, term) > 0:
            raise ValueError(f"Loss(prior=...) and Loss({term}=...) cannot be combined: the "
                             f"{term} probes have no prior energies to be pulled towards")
    if loss.prior > 0 and prior is None:
        raise ValueError("Loss(prior=...) needs fit(..., prior=model): the model whose per-atom "
                         "energies it pulls towards")
    # the batches check every structure (species, neighbours) before any radius is chosen;
    # they hold neighbour lists only, so the core chosen below does not change them
    train_batch = Batch(train.structures, model)
    val_batch = Batch(validation.structures, model) if validation is not None and len(validation) else None
    if isinstance(core, ZBLCore):
        model.core = core
    elif core == "auto":
        if (model.core is None or model.core.auto) and _elements(model.species):
            width = model.core.clamp_width if model.core is not None else None
            chosen = ZBLCore.from_data(model.species, train.structures, cutoff=model.cutoff,
                                       **({} if width is None else {"clamp_width": width}))
            model.core = chosen
    elif core is not None:
        raise ValueError(f"core must be 'auto', a snnp.ZBLCore or None, got {core!r}")
    if prior is not None and loss.prior > 0:
        _attach_prior(train_batch, train.structures, prior)
    probe_batch, fit_batch, probes = None, train_batch, []
    if loss.repulsion > 0:
        from .probes import build_probes
        if model.core is None:
            raise ValueError("Loss(repulsion=...) places its probes at the short-range core's "
                             "radii: fit with core='auto' (or give a ZBLCore)")
        probes += build_probes(model.species, model.core, train.structures, model.cutoff)
    if loss.cleavage > 0:
        from .probes import build_cleavages
        cleavages = build_cleavages(train.structures, model.cutoff)
        if not cleavages:
            raise ValueError("Loss(cleavage=...) cleaves the lowest-energy periodic training "
                             "cell: the training set has no periodic cell with an energy label "
                             "and at most 64 atoms")
        probes += cleavages
    if probes:
        probe_batch = Batch(probes, model)
        fit_batch = Batch(None, model, _parts=train_batch.parts + probe_batch.parts)
    if e0 is not None:                      # set only once the data and options are known good
        model.e0 = e0
        model.invalidate()
        freeze = tuple(freeze) + (() if "e0" in freeze else ("e0",))
    config = {"optimizer": optimizer, "max_iter": max_iter, "epochs": epochs,
              "batch_size": batch_size, "learning_rate": learning_rate, "freeze": sorted(freeze),
              "checkpoint_every": checkpoint_every, "seed": seed, "loss": loss.to_dict(),
              "precondition": bool(precondition),
              "train_sha256": train.sha256(),
              "validation_sha256": validation.sha256() if val_batch else None}
    if e0 is not None:
        config["e0"] = model.e0.tolist()
    if no_worse_than is not None:
        config["no_worse_than"] = no_worse_than
    if model.core is not None:
        config["core"] = model.core.to_dict()
    if loss.cleavage > 0:
        config["probe_cleavages"] = [p.kind for p in probes if p.cleavage]
    if loss.repulsion > 0:
        from .probes import VOLUME_RATIOS
        config["probe_volumes"] = [float(v) for v in VOLUME_RATIOS]
        config["probe_distances"] = sorted({round(float(p.distance), 6) for p in probes
                                            if p.distance is not None})
    if train_batch.prior_energies is not None:
        config["prior_sha256"] = hashlib.sha256(
            json.dumps(prior.to_dict(), sort_keys=True).encode()).hexdigest()
    state = _load_checkpoint(checkpoint, config, model)
    if state is None:
        if initialise:
            initialise_embedding_inputs(model, train_batch)
            if "e0" not in freeze:
                initialise_reference_energies(model, train_batch)
        state = {"step": 0, "best": None, "best_params": None, "history": [], "adam": None,
                 "model": model.to_dict()}
    clock, spent = time.perf_counter(), state.get("seconds", 0.0)   # fit time across resumes
    masks = model.param_groups()
    free = np.ones(len(model.get_params()), bool)
    for g in freeze:
        free &= ~masks[g]
    objective = _Objective(model, fit_batch, loss, free)

    total = max_iter if optimizer == "lbfgs" else epochs
    unit = "iteration" if optimizer == "lbfgs" else "epoch"
    start_params = model.get_params().copy()
    bar = _progress_bar(progress, bool(log), total, state["step"],
                        "iter" if optimizer == "lbfgs" else "epoch")

    def score_now():
        """What the best checkpoint is chosen on: the validation loss (the training loss without
        a validation set), plus the probes' term: the best model also meets the probes."""
        batch = val_batch if val_batch is not None else train_batch
        score = loss_and_gradient(model, batch, loss, gradient=False)[0]
        if probe_batch is not None:
            score += repulsion_penalty(model, probe_batch, loss)
        return score

    def within(val_err):
        """Whether validation errors meet ``no_worse_than`` (True when it is not given)."""
        if no_worse_than is None:
            return True
        keys = {"energy": "energy_meV_per_atom", "forces": "forces_eV_per_A"}
        # to round-off: a rung 1 on a zero network, or an exactly grown rung, recomputes the
        # limit's own errors along another summation order
        return all(not val_err[keys[k]]["n"]
                   or val_err[keys[k]]["rmse"] <= limit * (1.0 + NO_WORSE_RTOL)
                   for k, limit in no_worse_than.items())

    def consider(score, params, val_err):
        """Keep this candidate if it beats the best so far: one within ``no_worse_than``
        beats any that is not, then the lower validation loss wins."""
        meets = within(val_err)
        if (state["best"] is None or (meets, -score) > (state.get("best_meets", True),
                                                        -state["best"])):
            state["best"], state["best_params"] = score, params
            state["best_step"], state["best_meets"] = state["step"], meets

    if state["step"] == 0 and state["best"] is None:
        # the start is a candidate too: a continued or climbed fit never ends worse than it began
        score = score_now()
        if np.isfinite(score):
            consider(score, start_params.tolist(),
                     errors(model, val_batch) if no_worse_than is not None else None)

    def checkpoint_and_report(label, value):
        if not (np.isfinite(value) and np.isfinite(model.get_params()).all()):
            _diverged(model, state, start_params, unit)
        err = errors(model, train_batch)
        line, val_err = f"{label}  train {_summary(err)}", None
        if val_batch is not None:
            val_err = errors(model, val_batch)
            line += f"  | validation {_summary(val_err)}"
        score = score_now()
        if not np.isfinite(score):
            _diverged(model, state, start_params, unit)
        consider(score, model.get_params().tolist(), val_err)
        state["seconds"] = spent + time.perf_counter() - clock
        state["history"].append({**_history_entry(state, score, err, val_err),
                                 "checkpoint": True})
        state["model"] = model.to_dict()
        if checkpoint:
            _save_checkpoint(checkpoint, config, state)
        if bar is not None:
            bar.set_postfix_str(_summary(err) + ("" if val_err is None
                                                 else " | val " + _summary(val_err)))
        say(line, flush=True)

    def advance(steps):
        if bar is not None and steps > 0:
            bar.update(steps)

    every = max(1, checkpoint_every // 10) if curve_every == "auto" else curve_every
    curve = state.setdefault("curve", [])

    def on_iteration(x, step):
        """After L-BFGS iteration ``step``: the bar, and a learning-curve point."""
        advance(1)
        if every and step % every == 0 and step % checkpoint_every and step < max_iter:
            model.set_params(objective.params(x))       # the next evaluation sets its own
            err = errors(model, train_batch)
            val_err = errors(model, val_batch) if val_batch is not None else None
            curve.append({**_history_entry({"step": step, "seconds": spent + time.perf_counter()
                                            - clock}, None, err, val_err),
                          "checkpoint": False})

    def stalled():
        if not patience:
            return False
        scores = [h["objective"] for h in state["history"]]
        if not scores:
            return False
        best_at = int(np.argmin(scores))
        return len(scores) - 1 - best_at >= patience

    if optimizer == "lbfgs":
        scaled_at = None

        def estimate(x):
            D = preconditioner(objective, x, ~masks["mlp"][free], seed=seed)
            model.set_params(objective.params(x))       # undo the probes' last displacement
            return D

        if state.get("scale") is None:
            x0 = model.get_params()[free]
            state["scale"] = (estimate(x0) if precondition else np.ones(free.sum())).tolist()
            scaled_at = x0 if precondition else None
        D = np.array(state["scale"])
        while state["step"] < max_iter and not stalled() and not state.get("converged"):
            chunk = min(checkpoint_every, max_iter - state["step"])
            done = iter(range(state["step"] + 1, state["step"] + chunk + 1))
            x, res, D, scaled_at = _lbfgs_chunk_rescued(
                objective, model.get_params()[free], D, chunk,
                estimate=estimate if precondition else None, estimated_at=scaled_at,
                callback=lambda x: on_iteration(x, next(done)),
                report=lambda what: say(f"    L-BFGS's line search failed at once at {unit} "
                                        f"{state['step']}: {what}", flush=True))
            state["scale"] = D.tolist()
            model.set_params(objective.params(x))
            advance(chunk - res.nit)
            state["step"] += chunk
            # converged (SciPy's status 0) before the chunk ended; a failed line search
            # (status 2, "ABNORMAL") is no convergence: the next chunk restarts L-BFGS there
            state["converged"] = bool(res.nit < chunk and res.status == 0)
            checkpoint_and_report(f"iter {state['step']:5d}  loss {res.fun:.4g}", res.fun)
    else:
        adam = state["adam"] or {"m": np.zeros(free.sum()).tolist(), "v": np.zeros(free.sum()).tolist(), "t": 0}
        m, v = np.array(adam["m"]), np.array(adam["v"])
        b1, b2, eps = 0.9, 0.999, 1e-8
        while state["step"] < epochs and not stalled():
            epoch = state["step"]
            order = np.random.default_rng([seed, epoch]).permutation(fit_batch.n_structures)
            total = 0.0
            for start in range(0, len(order), batch_size):
                sub = fit_batch.subset(order[start:start + batch_size], model)
                x = model.get_params()[free]
                value, g = objective(x, sub)
                total += value
                adam["t"] += 1
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                step = learning_rate * (m / (1 - b1 ** adam["t"])) / (np.sqrt(v / (1 - b2 ** adam["t"])) + eps)
                model.set_params(objective.params(x - step))
            state["step"] += 1
            if not (np.isfinite(m).all() and np.isfinite(v).all()):
                _diverged(model, state, start_params, unit)
            adam["m"], adam["v"] = m.tolist(), v.tolist()
            state["adam"] = adam
            advance(1)
            mean = total / max(1, -(-len(order) // batch_size))
            checkpoint_and_report(f"epoch {state['step']:4d}  loss {mean:.4g}", mean)
    if bar is not None:
        bar.close()
    if state["best_params"] is not None:
        model.set_params(np.array(state["best_params"]))
    if extrapolation:
        from .coverage import ExtrapolationGrade
        model.extrapolation = ExtrapolationGrade.from_data(model, train, n_centres=extrapolation)
    model.provenance = {"training_data_sha256": config["train_sha256"],
                        "validation_data_sha256": config["validation_sha256"],
                        "fit": {k: v for k, v in config.items() if not k.endswith("sha256")},
                        "steps": state["step"],
                        "best_step": state.get("best_step"),
                        **({} if no_worse_than is None else
                           {"no_worse_than": no_worse_than,
                            "no_worse_than_met": bool(state.get("best_meets", False))}),
                        "seconds": spent + time.perf_counter() - clock,
                        "history": sorted(state["history"] + state.get("curve", []),
                                          key=lambda h: h["step"])}
    return model


def _check_no_worse_than(limits, validation):
    """``fit``'s ``no_worse_than``: None, or {"energy": meV/atom, "forces": eV/A} of finite
    numbers >= 0 with a validation set to compare; returned as a plain dict of floats."""
    if limits is None:
        return None
    if not isinstance(limits, dict) or not limits or set(limits) - {"energy", "forces"}:
        raise ValueError("no_worse_than must be a dict with keys 'energy' (meV/atom) and/or "
                         f"'forces' (eV/A), got {limits!r}")
    out = {}
    for key, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not np.isfinite(value) or value < 0:
            raise ValueError(f"no_worse_than[{key!r}] must be a finite RMSE >= 0, got {value!r}")
        out[key] = float(value)
    if validation is None or not len(validation):
        raise ValueError("no_worse_than compares validation errors: give a validation set")
    return out


def _reporter(log):
    """Where a fit's progress lines go: True, the ``snnp.training`` logger (INFO); a callable,
    that; False, nowhere."""
    if log is True:
        return lambda line, **kw: logger.info(line)
    return log if log else (lambda *a, **kw: None)


def _history_entry(state, score, err, val_err):
    """One checkpoint of the learning curve (``snnp.fitlog`` writes these as CSV)."""
    def rmse(e, key):
        return None if e is None or not e[key]["n"] else e[key]["rmse"]
    return {"step": state["step"], "seconds": state["seconds"], "objective": score,
            "train_energy_rmse": rmse(err, "energy_meV_per_atom"),             # meV/atom
            "train_force_rmse": rmse(err, "forces_eV_per_A"),                  # eV/A
            "validation_energy_rmse": rmse(val_err, "energy_meV_per_atom"),
            "validation_force_rmse": rmse(val_err, "forces_eV_per_A")}


def _diverged(model, state, start, unit):
    """Stop a fit whose loss or parameters turned non-finite: back to the best parameters
    (those it started from when no checkpoint was finite)."""
    if state["best_params"] is not None:
        model.set_params(np.array(state["best_params"]))
        kept = f"the model keeps its best parameters (objective {state['best']:.4g})"
    else:
        model.set_params(start)
        kept = "no checkpoint was finite: the model is back at its starting parameters"
    raise FitDivergedError(f"the fit diverged at {unit} {state['step']}: the loss or the "
                           f"parameters became NaN or infinite; {kept}. Try a smaller "
                           "learning rate, larger curvature/l2 weights, or L-BFGS")


def _progress_bar(progress, log, total, done, unit):
    """A tqdm bar over the fit's iterations, or None (not a terminal, or turned off)."""
    if progress == "auto":
        progress = log and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=done, unit=unit, leave=False, dynamic_ncols=True,
                desc="fit")


def _check_non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_labels(dataset, what):
    """Refuse a NaN or infinite label or weight (also one written into a Structure after it
    was built), naming the structure, the label and the atom and component."""
    for k, st in enumerate(dataset):
        where = f"{what} structure {k}" + "".join(
            f" ({label} {value!r})" for label, value in (("name", getattr(st, "name", None)),
                                                         ("group", getattr(st, "group", None)))
            if value is not None)
        for label in ("energy", "forces", "stress"):
            value = getattr(st, label)
            if value is None:
                continue
            arr = np.asarray(value, dtype=float)
            bad = np.argwhere(~np.isfinite(arr)) if arr.ndim else np.zeros((0 if np.isfinite(
                arr) else 1, 0), int)
            if len(bad):
                first = tuple(int(i) for i in bad[0])
                index = "[" + ", ".join(map(str, first)) + "]" if first else ""
                kind = "NaN" if np.isnan(arr[first]) else "infinite"
                raise ValueError(f"{where}: label {label}{index} is {kind}")
        w = st.weight
        if not (isinstance(w, (int, float, np.number)) and np.isfinite(w) and w >= 0):
            raise ValueError(f"{where}: weight must be a finite number >= 0, got {w!r}")


def _check_something_to_fit(train, loss):
    """Some structure of non-zero weight must carry a label whose loss weight is non-zero."""
    if not any(st.weight > 0 for st in train):
        raise ValueError("every training structure has weight 0: there is nothing to fit "
                         "(check the structure or group weights)")
    if loss.prior > 0:
        return
    terms = [label for label in ("energy", "forces", "stress") if getattr(loss, label) > 0]
    if not any(getattr(st, label) is not None for st in train if st.weight > 0 for label in terms):
        raise ValueError(f"nothing to fit: the loss weighs only {terms}, and no training "
                         "structure of non-zero weight carries those labels")


def _elements(species):
    from ase.data import atomic_numbers
    return all(s in atomic_numbers and s != "X" for s in species)


def _attach_prior(batch, structures, prior):
    """Store the prior model's per-atom energies (e0 included) with each structure of batch."""
    for k, (part, st) in enumerate(zip(batch.parts, structures)):
        try:
            part["prior_energies"] = prior.compute(st.atoms, ("energies",))["energies"]
        except ValueError as exc:
            raise ValueError(f"the prior model cannot evaluate training structure {k}"
                             f"{_name(st)}: {exc}") from None
    batch.prior_energies = np.concatenate([p["prior_energies"] for p in batch.parts])


#: the checkpoint format version snnp writes, and the only one it resumes from
CHECKPOINT_VERSION = 1


def _save_checkpoint(path, config, state):
    import json
    from .io.atomic import atomic_write
    with atomic_write(path) as fh:
        json.dump({"format": "snnp-checkpoint", "version": CHECKPOINT_VERSION, "config": config,
                   "state": state}, fh)


def _load_checkpoint(path, config, model):
    """The saved state if ``path`` holds a checkpoint of this same fit, else None."""
    import json
    import os
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is a damaged checkpoint ({exc}); delete it to start again") from None
    if isinstance(doc, dict) and doc.get("format") != "snnp-checkpoint":
        raise ValueError(f"{path} is not an snnp checkpoint")
    version = doc.get("version") if isinstance(doc, dict) else CHECKPOINT_VERSION
    if type(version) is not int or version != CHECKPOINT_VERSION:      # not True, not 1.0
        raise ValueError(f"checkpoint {path} is version {version!r}; this snnp writes "
                         f"and reads version {CHECKPOINT_VERSION}: delete it to start again")
    from .io.schema import validate     # the written schema: snnp/schemas/checkpoint.schema.json
    validate(doc, "checkpoint", f"damaged checkpoint {path}", hint="; delete it to start again")
    # the length of a fit may grow: L-BFGS restarts at every checkpoint (Adam keeps its moments
    # in the state), so a fit extended from its checkpoint equals one run that long from the start
    length = ("max_iter", "epochs")
    same = lambda c: {k: v for k, v in c.items() if k not in length}
    if same(doc["config"]) != same(json.loads(json.dumps(config))):
        raise ValueError(f"{path} is a checkpoint of a different fit (data, loss or options "
                         "differ); delete it or choose another path")
    state = doc["state"]
    _check_finite_state(path, state)
    restored = type(model).from_dict(state["model"])
    model.__dict__.update(restored.__dict__)
    model.invalidate()
    return state


def _check_finite_state(path, state):
    """Refuse a checkpoint whose parameters, objective or optimiser state hold a NaN, an
    infinity or a null number: resumed, it would stop at once and call the fit converged."""
    from .io.schema import check_finite_model_dict, nonfinite_entry
    where = f"checkpoint {path}"        # its shape is already checked against the schema
    parts = {k: state.get(k) for k in ("best", "best_params", "scale", "adam") if state.get(k) is not None}
    parts["history"] = [{"objective": h.get("objective")} for h in state.get("history", [])
                        if isinstance(h, dict)]
    found = nonfinite_entry(parts)
    if found:
        raise ValueError(f"{where} holds a non-finite value ({found[0]} is {found[1]}); "
                         "delete it to start again")
    check_finite_model_dict(state["model"], f"{where}, model state")


# -- filters shared across chemical systems ---------------------------------------------------

SHARED_GROUPS = ("radial", "angular")


def share_filters(source, target):
    """Copy ``source``'s filter bank (radial and angular filters) into ``target``.

    Both models need the same filter layout (same numbers of filters and knots, e.g. the same
    preset); species names may differ: the bank of a single-species system describes "the
    neighbour", whatever element it is."""
    src, dst = source.param_groups(), target.param_groups()
    p_src, p_dst = source.get_params(), target.get_params()
    for g in SHARED_GROUPS:
        if src[g].sum() != dst[g].sum():
            raise ValueError(f"filter banks differ in size ({g}: {src[g].sum()} vs "
                             f"{dst[g].sum()} parameters); use the same preset and cutoff")
        p_dst[dst[g]] = p_src[src[g]]
    target.set_params(p_dst)
    return target


@_one_blas_thread
def fit_shared(models, datasets, *, loss=None, max_iter=500, checkpoint_every=100,
               precondition=True, seed=0, log=True):
    """Fit one filter bank jointly to several systems, one model (embedding, pair term, e0)
    per system; the joint loss is the sum of the systems' losses.  Returns the models, whose
    banks are then identical.  A new system reuses the bank with ``share_filters`` and
    ``fit(..., freeze=("radial", "angular"))``.  L-BFGS runs in the same diagonally scaled
    coordinates as ``fit`` (``preconditioner``, over the joint parameters)."""
    loss = loss or Loss()
    loss.check()
    if loss.repulsion > 0 or loss.cleavage > 0:
        raise ValueError("fit_shared does not place repulsion or cleavage probes: fit each "
                         "system's model with fit(..., loss=Loss(repulsion=..., cleavage=...)) "
                         "instead")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0 (0: initialise only), got {max_iter!r}")
    _check_positive_int("checkpoint_every", checkpoint_every)
    if len(models) != len(datasets) or not models:
        raise ValueError("give one model per dataset")
    say = _reporter(log)
    for m in models[1:]:
        share_filters(models[0], m)
    batches = []
    for m, d in zip(models, datasets):
        b = Batch(d.structures, m)
        initialise_embedding_inputs(m, b)
        initialise_reference_energies(m, b)
        batches.append(b)
    shared = models[0].param_groups()
    shared_mask = shared["radial"] | shared["angular"]
    own = [~(m.param_groups()["radial"] | m.param_groups()["angular"]) for m in models]
    n_shared = int(shared_mask.sum())

    def unpack(x):
        pos = n_shared
        out = []
        for m, mask in zip(models, own):
            p = m.get_params()
            p[~mask] = x[:n_shared]
            k = int(mask.sum())
            p[mask] = x[pos:pos + k]
            pos += k
            out.append(p)
        return out

    def objective(x):
        total, grad = 0.0, np.zeros_like(x)
        pos = n_shared
        for m, b, mask, p in zip(models, batches, own, unpack(x)):
            m.set_params(p)
            value, g = loss_and_gradient(m, b, loss)
            total += value
            grad[:n_shared] += g[~mask]
            k = int(mask.sum())
            grad[pos:pos + k] += g[mask]
            pos += k
        return total, grad

    x = np.concatenate([models[0].get_params()[shared_mask]] +
                       [m.get_params()[mask] for m, mask in zip(models, own)])
    splines = np.concatenate([np.ones(n_shared, bool)] +
                             [~m.param_groups()["mlp"][mask] for m, mask in zip(models, own)])

    def estimate(x):
        D = preconditioner(objective, x, splines, seed=seed)
        for m, p in zip(models, unpack(x)):           # undo the probes' last displacement
            m.set_params(p)
        return D

    D, scaled_at = (estimate(x), x.copy()) if precondition else (np.ones_like(x), None)
    step = 0
    while step < max_iter:
        chunk = min(checkpoint_every, max_iter - step)
        x, res, D, scaled_at = _lbfgs_chunk_rescued(
            objective, x, D, chunk, estimate=estimate if precondition else None,
            estimated_at=scaled_at,
            report=lambda what: say(f"shared fit: L-BFGS's line search failed at once at "
                                    f"iteration {step}: {what}", flush=True))
        step += chunk
        for m, p in zip(models, unpack(x)):
            m.set_params(p)
        say(f"shared fit iter {step:5d}  loss {res.fun:.4g}  " + "  ".join(
            f"{m.species[0]}: {_summary(errors(m, b))}" for m, b in zip(models, batches)), flush=True)
        # converged (status 0) before the chunk ended, or no step at all even after the
        # rescue; a line search that failed after some steps restarts L-BFGS there
        if (res.nit < chunk and res.status == 0) or res.nit == 0:
            break
    return models
