"""Clamped cubic splines on uniform knots (the LAMMPS ``meam/spline`` convention).

A spline has n uniform knots x_0..x_{n-1}, values y_0..y_{n-1} and clamped end slopes d_0, d_N.
Its parameter vector ``p = (y_0..y_{n-1}, d_0, d_N)`` is what files store and what training
changes.  The interpolating cubic is linear in p, so a fixed matrix ``M`` (one per knot count)
maps p to the per-interval coefficients the kernels evaluate (docs/theory.md, "Splines").
Outside the knots the spline continues linearly with the end slopes.
"""
from functools import lru_cache

import numpy as np

__all__ = ["Spline", "coefficient_matrix", "UNIFORM_TOLERANCE"]

#: knots further than this from a uniform grid are rejected (LAMMPS uses the same 1e-8)
UNIFORM_TOLERANCE = 1e-8


@lru_cache(maxsize=256)
def _slope_matrix(n):
    """Knot slopes of the clamped spline as a linear map: m = Sy @ y / h + Sd @ (d0, dN).

    From the clamped-spline conditions
    m_0 = d0, m_{n-1} = dN and m_{i-1} + 4 m_i + m_{i+1} = 3 (y_{i+1} - y_{i-1}) / h.
    """
    A = np.zeros((n, n))
    By = np.zeros((n, n))      # right-hand side from y (times 1/h)
    Bd = np.zeros((n, 2))      # right-hand side from (d0, dN)
    A[0, 0] = 1.0
    Bd[0, 0] = 1.0
    A[n - 1, n - 1] = 1.0
    Bd[n - 1, 1] = 1.0
    for i in range(1, n - 1):
        A[i, i - 1], A[i, i], A[i, i + 1] = 1.0, 4.0, 1.0
        By[i, i + 1], By[i, i - 1] = 3.0, -3.0
    Ainv = np.linalg.inv(A)
    return Ainv @ By, Ainv @ Bd


@lru_cache(maxsize=256)
def coefficient_matrix(n, h):
    """M with shape (n-1, 4, n+2): coefficients C[i, c] = M[i, c] @ p of interval i.

    On interval i, with u = (x - x_i)/h in [0, 1], the spline is
    C[i,0] + C[i,1] u + C[i,2] u^2 + C[i,3] u^3 (Hermite form in the knot values and slopes).
    """
    Sy, Sd = _slope_matrix(n)
    # slopes times h as a linear map of p
    mh = np.zeros((n, n + 2))
    mh[:, :n] = Sy
    mh[:, n:] = Sd * h
    Y = np.zeros((n, n + 2))
    Y[:, :n] = np.eye(n)
    M = np.zeros((n - 1, 4, n + 2))
    for i in range(n - 1):
        y0, y1, m0, m1 = Y[i], Y[i + 1], mh[i], mh[i + 1]
        M[i, 0] = y0
        M[i, 1] = m0
        M[i, 2] = 3.0 * (y1 - y0) - 2.0 * m0 - m1
        M[i, 3] = 2.0 * (y0 - y1) + m0 + m1
    M.setflags(write=False)
    return M


class Spline:
    """A clamped cubic spline on uniform knots.

    Parameters
    ----------
    x0, x1 : float
        First and last knot (x0 < x1).
    values : array_like, shape (n,)
        Values at the n >= 2 uniform knots.
    d0, dN : float
        Slopes at the first and last knot.
    """

    __slots__ = ("x0", "x1", "values", "d0", "dN")

    def __init__(self, x0, x1, values, d0=0.0, dN=0.0):
        values = np.array(values, dtype=float).ravel()
        if values.size < 2:
            raise ValueError(f"a spline needs at least 2 knots, got {values.size}")
        x0, x1, d0, dN = float(x0), float(x1), float(d0), float(dN)
        if not (np.isfinite(x0) and np.isfinite(x1) and x1 > x0):
            raise ValueError(f"spline knots must satisfy x0 < x1, got x0={x0}, x1={x1}")
        if not (np.all(np.isfinite(values)) and np.isfinite(d0) and np.isfinite(dN)):
            raise ValueError("spline values and end slopes must be finite")
        self.x0, self.x1, self.values, self.d0, self.dN = x0, x1, values, d0, dN

    @classmethod
    def from_knots(cls, x, y, d0, dN, tol=UNIFORM_TOLERANCE):
        """Build from explicit knot positions, which must be uniform (as LAMMPS requires)."""
        x = np.asarray(x, dtype=float)
        if x.size < 2:
            raise ValueError(f"a spline needs at least 2 knots, got {x.size}")
        grid = np.linspace(x[0], x[-1], x.size)
        bad = np.flatnonzero(np.abs(grid - x) > tol)
        if bad.size:
            k = bad[0]
            raise ValueError(f"spline knots are not uniform: knot {k} is at {x[k]!r}, "
                             f"a uniform grid from {x[0]} to {x[-1]} has it at {grid[k]!r}")
        return cls(x[0], x[-1], y, d0, dN)

    @classmethod
    def from_params(cls, x0, x1, params):
        p = np.asarray(params, dtype=float)
        return cls(x0, x1, p[:-2], p[-2], p[-1])

    # -- parameter view -------------------------------------------------------------------
    @property
    def n_knots(self):
        return self.values.size

    @property
    def h(self):
        return (self.x1 - self.x0) / (self.n_knots - 1)

    @property
    def knots(self):
        return np.linspace(self.x0, self.x1, self.n_knots)

    @property
    def params(self):
        """The parameter vector p = (y_0..y_{n-1}, d_0, d_N)."""
        return np.concatenate([self.values, [self.d0, self.dN]])

    def copy(self):
        return Spline(self.x0, self.x1, self.values.copy(), self.d0, self.dN)

    def to_dict(self):
        return {"x0": self.x0, "x1": self.x1, "values": self.values.tolist(),
                "d0": self.d0, "dN": self.dN}

    @classmethod
    def from_dict(cls, d):
        return cls(d["x0"], d["x1"], d["values"], d["d0"], d["dN"])

    def __eq__(self, other):
        return (isinstance(other, Spline) and self.x0 == other.x0 and self.x1 == other.x1
                and np.array_equal(self.values, other.values)
                and self.d0 == other.d0 and self.dN == other.dN)

    def __repr__(self):
        return f"Spline(x0={self.x0}, x1={self.x1}, n_knots={self.n_knots})"

    # -- evaluation -----------------------------------------------------------------------
    def coefficients(self):
        """Per-interval cubic coefficients, shape (n-1, 4), in u = (x - x_i)/h."""
        return coefficient_matrix(self.n_knots, self.h) @ self.params

    def second_derivatives(self):
        """Second derivatives at the knots (the third column of LAMMPS spline files)."""
        C = self.coefficients()
        h2 = self.h ** 2
        y2 = np.empty(self.n_knots)
        y2[:-1] = 2.0 * C[:, 2] / h2
        y2[-1] = (2.0 * C[-1, 2] + 6.0 * C[-1, 3]) / h2
        return y2

    def basis(self, x):
        """Matrices Bv, Bd, Bdd (len(x), n+2) with s(x) = Bv p, s'(x) = Bd p, s''(x) = Bdd p.

        The spline is linear in its parameters p; these rows are what gradients with respect to
        p need (the embedding U in training, curvature penalties)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        n, h = self.n_knots - 1, self.h
        M = coefficient_matrix(self.n_knots, h)
        t = (x - self.x0) / h
        i = np.clip(np.floor(t).astype(int), 0, n - 1)
        u = (t - i)[:, None]
        one, zero = np.ones_like(u), np.zeros_like(u)
        Bv = np.einsum("rc,rcp->rp", np.hstack([one, u, u * u, u ** 3]), M[i])
        Bd = np.einsum("rc,rcp->rp", np.hstack([zero, one, 2 * u, 3 * u * u]), M[i]) / h
        Bdd = np.einsum("rc,rcp->rp", np.hstack([zero, zero, 2 * one, 6 * u]), M[i]) / h ** 2
        for mask, k_y, k_d, xe in ((t <= 0, 0, n + 1, self.x0), (t >= n, n, n + 2, self.x1)):
            if mask.any():
                Bv[mask] = 0.0
                Bd[mask] = 0.0
                Bdd[mask] = 0.0
                Bv[mask, k_y] = 1.0
                Bv[mask, k_d] = x[mask] - xe
                Bd[mask, k_d] = 1.0
        return Bv, Bd, Bdd

    def curvature_matrix(self):
        """Q with p^T Q p = integral of s''(x)^2 over the knots (a smoothness penalty)."""
        h = self.h
        M = coefficient_matrix(self.n_knots, h)
        # s'' = (2 c2 + 6 c3 u) / h^2 on each interval; integral over u in [0, 1] times h
        q = np.array([[4.0, 6.0], [6.0, 12.0]])
        C23 = M[:, 2:4, :]                          # (n, 2, n+2)
        return np.einsum("iap,ab,ibq->pq", C23, q, C23) / h ** 3

    def __call__(self, x, derivative=False):
        """NumPy reference evaluation: value (and slope if ``derivative``), linear outside."""
        x = np.asarray(x, dtype=float)
        C = self.coefficients()
        n = self.n_knots - 1
        t = (x - self.x0) / self.h
        i = np.clip(np.floor(t).astype(int), 0, n - 1)
        u = t - i
        c = C[i]
        v = c[..., 0] + u * (c[..., 1] + u * (c[..., 2] + u * c[..., 3]))
        d = (c[..., 1] + u * (2 * c[..., 2] + 3 * u * c[..., 3])) / self.h
        left, right = t <= 0, t >= n
        v = np.where(left, self.values[0] + self.d0 * (x - self.x0), v)
        d = np.where(left, self.d0, d)
        v = np.where(right, self.values[-1] + self.dN * (x - self.x1), v)
        d = np.where(right, self.dN, d)
        return (v, d) if derivative else v
