"""Splines: the clamped cubic on uniform knots, its coefficient matrix and the C evaluation."""
import numpy as np
import pytest
from scipy.interpolate import CubicSpline

from snnp import Spline
from snnp.splines import coefficient_matrix


@pytest.fixture
def spline(rng):
    return Spline(1.5, 4.5, rng.normal(size=9), d0=-2.0, dN=0.7)


def test_matches_scipy_clamped_cubic(spline):
    ref = CubicSpline(spline.knots, spline.values, bc_type=((1, spline.d0), (1, spline.dN)))
    x = np.linspace(spline.x0, spline.x1, 1001)
    v, d = spline(x, derivative=True)
    np.testing.assert_allclose(v, ref(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(d, ref(x, 1), rtol=0, atol=1e-11)
    np.testing.assert_allclose(spline.second_derivatives(), ref(spline.knots, 2), atol=1e-10)


def test_interpolates_knots_and_end_slopes(spline):
    v, d = spline(spline.knots, derivative=True)
    np.testing.assert_allclose(v, spline.values, atol=1e-13)
    assert d[0] == pytest.approx(spline.d0, abs=1e-12)
    assert d[-1] == pytest.approx(spline.dN, abs=1e-12)


def test_linear_continuation_outside_knots(spline):
    v, d = spline(np.array([0.5, 6.0]), derivative=True)
    assert v[0] == pytest.approx(spline.values[0] + spline.d0 * (0.5 - spline.x0), abs=1e-13)
    assert v[1] == pytest.approx(spline.values[-1] + spline.dN * (6.0 - spline.x1), abs=1e-13)
    np.testing.assert_array_equal(d, [spline.d0, spline.dN])


def test_coefficient_matrix_is_linear_in_params(spline, rng):
    M = coefficient_matrix(spline.n_knots, spline.h)
    p1, p2 = rng.normal(size=(2, spline.n_knots + 2))
    s1 = Spline.from_params(spline.x0, spline.x1, p1)
    s2 = Spline.from_params(spline.x0, spline.x1, p2)
    s12 = Spline.from_params(spline.x0, spline.x1, 2 * p1 - 3 * p2)
    np.testing.assert_allclose(s12.coefficients(), 2 * s1.coefficients() - 3 * s2.coefficients(),
                               atol=1e-12)
    np.testing.assert_allclose(M @ p1, s1.coefficients(), atol=1e-14)


def test_two_knot_spline_is_hermite_cubic():
    s = Spline(0.0, 2.0, [1.0, 3.0], d0=0.0, dN=0.0)
    # smoothstep from 1 to 3: value 2 at the midpoint, zero slope at both ends
    assert s(1.0) == pytest.approx(2.0, abs=1e-14)
    assert s(0.0, derivative=True)[1] == pytest.approx(0.0, abs=1e-14)


def test_non_uniform_knots_are_rejected():
    with pytest.raises(ValueError, match="not uniform: knot 2"):
        Spline.from_knots([0.0, 1.0, 2.5, 3.0], [0, 1, 2, 3], 0.0, 0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(x0=1.0, x1=1.0, values=[0, 1]), "x0 < x1"),
    (dict(x0=0.0, x1=1.0, values=[0]), "at least 2 knots"),
    (dict(x0=0.0, x1=1.0, values=[0, np.nan]), "finite"),
])
def test_bad_splines_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Spline(**kwargs)
