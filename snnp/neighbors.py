"""Neighbour lists for periodic, non-periodic and mixed boundaries.

A cell list in the compiled kernels (``src_cython/neighbors.h``) does the search; this module
makes the geometric decisions: it validates the structure, reduces the periodic lattice
(Minkowski reduction, ASE's ``minkowski_reduce``) so a strongly skewed cell is searched in its
most compact basis, completes the cell to a basis along non-periodic directions (orthogonal to
the periodic ones), wraps atoms, and chooses bins and how many periodic images a thin cell
needs.  Integer shifts are reported in the caller's cell basis; Cartesian shift vectors, and so
energies, forces and stress, do not depend on which basis of the lattice was given.
``NeighborList`` keeps a Verlet skin so MD steps reuse the list until some atom has moved more
than half the skin.  See ``benchmarks/bench_neighbors.py`` for the
comparison with matscipy and vesin.
"""
import numpy as np

from . import _kernels

__all__ = ["NeighborList", "neighbor_list", "check_geometry"]

#: the search refuses cells that would need more periodic images than this per atom
MAX_IMAGES = 200_000
#: the search refuses structures in which an atom has more neighbours than this within the
#: cutoff (dense matter has a few hundred even at a 10 A cutoff; 10^4 means a cell far too small
#: or given in the wrong unit, and the angular terms' cost grows as its square)
MAX_NEIGHBORS = 10_000
#: the search refuses atoms more than this many cell lengths outside the cell along a periodic
#: direction (integer image shifts are 32-bit in the kernels; positions that far out have lost
#: the precision a distance needs anyway)
MAX_WRAP = 2 ** 24


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
    if pbc.any() and _degenerate(cell, pbc):
        what = {3: "volume", 2: "area", 1: "length"}[int(pbc.sum())]
        raise ValueError(f"the cell has zero {what} along its periodic directions "
                         f"(pbc={pbc.tolist()}, cell={cell.tolist()})")
    return positions, cell, pbc


def _thin(vectors, rtol):
    """Whether the rows span less than their number of dimensions, to relative tolerance rtol."""
    sv = np.linalg.svd(vectors, compute_uv=False)
    scale = max(np.linalg.norm(vectors, axis=1).max(), 1e-300)
    return not sv.min() > rtol * scale


def _degenerate(cell, pbc):
    """Whether the periodic rows of ``cell`` span zero volume (area, length).  A strongly
    skewed basis of a sound lattice looks nearly singular; it is judged by its reduced form."""
    periodic = cell[pbc]
    if not _thin(periodic, 1e-10):
        return False
    if periodic.shape[0] < 2 or _thin(periodic, 1e-14):   # singular to rounding: no lattice
        return True
    try:
        reduced, _ = reduce_cell(cell, pbc)
    except ValueError:
        return True
    return _thin(reduced[pbc], 1e-10)


def reduce_cell(cell, pbc):
    """The Minkowski-reduced basis of the periodic lattice (ASE's ``minkowski_reduce``) and the
    unimodular integer matrix ``op`` with ``reduced = op @ cell``; ``op`` is None where the
    cell is already reduced (or has fewer than two periodic directions), and ``reduced`` is then
    ``cell`` itself.  Non-periodic rows are left as they are.  Raises ValueError where the
    periodic rows are degenerate."""
    cell = np.asarray(cell, dtype=float)
    pbc = np.asarray(pbc, dtype=bool)
    if pbc.sum() < 2:
        return cell, None
    from ase.geometry.minkowski_reduction import is_minkowski_reduced, minkowski_reduce
    if is_minkowski_reduced(cell, pbc):
        return cell, None
    try:
        with np.errstate(all="raise"):
            _, op = minkowski_reduce(cell, pbc)
    except (RuntimeError, ValueError, ZeroDivisionError, FloatingPointError, OverflowError) as e:
        raise ValueError(f"the periodic cell vectors do not form a lattice basis: "
                         f"cell={cell.tolist()}, pbc={pbc.tolist()} ({e})") from None
    op = np.asarray(op, dtype=np.int64)
    keep = np.eye(3, dtype=np.int64)
    if (np.array_equal(op, keep) or abs(round(np.linalg.det(op))) != 1
            or not np.array_equal(op[~pbc], keep[~pbc]) or np.any(op[pbc][:, ~pbc])):
        return cell, None                     # nothing to gain (or not a periodic-only change)
    reduced = cell.copy()
    reduced[pbc] = op[pbc].astype(float) @ cell
    return reduced, op


def _effective_cell(cell, pbc):
    """The cell the search bins in, and ``op`` (see ``reduce_cell``; None for the caller's
    basis): the periodic rows Minkowski-reduced, and each non-periodic row replaced, unless it
    already is, by a vector orthogonal to the periodic rows (and to the non-periodic rows before
    it), so the rows form a basis whose periodic planes are as far apart as the lattice allows.
    Only periodic rows are lattice vectors; the non-periodic ones just orient the bins."""
    eff, op = reduce_cell(cell, pbc)
    eff = eff.copy()
    norms = np.linalg.norm(cell, axis=1)
    basis = list(np.linalg.qr(eff[pbc].T)[0].T) if pbc.any() else []

    def residual(v):
        v = np.array(v, dtype=float)
        for b in basis:     # Gram-Schmidt against the directions we have
            v -= np.dot(v, b) * b
        return v

    for d in np.flatnonzero(~pbc):
        v = residual(cell[d])
        if norms[d] > 0 and np.linalg.norm(v) >= (1 - 1e-9) * norms[d]:
            eff[d] = cell[d]                         # already orthogonal: keep it as given
        else:
            if np.linalg.norm(v) <= 1e-6 * max(norms[d], 1e-300) or norms[d] == 0:
                v = max((residual(e) for e in np.eye(3)), key=np.linalg.norm)
            eff[d] = v / np.linalg.norm(v)
        basis.append(eff[d] / np.linalg.norm(eff[d]))
    return eff, op


def neighbor_list(positions, cell, pbc, cutoff):
    """Full neighbour list of all pairs closer than ``cutoff``.

    Returns ``(offsets, neighbors, shifts)``: the neighbours of atom i are
    ``neighbors[offsets[i]:offsets[i+1]]`` and ``r_ij = x_j - x_i + shifts @ cell`` for each
    (integer shifts in the basis ``cell`` as given, whether or not it is reduced).
    """
    return _search(positions, cell, pbc, cutoff)[:3]


def _matmul(a, b):
    """(N, 3) x (3, 3) without BLAS: a multithreaded BLAS leaves spinning workers that steal the
    cores the OpenMP kernels run on next (benchmarks/bench_meam_spline.py showed this)."""
    return np.einsum("ij,jk->ik", a, b, optimize=False)


def cell_list(positions, cell, pbc, cutoff):
    """The cell list the search kernel (neighbors.h, ``snnp_cells``) walks, as a dict of arrays:
    wrapped positions ``xw``, wrap ``image``, ``bin`` per atom, effective ``cell``, ``pbc``, bins
    ``nb``, stencil ``reach``, ``bin_start`` / ``bin_atoms`` (atoms sorted by bin), ``cutoff``,
    and ``basis``: None, or the integer matrix ``op`` of a reduced lattice basis (the effective
    cell's periodic rows are ``op @ cell``), by which the kernel's integer shifts, in the
    effective cell's basis, convert to the caller's: ``shifts @ op``.
    Validates the structure first (``check_geometry``)."""
    positions, cell, pbc = check_geometry(positions, cell, pbc)
    cutoff = float(cutoff)
    if not (cutoff > 0 and np.isfinite(cutoff)):
        raise ValueError(f"cutoff must be positive and finite, got {cutoff}")
    eff, op = _effective_cell(cell, pbc)
    inv = np.linalg.inv(eff)
    frac = _matmul(positions, inv)
    image = np.zeros(frac.shape, dtype=np.intc)
    wrap = np.floor(frac[:, pbc])
    if wrap.size and np.abs(wrap).max() > MAX_WRAP:
        k, d = np.unravel_index(np.argmax(np.abs(wrap)), wrap.shape)
        raise ValueError(f"atom {k} lies {abs(wrap[k, d]):.3g} cell widths outside the cell "
                         f"along a periodic direction (at most {MAX_WRAP} are supported): wrap "
                         f"the positions into the cell first (atoms.wrap())")
    image[:, pbc] = wrap.astype(np.intc)
    frac = frac - image
    xw = positions - _matmul(image.astype(float), eff)
    volume = abs(np.linalg.det(eff))
    spacing = np.array([volume / np.linalg.norm(np.cross(eff[(d + 1) % 3], eff[(d + 2) % 3]))
                        for d in range(3)])
    lo = np.where(pbc, 0.0, frac.min(axis=0))
    span = np.where(pbc, 1.0, frac.max(axis=0) - lo)
    length = span * spacing                          # extent along each plane normal, in Angstrom
    limit = max(8 * positions.shape[0], 1000)
    # bins per direction, counted in floating point and capped first: a huge box (1e7 A) or
    # atoms far apart along an open direction must not overflow the integer bin count
    nb = np.clip(np.floor(np.nan_to_num(length / cutoff, posinf=limit)), 1, limit)
    while np.prod(nb) > limit:
        d = int(np.argmax(nb))
        nb[d] = max(1.0, np.floor(nb[d] / 2))
    nb = nb.astype(np.int64)
    thick = length / nb
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        reach = np.where(thick > 0, np.ceil(np.minimum(cutoff / thick, 2.0 ** 40)), 0)
    reach = np.where(pbc, reach, np.minimum(reach, nb - 1)).astype(np.int64)
    images = float(np.prod(2.0 * reach + 1))
    if images > MAX_IMAGES:
        d = int(np.argmin(np.where(pbc, spacing, np.inf)))
        raise ValueError(f"the cell is too small for this cutoff: its periodic planes are "
                         f"{spacing[d]:.3g} A apart (the cell's thinnest width, after lattice "
                         f"reduction), the cutoff is {cutoff:.3g} A, so each atom would meet "
                         f"{images:.3g} periodic images (at most {MAX_IMAGES}); use a larger "
                         f"cell or a supercell (atoms.repeat)")
    with np.errstate(divide="ignore", invalid="ignore"):
        bins = np.where(span > 0, np.floor((frac - lo) / span * nb), 0)
    bins = np.clip(bins, 0, nb - 1).astype(np.intc)
    linear = (bins[:, 0].astype(np.int64) * nb[1] + bins[:, 1]) * nb[2] + bins[:, 2]
    order = np.argsort(linear, kind="stable").astype(np.intc)
    start = np.zeros(np.prod(nb) + 1, dtype=np.int64)
    np.cumsum(np.bincount(linear, minlength=np.prod(nb)), out=start[1:])
    return {"xw": xw, "image": image, "bin": bins, "cell": eff, "pbc": pbc.astype(np.intc),
            "nb": nb.astype(np.intc), "reach": reach.astype(np.intc), "bin_start": start,
            "bin_atoms": order, "cutoff": cutoff, "basis": op}


def to_caller_basis(shifts, basis):
    """Integer image shifts in the effective cell's basis -> the caller's cell basis."""
    if basis is None:
        return shifts
    out = np.asarray(shifts, dtype=np.int64) @ basis
    info = np.iinfo(np.intc)
    if out.size and (out.min() < info.min or out.max() > info.max):
        return out                  # a very skewed basis: shifts beyond 32 bits stay int64
    return out.astype(np.intc)


def check_neighbor_counts(counts, cutoff):
    """Raise ValueError when some atom has more than ``MAX_NEIGHBORS`` neighbours."""
    counts = np.asarray(counts)
    if counts.size and counts.max() > MAX_NEIGHBORS:
        i = int(np.argmax(counts))
        raise ValueError(f"atom {i} has {int(counts[i])} neighbours within {cutoff:.3g} A (at most "
                         f"{MAX_NEIGHBORS} are supported): the structure is far denser than "
                         f"matter, its cell too small for this cutoff (or given in nm, not A)")


def _search(positions, cell, pbc, cutoff):
    c = cell_list(positions, cell, pbc, cutoff)
    offsets, neighbors, shifts, vectors = _kernels.neighbor_search(
        c["xw"], c["image"], c["bin"], c["cell"], c["pbc"], c["nb"], c["reach"], c["bin_start"],
        c["bin_atoms"], c["cutoff"])
    check_neighbor_counts(np.diff(offsets), c["cutoff"])
    return offsets, neighbors, to_caller_basis(shifts, c["basis"]), vectors


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
