"""A model as data: ``to_dict`` / ``from_dict`` (the "model" part of a model file), ``save``
(``snnp.io.modelfile``), ``to_lammps_plugin`` (``snnp.io.lammps_snnp``), ``copy`` and ``==``.
The LAMMPS ``meam/spline`` files (``to_lammps`` / ``from_lammps``) belong to rung 0
(``rungs.SplineMEAM``)."""
from ..core import ZBLCore
from ..coverage import ExtrapolationGrade
from ..embedding import MLPEmbedding
from ..filters import FilterBank
from ..io.lammps_snnp import write_kernel_tables
from ..io.modelfile import save_model
from ..io.schema import check_finite_model_dict
from ..splines import Spline

__all__ = ["FilesMixin"]


class FilesMixin:
    """``Model``'s dict form, files, copies and equality."""

    def save(self, path, provenance=None):
        """Write the model as a versioned JSON file (atomically)."""
        save_model(self, path, provenance=provenance)

    def to_lammps_plugin(self, path):
        """Write the kernel-table file that LAMMPS ``pair_style snnp`` reads (docs/lammps.md)."""
        write_kernel_tables(self, path)

    def to_dict(self):
        sp = self.species
        return {
            "species": sp,
            "e0": self.e0.tolist(),
            "pair": None if self.pair is None else
            {f"{sp[a]}-{sp[b]}": s.to_dict() for (a, b), s in self.pair.items()},
            "filters": self.filters.to_dict(),
            "U": None if self.U is None else [s.to_dict() for s in self.U],
            "mlp": None if self.mlp is None else self.mlp.to_dict(),
            "core": None if self.core is None else self.core.to_dict(),
            "extrapolation": None if self.extrapolation is None else self.extrapolation.to_dict(),
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild a model from ``to_dict``; a NaN, infinite or null number anywhere in its
        parameters is a ValueError naming its path (e.g. "e0[0] is NaN")."""
        check_finite_model_dict(d)
        species = d["species"]
        idx = {s: k for k, s in enumerate(species)}
        pair = None
        if d.get("pair") is not None:
            pair = {}
            for key, v in d["pair"].items():
                a, b = (idx[s] for s in key.split("-"))
                pair[(min(a, b), max(a, b))] = Spline.from_dict(v)
        model = cls._from_parts(
            species, FilterBank.from_dict(d["filters"], species), pair=pair,
            U=None if d.get("U") is None else [Spline.from_dict(v) for v in d["U"]],
            mlp=None if d.get("mlp") is None else MLPEmbedding.from_dict(d["mlp"]),
            e0=d.get("e0"))
        if d.get("core") is not None:
            model.core = ZBLCore.from_dict(d["core"], species)
        if d.get("extrapolation") is not None:
            model.extrapolation = ExtrapolationGrade.from_dict(d["extrapolation"])
        return model

    def copy(self):
        return type(self).from_dict(self.to_dict())

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()
