"""snnp: spline-based interatomic potentials, from spline-MEAM to spline neural networks.

Public entry points: the ladder ``SplineMEAM`` (rung 0, LAMMPS ``meam/spline``), ``SplineMEAMNN``
(rung 1), ``SNNP`` (rung 2) and ``presets()``; ``SNNPCalculator`` (ASE),
``load`` (model files), ``show_config`` / ``set_num_threads`` (compiled kernels); every
evaluation takes ``device="cpu"`` or ``"gpu"`` (``snnp.backends``).
"""
from ._version import __version__

try:
    from . import _kernels
except ImportError as _exc:
    import os as _os
    _here = _os.path.dirname(_os.path.abspath(__file__))
    raise ImportError(
        f"snnp's compiled kernels were not found in {_here}: if that is a source checkout, "
        "run from outside it (the checkout shadows the installed package) or build in place "
        f"with `python setup.py build_ext --inplace` ({_exc})") from _exc
from .calculator import CloseApproachWarning, SNNPCalculator
from .data import Dataset, Structure
from .training import Loss
from . import datasets, ladder, probes, reference
from .embedding import MLPEmbedding
from .filters import FilterBank
from .coverage import ExtrapolationGrade, FilterCoverage
from .core import ZBLCore
from .models import SNNP, Model, SplineMEAM, SplineMEAMNN, presets
from .neighbors import NeighborList, neighbor_list
from .backends import new_neighbor_list
from .splines import Spline
from .io import modelfile as _modelfile

__all__ = ["Dataset", "Structure", "Loss", "FilterCoverage", "ExtrapolationGrade", "ZBLCore", "SplineMEAM", "SplineMEAMNN", "SNNP", "presets", "FilterBank", "MLPEmbedding", "Model", "Spline", "SNNPCalculator", "CloseApproachWarning", "NeighborList", "neighbor_list",
           "new_neighbor_list",           "load", "zoo", "show_config", "set_num_threads", "get_num_threads", "__version__"]


def load(path):
    """Read a model saved with ``model.save(path)``, or a zoo model by name ("Mo/snnp_medium")."""
    return _modelfile.load(path, zoo_base=_zoo_dir())


def _zoo_dir():
    return _modelfile.zoo_dir()


def zoo():
    """Names of the trained models shipped in models_zoo/, as ``"<element>/<preset>"``."""
    return _modelfile.zoo(_zoo_dir())


def set_num_threads(n):
    """Threads the compiled kernels use (0: the OpenMP default, OMP_NUM_THREADS or all cores)."""
    _kernels.set_num_threads(int(n))


def get_num_threads():
    return _kernels.get_num_threads()


def show_config(file=None):
    """Print and return how the kernels were built: OpenMP or serial, and thread counts."""
    import sys
    import numpy
    from .backends import gpu
    cfg = {"snnp": __version__, "openmp": _kernels.openmp_enabled(),
           "threads": get_num_threads(), "max_threads": _kernels.max_threads(),
           "gpu": gpu.available()[1],
           "numpy": numpy.__version__, "python": sys.version.split()[0]}
    out = file or sys.stdout
    for k, v in cfg.items():
        print(f"{k:>12}: {v}", file=out)
    if not cfg["openmp"]:
        print("      note: built without OpenMP; kernels run on one thread", file=out)
    return cfg
