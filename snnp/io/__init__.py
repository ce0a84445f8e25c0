"""File formats: LAMMPS ``meam/spline`` potentials and snnp's versioned JSON model files."""
from .atomic import atomic_write
from .lammps import read_meam_spline, write_meam_spline
from .modelfile import load_model, save_model

__all__ = ["atomic_write", "read_meam_spline", "write_meam_spline", "load_model", "save_model"]
