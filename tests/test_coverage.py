"""FilterCoverage: nearest-training-atom distances in standardised filter space."""
import numpy as np
import pytest
from ase.build import bulk

import snnp
from snnp import datasets
from snnp.coverage import FilterCoverage


@pytest.fixture(scope="module")
def reference():
    model = snnp.presets(["Cu"], cutoff=4.5)["snnp_small"]
    return model, datasets.emt_copper(scale=0.2, seed=1)


def test_training_atoms_are_covered_and_far_environments_are_not(reference):
    model, data = reference
    cov = FilterCoverage(model, data)
    assert cov.n_atoms == data.n_atoms and cov.scale_distance > 0
    # a reference structure is its own nearest neighbour
    np.testing.assert_allclose(cov.distance(data[3].atoms), 0.0, atol=1e-12)
    # new structures of the same kind: most atoms inside the held-out scale
    fresh = datasets.emt_copper(scale=0.2, seed=7)
    grades = np.concatenate([cov.grade(s.atoms) for s in fresh])
    assert np.median(grades) < 0.5 and np.mean(grades > 1) < 0.1
    # a cell compressed by 12%, which no reference structure comes near
    squeezed = bulk("Cu", "fcc", a=3.61 * 0.88, cubic=True).repeat(2)
    assert cov.grade(squeezed).min() > 2.0
    # the grade is the distance over the quantile of held-out distances
    loose = FilterCoverage(model, data, quantile=0.5)
    assert loose.scale_distance < cov.scale_distance
    np.testing.assert_allclose(loose.grade(squeezed) * loose.scale_distance,
                               cov.grade(squeezed) * cov.scale_distance)


def test_coverage_bad_input(reference):
    model, data = reference
    with pytest.raises(ValueError, match="non-empty"):
        FilterCoverage(model, snnp.Dataset([]))
    with pytest.raises(ValueError, match="quantile"):
        FilterCoverage(model, data, quantile=1.5)
    with pytest.raises(ValueError, match="at least two structures"):
        FilterCoverage(model, data[:1])
    cov = FilterCoverage(model, data)
    with pytest.raises(ValueError, match="Ag"):
        cov.grade(bulk("Ag", "fcc", a=4.09))
