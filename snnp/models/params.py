"""The flat parameter vector of a model (what fits optimise).

Order: e0, then every spline (pair term, radial filters, angular filters f and g, U; a spline
pinned to value 0 and slope 0 at its end lacks those two; a filter tied across neighbour species,
``FilterBank.shared``, appears once), then the MLP weights.  ``param_layout``
gives each group's slice; ``_data_grad_to_params`` maps a gradient over the kernels' packed
spline data (``tables.py``) onto these parameters.
"""
import numpy as np

from ..filters import pair_keys
from ..splines import coefficient_matrix

__all__ = ["ParametersMixin"]


class ParametersMixin:
    """``Model``'s parameter vector: layout, get and set, groups, gradient mapping."""

    #: parameter groups in the order of the flat vector
    PARAM_GROUPS = ("e0", "pair", "radial", "angular", "U", "mlp")

    @property
    def n_params(self):
        """Number of free parameters: splines (less pinned ends), MLP weights, e0."""
        return self.param_layout()[-1][1].stop

    def _spline_entries(self):
        """(group, spline, pinned) for every spline, in the order of the parameter vector."""
        pinned = self.filters.pinned
        rho, f, g = self.filters.primary()
        out = [("pair", self.pair[k], pinned) for k in pair_keys(self.n_species)] if self.pair else []
        out += [("radial", s, pinned) for bank in rho for s in bank]
        if f is not None:
            out += [("angular", s, pinned) for bank in f for s in bank]
            out += [("angular", s, False) for bank in g for s in bank]
        out += [("U", s, False) for s in (self.U or [])]
        return out

    def param_layout(self):
        """Slices of the flat parameter vector: list of (group, slice) in vector order."""
        sizes = [("e0", self.n_species)]
        sizes += [(g, s.params.size - (2 if pin else 0)) for g, s, pin in self._spline_entries()]
        if self.mlp is not None:
            sizes.append(("mlp", self.mlp.n_params))
        out, pos = [], 0
        for g, n in sizes:
            out.append((g, slice(pos, pos + n)))
            pos += n
        return out

    def get_params(self):
        """All free parameters as one flat vector (groups in ``PARAM_GROUPS`` order)."""
        parts = [self.e0]
        for _, s, pin in self._spline_entries():
            p = s.params
            parts.append(np.concatenate([p[:-3], p[-2:-1]]) if pin else p)
        if self.mlp is not None:
            parts.append(np.concatenate(self.mlp.flat_weights()))
        return np.concatenate(parts)

    def set_params(self, vector):
        """Set every free parameter from a flat vector laid out as ``get_params``."""
        vector = np.asarray(vector, dtype=float)
        layout = self.param_layout()
        if vector.shape != (layout[-1][1].stop,):
            raise ValueError(f"parameter vector needs {layout[-1][1].stop} values, got {vector.shape}")
        self.e0 = vector[layout[0][1]].copy()
        for (group, s, pin), (_, sl) in zip(self._spline_entries(), layout[1:]):
            v = vector[sl]
            if pin:     # values except the last (0), d0; dN stays 0
                s.values[:-1] = v[:-1]
                s.d0 = float(v[-1])
            else:
                s.values[:] = v[:-2]
                s.d0, s.dN = float(v[-2]), float(v[-1])
        self.filters.sync()
        if self.mlp is not None:
            flat = vector[layout[-1][1]]
            per = self.mlp.n_params // self.n_species
            for a, layers in enumerate(self.mlp.weights):
                chunk, pos = flat[a * per:(a + 1) * per], 0
                new = []
                for W, b in layers:
                    W = chunk[pos:pos + W.size].reshape(W.shape)
                    pos += W.size
                    new.append((W.copy(), chunk[pos:pos + b.size].copy()))
                    pos += b.size
                self.mlp.weights[a] = new
        self.invalidate()

    def param_groups(self):
        """Boolean masks over the parameter vector, one per group."""
        n = self.param_layout()[-1][1].stop
        masks = {g: np.zeros(n, bool) for g in self.PARAM_GROUPS}
        for g, sl in self.param_layout():
            masks[g][sl] = True
        return masks

    def _data_grad_to_params(self, data_grad):
        """Map a gradient over the kernels' packed spline data to the spline parameters.

        Returns a list aligned with ``_spline_entries`` (None for splines not in the kernel
        tables' gradient, i.e. U, whose gradient the embedding computes)."""
        blocks, _ = self._block_layout()
        # offsets in _pack's layout, from the knot counts alone (no coefficients needed)
        sizes = [((b[0].n_knots - 1) * 4 + 4) * len(b) for b in blocks]
        off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        by_id = {}
        for b, splines in enumerate(blocks):
            n = splines[0].n_knots
            K = len(splines)
            C = data_grad[off[b]:off[b] + (n - 1) * K * 4].reshape(n - 1, 4, K)
            ext = data_grad[off[b] + (n - 1) * K * 4: off[b] + (n - 1) * K * 4 + 4 * K].reshape(4, K)
            M = coefficient_matrix(n, splines[0].h)
            for k, s in enumerate(splines):
                g = np.einsum("ic,icp->p", C[:, :, k], M)
                g[0] += ext[0, k]
                g[n] += ext[1, k]
                g[n - 1] += ext[2, k]
                g[n + 1] += ext[3, k]
                by_id[id(s)] = g
        for group in self.filters.tied():          # one function: the sum over its copies
            by_id[id(group[0])] = sum(by_id[id(s)] for s in group)
        return [by_id.get(id(s)) for _, s, _ in self._spline_entries()]
