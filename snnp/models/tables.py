"""Packing a model for the C kernels: ``model.tables`` (an ``snnp._kernels.Tables``).

The kernels see every spline as a block of splines sharing one knot grid, in the order pair
term, radial filters rho, angular filters f and g, U (``_block_layout``), packed into flat
arrays by ``_pack``; per species (pair) index arrays say which block each part uses.  The
tables are built on first use and cached: call ``model.invalidate()`` after changing
parameters in place (``set_params`` and the core and grade setters do).  ``_device_model``
is the same on the GPU (``snnp.backends.gpu``).  ``snnp.io.lammps_snnp`` writes these tables
for LAMMPS ``pair_style snnp``.
"""
import numpy as np

from .. import _kernels
from ..filters import pair_keys

__all__ = ["KernelTablesMixin", "pair_index"]


def pair_index(a, b, n):
    """Index of the unordered species pair (a, b) in the order (0,0), (0,1)..(0,n-1), (1,1)..."""
    a, b = min(a, b), max(a, b)
    return a * n - a * (a - 1) // 2 + (b - a)


def _pack(blocks):
    """Pack blocks (lists of Splines sharing one knot grid) into the kernels' flat layout."""
    x0, h, nint, off, coef = [], [], [], [], []
    pos = 0
    for splines in blocks:
        first = splines[0]
        C = np.stack([s.coefficients() for s in splines], axis=2)            # (n-1, 4, K)
        ext = np.array([[s.values[0], s.d0, s.values[-1], s.dN] for s in splines]).T   # (4, K)
        data = np.concatenate([C.ravel(), ext.ravel()])
        x0.append(first.x0)
        h.append(first.h)
        nint.append(first.n_knots - 1)
        off.append(pos)
        coef.append(data)
        pos += data.size
    coef = np.concatenate(coef) if coef else np.zeros(0)
    return np.array(x0, float), np.array(h, float), np.array(nint), np.array(off), coef


class KernelTablesMixin:
    """``Model``'s kernel tables: block layout, packing, caching, the GPU copy."""

    def invalidate(self):
        """Call after changing parameters in place so the kernel tables are rebuilt."""
        self._cached_tables = None
        self._cached_device = None

    def __getstate__(self):
        """Pickle and deep-copy without the compiled kernel tables and GPU copies (extension
        objects that cannot be pickled); they are rebuilt on the next evaluation."""
        state = self.__dict__.copy()
        state["_cached_tables"] = None
        state["_cached_device"] = None
        return state

    @property
    def tables(self):
        if self._cached_tables is None:
            self._cached_tables = self._tables()
        return self._cached_tables

    def _block_layout(self):
        """Blocks in kernel order and the index of each part's first block."""
        n = self.n_species
        pairs = pair_keys(n)
        blocks, first = [], {}
        if self.pair is not None:
            first["pair"] = len(blocks)
            blocks += [[self.pair[p]] for p in pairs]
        first["rho"] = len(blocks)
        blocks += self.filters.rho
        if self.filters.f is not None:
            first["f"] = len(blocks)
            blocks += self.filters.f
            first["g"] = len(blocks)
            blocks += [self.filters.g[p] for p in pairs]
        if self.U is not None:
            first["U"] = len(blocks)
            blocks += [[s] for s in self.U]
        return blocks, first

    def _tables(self):
        n = self.n_species
        blocks, first = self._block_layout()
        x0, h, nint, off, coef = _pack(blocks)
        pidx = np.array([[pair_index(a, b, n) for b in range(n)] for a in range(n)]).ravel()
        per_species = lambda part: (first[part] + np.arange(n)) if part in first else np.full(n, -1)
        per_pair = lambda part: (first[part] + pidx) if part in first else np.full(n * n, -1)
        U0 = np.array([float(u(0.0)) for u in self.U]) if self.U is not None else np.zeros(n)
        return _kernels.Tables(n, self.n_radial, self.n_angular, self.cutoff, x0, h, nint, off,
                               coef, per_pair("pair"), per_species("rho"), per_species("f"),
                               per_pair("g"), per_species("U"), U0,
                               mlp=self.mlp.kernel_spec() if self.mlp is not None else None,
                               core=None if self.core is None else self.core.table(),
                               grade=None if self.extrapolation is None
                               else self.extrapolation.kernel_reference())

    def _device_model(self):
        """This model's tables on the GPU (snnp.backends.gpu), built once per parameter set."""
        if self._cached_device is None:
            from ..backends import gpu
            self._cached_device = gpu.DeviceModel(self)
        return self._cached_device
