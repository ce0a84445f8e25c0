"""The model ladder: one class hierarchy from spline-MEAM to the spline neural-network potential.

Every model computes, for atom i of species a with neighbours j (species b) within the cutoff,

    e_i = 1/2 sum_j phi_ab(r_ij) + eps_a(G_i) + e0_a,    G_i = [R_i1..R_iKr, A_i1..A_iKa]

from three parts (docs/theory.md): an optional pair term phi, a ``FilterBank`` giving G_i, and an
embedding eps: a spline U of the density n_i = R_i1 + A_i1 (rung 0, ``SplineMEAM``), U plus a
small MLP of G_i (rung 1, ``SplineMEAMNN``), or an MLP alone (rung 2, ``SNNP``).  All of it runs
in the shared C kernels; this package holds the parameters, packs them for the kernels and turns
kernel output into energies, forces and stress (ASE conventions, docs/conventions.md).

Where each concern lives (docs/architecture.md):

- ``base.py``      ``Model``: construction, species, cutoffs, core, extrapolation grade;
                   ``fit`` / ``score`` / ``calculator`` hand the model to snnp.training and
                   snnp.calculator
- ``params.py``    the flat parameter vector (layout, get/set, groups, gradient mapping)
- ``tables.py``    packing for the C kernels (``model.tables``), the GPU copy
- ``evaluate.py``  ``compute``, ``descriptors``, distance checks
- ``files.py``     ``to_dict`` / ``from_dict``, ``save``, ``to_lammps_plugin``
- ``rungs.py``     ``SplineMEAM`` (with its LAMMPS meam/spline files), ``SplineMEAMNN``, ``SNNP``
- ``presets.py``   ``LADDER`` and ``presets()``
"""
from ..io.schema import _OPTIONAL_PARTS, check_finite_model_dict, nonfinite_entry
from .base import Model
from .evaluate import _voigt
from .presets import LADDER, SNNP_PRESETS, presets, residual_presets
from .rungs import SNNP, SplineMEAM, SplineMEAMNN
from .tables import _pack, pair_index

__all__ = ["Model", "SplineMEAM", "SplineMEAMNN", "SNNP", "presets", "pair_index"]
