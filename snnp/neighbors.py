"""Neighbour lists for periodic, non-periodic and mixed boundaries.

A cell list in the compiled kernels (``src_cython/neighbors.h``) does the search; this module
makes the geometric decisions: it validates the structure, completes the cell to a basis
along non-periodic directions, wraps atoms, and chooses bins and how many periodic images a
thin cell needs.  ``NeighborList`` keeps a Verlet skin so MD steps reuse the list until some
atom has moved more than half the skin.  See ``benchmarks/bench_neighbors.py`` for the
comparison with matscipy and vesin.
"""
import numpy as np

from . import _kernels

__all__ = ["NeighborList", "neighbor_list", "check_geometry"]

#: the search refuses cells that would need more periodic images than this per atom
MAX_IMAGES = 200_000


def check_geometry(positions, cell, pbc):
    """Validate and normalise a structure; returns (positions, cell, pbc) as float/bool arrays.

    Raises ValueError naming the problem: wrong shapes, NaN or infinite values, or a cell whose
    periodic directions span zero volume (area, length).
    """
    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {positions.shape}")
    if positions.shape[0] == 0:
        raise ValueError("the structure has no atoms")
    bad = np.flatnonzero(~np.all(np.isfinite(positions), axis=1))
    if bad.size:
        raise ValueError(f"positions of {bad.size} atom(s) are NaN or infinite "
                         f"(first: atom {bad[0]}, {positions[bad[0]].tolist()})")
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
    if not np.all(np.isfinite(cell)):
        raise ValueError("cell contains NaN or infinite values")
    pbc = np.asarray(pbc, dtype=bool)
    if pbc.shape == ():
        pbc = np.repeat(pbc, 3)
    if pbc.shape != (3,):
        raise ValueError(f"pbc must have 3 entries, got {pbc.shape}")
    periodic = cell[pbc]
    if periodic.shape[0]:
        sv = np.linalg.svd(periodic, compute_uv=False)
        scale = max(np.linalg.norm(periodic, axis=1).max(), 1e-300)
        if sv.min() <= 1e-10 * scale:
            what = {3: "volume", 2: "area", 1: "length"}[periodic.shape[0]]
            raise ValueError(f"the cell has zero {what} along its periodic directions "
                             f"(pbc={pbc.tolist()}, cell={cell.tolist()})")
    return positions, cell, pbc


def _effective_cell(cell, pbc):
    """The cell with non-periodic directions replaced, where needed, so the rows form a basis."""
    norms = np.linalg.norm(cell, axis=1)
    if abs(np.linalg.det(cell)) > 1e-9 * max(np.prod(norms), 1e-300):
        return cell.copy()
    eff = cell.copy()
    basis = [b / np.linalg.norm(b) for b in np.linalg.qr(cell[pbc].T)[0].T] if pbc.any() else []

    def residual(v):
        v = np.array(v, dtype=float)
        for b in basis:     # Gram-Schmidt against the directions we have
            v -= np.dot(v, b) * b
        return v

    for d in np.flatnonzero(~pbc):
        v = residual(cell[d])
        if np.linalg.norm(v) <= 1e-6 * max(norms[d], 1e-300) or norms[d] == 0:
            v = max((residual(e) for e in np.eye(3)), key=np.linalg.norm)
        eff[d] = v / np.linalg.norm(v)
        basis.append(eff[d])
    return eff


def neighbor_list(positions, cell, pbc, cutoff):
    """Full neighbour list of all pairs closer than ``cutoff``.

    Returns ``(offsets, neighbors, shifts)``: the neighbours of atom i are
    ``neighbors[offsets[i]:offsets[i+1]]`` and ``r_ij = x_j - x_i + shifts @ cell`` for each.
    """
    return _search(positions, cell, pbc, cutoff)[:3]


def _matmul(a, b):
    """(N, 3) x (3, 3) without BLAS: a multithreaded BLAS leaves spinning workers that steal the
    cores the OpenMP kernels run on next (benchmarks/bench_meam_spline.py showed this)."""
    return np.einsum("ij,jk->ik", a, b, optimize=False)


def cell_list(positions, cell, pbc, cutoff):
    """The cell list the search kernel (neighbors.h, ``snnp_cells``) walks, as a dict of arrays:
    wrapped positions ``xw``, wrap ``image``, ``bin`` per atom, effective ``cell``, ``pbc``, bins
    ``nb``, stencil ``reach``, ``bin_start`` / ``bin_atoms`` (atoms sorted by bin) and ``cutoff``.
    Validates the structure first (``check_geometry``)."""
    positions, cell, pbc = check_geometry(positions, cell, pbc)
    cutoff = float(cutoff)
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    eff = _effective_cell(cell, pbc)
    inv = np.linalg.inv(eff)
    frac = _matmul(positions, inv)
    image = np.zeros(frac.shape, dtype=np.intc)
    image[:, pbc] = np.floor(frac[:, pbc]).astype(np.intc)
    frac = frac - image
    xw = positions - _matmul(image.astype(float), eff)
    volume = abs(np.linalg.det(eff))
    spacing = np.array([volume / np.linalg.norm(np.cross(eff[(d + 1) % 3], eff[(d + 2) % 3]))
                        for d in range(3)])
    lo = np.where(pbc, 0.0, frac.min(axis=0))
    span = np.where(pbc, 1.0, frac.max(axis=0) - lo)
    length = span * spacing                          # extent along each plane normal, in Angstrom
    nb = np.maximum(1, np.floor(length / cutoff)).astype(np.int64)
    limit = max(8 * positions.shape[0], 1000)
    while np.prod(nb) > limit:
        d = int(np.argmax(nb))
        nb[d] = max(1, nb[d] // 2)
    thick = length / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.where(thick > 0, np.ceil(cutoff / thick), 0).astype(np.int64)
    reach = np.where(pbc, reach, np.minimum(reach, nb - 1))
    images = np.prod(2 * reach + 1)
    if images > MAX_IMAGES:
        d = int(np.argmin(np.where(pbc, spacing, np.inf)))
        raise ValueError(f"the cell is too small for this cutoff: periodic planes along cell "
                         f"vector {d} are {spacing[d]:.3g} A apart, the cutoff is {cutoff:.3g} A, "
                         f"so each atom would meet {images} images")
    with np.errstate(divide="ignore", invalid="ignore"):
        bins = np.where(span > 0, np.floor((frac - lo) / span * nb), 0)
    bins = np.clip(bins, 0, nb - 1).astype(np.intc)
    linear = (bins[:, 0].astype(np.int64) * nb[1] + bins[:, 1]) * nb[2] + bins[:, 2]
    order = np.argsort(linear, kind="stable").astype(np.intc)
    start = np.zeros(np.prod(nb) + 1, dtype=np.int64)
    np.cumsum(np.bincount(linear, minlength=np.prod(nb)), out=start[1:])
    return {"xw": xw, "image": image, "bin": bins, "cell": eff, "pbc": pbc.astype(np.intc),
            "nb": nb.astype(np.intc), "reach": reach.astype(np.intc), "bin_start": start,
            "bin_atoms": order, "cutoff": cutoff}


def _search(positions, cell, pbc, cutoff):
    c = cell_list(positions, cell, pbc, cutoff)
    return _kernels.neighbor_search(c["xw"], c["image"], c["bin"], c["cell"], c["pbc"], c["nb"],
                                    c["reach"], c["bin_start"], c["bin_atoms"], c["cutoff"])


class NeighborList:
    """A full neighbour list with a Verlet skin, rebuilt only when it may have gone stale.

    The list holds all pairs within ``cutoff + skin``; kernels skip pairs beyond ``cutoff``.
    It is rebuilt when the number of atoms, the cell or the boundaries change, or when an atom
    has moved more than ``skin / 2`` since the last build.
    """

    def __init__(self, cutoff, skin=0.0):
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        if self.skin < 0:
            raise ValueError(f"skin must be >= 0, got {skin}")
        self._ref = None
        self.n_builds = 0

    def update(self, positions, cell, pbc):
        """Make the list valid for these positions; returns True if it was rebuilt."""
        positions, cell, pbc = check_geometry(positions, cell, pbc)
        if self._ref is not None:
            x0, c0, p0 = self._ref
            if (x0.shape == positions.shape and np.array_equal(c0, cell)
                    and np.array_equal(p0, pbc)):
                if self._moved2(positions, x0) <= (0.5 * self.skin) ** 2:
                    return False
        self._build(positions, cell, pbc)
        self._ref = (positions.copy(), cell.copy(), pbc.copy())
        self.n_builds += 1
        return True

    def _build(self, positions, cell, pbc):
        self.offsets, self.neighbors, self.shifts, self.shift_vectors = _search(
            positions, cell, pbc, self.cutoff + self.skin)

    def _moved2(self, positions, reference):
        """Largest squared displacement of an atom since the last build."""
        return np.max(np.sum((positions - reference) ** 2, axis=1))
