"""GPU path: the shared C kernels (kernels.h) compiled by CuPy, the MLP as CuPy matrix products.

Chosen per call or per calculator with ``device="gpu"``::

    model.compute(atoms, device="gpu")
    atoms.calc = model.calculator(device="gpu")

The same source the CPU runs is compiled with NVRTC (``src_cython/gpu_driver.cuh`` with
kernels.h and neighbors.h pasted in): one thread per centre atom runs ``snnp_atom``, forces are
scattered with atomic adds, and per-atom virials are summed on the device.  A model with an
MLP takes two kernel passes: filters G (and the pair energy), then the network's energy and
dE/dG for all atoms of a species at once as dense matrix products, then forces from dE/dG.
A model without an MLP (rung 0) runs in one pass.  The neighbour search runs on the GPU
(``NeighborList``); only the binning of atoms into cells is done on the host, when the list
is rebuilt.  Everything is float64, like the CPU path; tests check GPU against CPU to 1e-10.

CuPy is the optional ``gpu`` extra (``pip install "snnp[gpu]"``, or the ``cupy-cuda12x`` wheel
that matches your driver); asking for the GPU without it, or without a usable device, raises
``GPUUnavailable`` saying which.
"""
import os
import re

import numpy as np

from ..neighbors import (NeighborList as _HostNeighborList, cell_list, check_neighbor_counts,
                         to_caller_basis)

__all__ = ["GPUUnavailable", "available", "kernel_source", "NeighborList", "compute",
           "SCRATCH_BYTES", "BLOCK"]

#: most device memory for the per-thread neighbour scratch of one launch (at most a quarter of
#: the free memory is used); atoms are processed in chunks that fit, about max_neighbours *
#: (10 + K_r + 6 K_a) doubles per atom
SCRATCH_BYTES = 8 << 30
#: threads per block
BLOCK = 128

_cp = None          # the CuPy module once found (tests may put a stand-in here)
_modules = {}       # compiled RawModule per kernel source


class GPUUnavailable(RuntimeError):
    """The GPU path was asked for, but CuPy or a usable CUDA device is missing."""


def _cupy():
    global _cp
    if _cp is not None:
        return _cp
    try:
        import cupy
    except ImportError as exc:
        raise GPUUnavailable(
            "device='gpu' needs CuPy, which is not installed: pip install 'snnp[gpu]' (or the "
            "cupy-cuda11x / cupy-cuda12x wheel that matches your CUDA driver)") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:   # CUDA driver missing or broken
        raise GPUUnavailable(f"CuPy is installed but finds no usable CUDA device: {exc}") from exc
    if count < 1:
        raise GPUUnavailable("CuPy is installed but this machine has no CUDA device")
    _cp = cupy
    return cupy


def available():
    """(True, description) when the GPU path can run here, else (False, the reason)."""
    try:
        cp = _cupy()
    except GPUUnavailable as exc:
        return False, str(exc)
    try:
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception:      # a stand-in without device properties
        name = "CUDA device"
    return True, name


def _source_dir():
    """Where the kernel sources are: packaged beside this module (a wheel; setup.py copies
    them), or src_cython/ of a source checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (os.path.join(here, "csrc"),
              os.path.join(here, os.pardir, os.pardir, "src_cython")):
        if os.path.exists(os.path.join(d, "gpu_driver.cuh")):
            return os.path.normpath(d)
    raise FileNotFoundError("snnp's kernel sources (gpu_driver.cuh, kernels.h, neighbors.h) are "
                            "missing from the installation; reinstall snnp")


def kernel_source():
    """The complete CUDA source of the GPU path: gpu_driver.cuh with its headers pasted in."""
    d = _source_dir()

    def paste(name, seen):
        with open(os.path.join(d, name)) as fh:
            text = fh.read()

        def include(m):
            inc = m.group(1)
            if inc in seen:
                return ""
            seen.add(inc)
            return paste(inc, seen)
        return re.sub(r'^#include "([^"]+)"[^\n]*$', include, text, flags=re.M)
    return paste("gpu_driver.cuh", {"gpu_driver.cuh"})


def _module(cp):
    src = kernel_source()
    mod = _modules.get((id(cp), src))
    if mod is None:
        mod = cp.RawModule(code=src, options=("--std=c++14",))
        _modules[(id(cp), src)] = mod
    return mod


def _launch(kernel, count, args):
    kernel((max(1, -(-int(count) // BLOCK)),), (BLOCK,), args)


def _scratch_budget(cp):
    try:
        free = cp.cuda.runtime.memGetInfo()[0]
    except Exception:        # a stand-in without device memory queries
        return SCRATCH_BYTES
    return min(SCRATCH_BYTES, free // 4)


class NeighborList(_HostNeighborList):
    """``snnp.NeighborList`` whose search runs on the GPU; its arrays live on the device
    (``d_offsets``, ``d_neighbors``, ``d_shift_vectors``), with the positions it was last
    updated with (``d_positions``), which the kernels then read.  Same Verlet-skin rule, with
    the displacement check on the device."""

    def update(self, positions, cell, pbc):
        # uploaded before the base class validates them: bad positions raise there
        self.d_positions = _cupy().asarray(np.ascontiguousarray(positions, dtype=np.float64))
        return super().update(positions, cell, pbc)

    def _moved2(self, positions, reference):
        cp = _cupy()
        return float(cp.max(cp.sum((self.d_positions - self.d_reference) ** 2, axis=1)))

    def _build(self, positions, cell, pbc):
        cp = _cupy()
        mod = _module(cp)
        c = cell_list(positions, cell, pbc, self.cutoff + self.skin)
        n = positions.shape[0]
        dev = [cp.asarray(np.ascontiguousarray(c[k])) for k in
               ("xw", "image", "bin", "cell", "pbc", "nb", "reach", "bin_start", "bin_atoms")]
        args = (np.int32(n), *dev, np.float64(c["cutoff"]))
        counts = cp.zeros(n + 1, dtype=cp.int64)
        _launch(mod.get_function("snnp_gpu_neighbor_count"), n, args + (counts[1:],))
        check_neighbor_counts(cp.asnumpy(counts[1:]), c["cutoff"])      # before any fill
        offsets = cp.cumsum(counts)
        total = int(offsets[-1])
        nbr = cp.empty(max(total, 1), dtype=cp.int32)
        shift = cp.empty((max(total, 1), 3), dtype=cp.int32)
        vec = cp.empty((max(total, 1), 3), dtype=cp.float64)
        _launch(mod.get_function("snnp_gpu_neighbor_fill"), n, args + (offsets, nbr, shift, vec))
        self.d_offsets, self.d_neighbors, self.d_shift_vectors = offsets, nbr, vec
        self.d_reference = self.d_positions.copy()
        self.d_shifts = shift           # in the basis of c["cell"] (a reduced lattice basis)
        self._basis = c["basis"]        # to the caller's: shifts @ basis (None: the same)
        self.max_neighbors = int(cp.max(counts)) if n else 0

    @property
    def offsets(self):
        return _cupy().asnumpy(self.d_offsets)

    @property
    def neighbors(self):
        return _cupy().asnumpy(self.d_neighbors[:int(self.d_offsets[-1])])

    @property
    def shifts(self):
        shifts = _cupy().asnumpy(self.d_shifts[:int(self.d_offsets[-1])])
        return to_caller_basis(shifts, getattr(self, "_basis", None))

    @property
    def shift_vectors(self):
        return _cupy().asnumpy(self.d_shift_vectors[:int(self.d_offsets[-1])])


class DeviceModel:
    """One model's kernel tables and network weights on the GPU (built from ``model.tables``,
    the arrays the CPU kernels read, so both paths evaluate the same numbers)."""

    def __init__(self, model):
        cp = self.cp = _cupy()
        self.module = _module(cp)
        t = model.tables.arrays()
        self.n_species, self.K_r, self.K_a = model.n_species, model.n_radial, model.n_angular
        self.KG = self.K_r + self.K_a
        d = lambda k, dt: cp.asarray(np.ascontiguousarray(t[k], dtype=dt))
        self.args = (np.int32(self.n_species), np.int32(self.K_r), np.int32(self.K_a),
                     np.float64(model.cutoff), d("blk_x0", np.float64), d("blk_h", np.float64),
                     d("blk_invh", np.float64), d("blk_nint", np.int32),
                     d("blk_off", np.int64), d("coef", np.float64), d("phi_blk", np.int32),
                     d("rho_blk", np.int32), d("f_blk", np.int32), d("g_blk", np.int32),
                     d("U_blk", np.int32), d("U0", np.float64))
        # the short-range core and clamp, and the extrapolation grade reference: the CPU's
        # tables (a placeholder array with the flag off where the model has none)
        placeholder = cp.zeros(1)
        self.has_core = t["core"] is not None
        self.grade_M = int(t["grade_M"]) if t["grade_ref"] is not None else 0
        self.args += (np.int32(self.has_core),
                      d("core", np.float64) if self.has_core else placeholder,
                      np.int32(self.grade_M),
                      d("grade_ref", np.float64) if self.grade_M else placeholder)
        self.has_U = bool((t["U_blk"] >= 0).any())
        self.per_neighbor = model.tables.scratch_per_neighbor()
        self.mlp = None
        if model.mlp is not None:
            self.activation = model.mlp.activation
            self.mlp = []
            for s in range(self.n_species):
                layers = [(cp.asarray(W), cp.asarray(b)) for W, b in model.mlp.weights[s]]
                self.mlp.append((layers, cp.asarray(t["mlp_mean"].reshape(self.n_species, -1)[s]),
                                 cp.asarray(t["mlp_inv_scale"].reshape(self.n_species, -1)[s]),
                                 float(t["mlp_zero"][s])))

    def _network(self, species, G, energies, dG):
        """Add each atom's MLP energy (minus its value at G = 0) and dE/dG, one species at a
        time, as matrix products over all its atoms."""
        from ..embedding import forward
        cp = self.cp
        for s, (layers, mean, isc, zero) in enumerate(self.mlp):
            rows = cp.nonzero(species == s)[0]
            if rows.size == 0:
                continue
            out, slopes = forward(layers, self.activation, (G[rows] - mean) * isc, cp)
            back = layers[-1][0]
            for l in range(len(layers) - 2, -1, -1):
                back = (back * slopes[l]) @ layers[l][0]
            energies[rows] += out - zero
            dG[rows] += back * isc

    def compute(self, x, species, nl, forces=True, virial=True, grade=False):
        """Per-atom energies (without e0), forces, per-atom virials (9 per atom), the shortest
        pair and, with ``grade`` and a grade reference, per-atom extrapolation grades ("grade",
        from kernels.h's snnp_grade in the filter pass), all as device arrays; x and species
        already on the device."""
        cp, mod = self.cp, self.module
        n = int(x.shape[0])
        if isinstance(nl, NeighborList):
            off, nbr, vec = nl.d_offsets, nl.d_neighbors, nl.d_shift_vectors
            max_nb = nl.max_neighbors
        else:                                   # a host list: copy it over
            off, nbr = cp.asarray(nl.offsets), cp.asarray(nl.neighbors)
            vec = cp.asarray(nl.shift_vectors)
            max_nb = int(np.diff(nl.offsets).max()) if n else 0
            if nbr.size == 0:
                nbr, vec = cp.zeros(1, cp.int32), cp.zeros((1, 3))
        KG = self.KG
        e = cp.zeros(n)
        spare = cp.zeros(n)
        G = cp.zeros((n, max(KG, 1)))
        dG = cp.zeros((n, max(KG, 1)))
        F = cp.zeros((n, 3))
        W = cp.zeros((n, 9))
        rmin, jmin = cp.full(n, 1e300), cp.full(n, -1, dtype=cp.int32)
        grade = bool(grade) and self.grade_M > 0
        X = cp.zeros(max(n, 1) if grade else 1)
        per_atom = max(max_nb, 1) * (8 * self.per_neighbor + 8)
        chunk = max(BLOCK, min(n, _scratch_budget(cp) // per_atom) // BLOCK * BLOCK)
        threads = min(-(-n // BLOCK) * BLOCK, chunk)
        scratch = cp.empty(threads * max(max_nb, 1) * self.per_neighbor)
        iscratch = cp.empty(threads * max(max_nb, 1) * 2, dtype=cp.int32)
        atoms = mod.get_function("snnp_gpu_atoms")

        def sweep(mode, energies, gamma, want_G, want_f, want_grade):
            for first in range(0, n, chunk):
                count = min(chunk, n - first)
                _launch(atoms, count, self.args + (
                    np.int32(first), np.int32(count), x, species, off, nbr, vec, np.int32(mode),
                    gamma, np.int32(max_nb), scratch, iscratch, energies, np.int32(want_G), G,
                    np.int32(want_f), F, np.int32(want_f and virial), W, np.int32(want_grade),
                    X, rmin, jmin))

        # the core's energy and forces are pair terms of snnp_atom and the clamp acts on the
        # filters there, so every mode below carries them; the grade comes with the filters
        if self.mlp is None:                  # spline embedding only: one pass, in the kernel
            sweep(0, e, dG, 0, forces, grade)         # SNNP_FULL
        else:
            sweep(1, e, dG, 1, False, grade)          # SNNP_DESCRIPTORS: G, pair energy, grade
            if self.has_U:
                _launch(mod.get_function("snnp_gpu_embed_spline"), n,
                        self.args + (np.int32(n), species, G, e, dG))
            self._network(species, G, e, dG)
            if forces:
                sweep(2, spare, dG, 0, True, False)   # SNNP_BACKWARD: forces from dE/dG
        k = int(cp.argmin(rmin)) if n else 0
        out = {"energies": e, "forces": F, "atom_virial": W.reshape(n, 3, 3),
               "rmin": float(rmin[k]) if n else np.inf,
               "rmin_pair": (k, int(jmin[k])) if n else (-1, -1)}
        if grade:
            out["grade"] = X[:n]
        return out


def compute(model, positions, species, neighbors, want_forces, want_virial, want_atom_virial,
            grade=False):
    """The GPU counterpart of the CPU kernel call in ``Model.compute``: host arrays in and out,
    in the layout ``Tables.compute`` returns (energies, forces, virial, atom_virial, rmin, and
    with ``grade``, where the model carries a grade reference, the per-atom grades "grade")."""
    cp = _cupy()
    dev = model._device_model()
    if isinstance(neighbors, NeighborList):
        x = neighbors.d_positions         # uploaded by neighbors.update(positions, ...)
    else:
        x = cp.asarray(np.ascontiguousarray(positions, dtype=np.float64))
    sp = cp.asarray(np.ascontiguousarray(species, dtype=np.int32))
    out = dev.compute(x, sp, neighbors, forces=want_forces or want_virial or want_atom_virial,
                      virial=want_virial or want_atom_virial, grade=grade)
    res = {"energies": cp.asnumpy(out["energies"]), "rmin": out["rmin"],
           "rmin_pair": out["rmin_pair"]}
    if "grade" in out:
        res["grade"] = cp.asnumpy(out["grade"])
    if want_forces:
        res["forces"] = cp.asnumpy(out["forces"])
    if want_virial:
        res["virial"] = cp.asnumpy(out["atom_virial"].sum(axis=0))
    if want_atom_virial:
        res["atom_virial"] = cp.asnumpy(out["atom_virial"])
    return res
