"""Evaluating a model: ``compute`` (energies, forces, stress in ASE units and signs,
docs/conventions.md), ``descriptors`` (the filter values G_i), ``embedding_energy``, and the
check for atoms closer than the model's data reach.  The work is one call of the kernels
(``model.tables.compute`` on the CPU, ``snnp.backends.gpu.compute`` on the GPU)."""
import numpy as np
from ase.stress import full_3x3_to_voigt_6_stress

from .. import _kernels
from ..backends import check_device, new_neighbor_list
from ..neighbors import check_geometry

#: pairs closer than this (A) are the same atom twice: an atom and its periodic image land at
#: r ~ 1e-15 rather than exactly 0, and forces there would be ~1e16 eV/A
COINCIDENT = 1e-8

__all__ = ["EvaluationMixin"]


def _voigt(s):
    """Symmetric 3x3 (or N x 3 x 3) tensor to Voigt order xx yy zz yz xz xy, C-ordered (ASE's
    conversion; it averages each off-diagonal pair, which leaves a symmetric tensor's bits)."""
    return np.ascontiguousarray(full_3x3_to_voigt_6_stress(s))


class EvaluationMixin:
    """``Model``'s evaluation: compute, descriptors, embedding energy, distance checks."""

    def _prepare(self, atoms, neighbors, device="cpu"):
        positions, cell, pbc = check_geometry(atoms.get_positions(), atoms.cell.array, atoms.pbc)
        species = self._atoms_species(atoms)
        if neighbors is None:
            neighbors = new_neighbor_list(self.cutoff, device=device)
        elif neighbors.cutoff != self.cutoff:
            raise ValueError("neighbour list cutoff does not match the model cutoff")
        neighbors.update(positions, cell, pbc)
        return positions, cell, species, neighbors

    def compute(self, atoms, properties=("energy", "forces", "stress"), neighbors=None,
                device="cpu", strict=None):
        """Energy, per-atom energies, forces, stress and per-atom stresses of an ASE Atoms.

        ``properties`` may name energy, free_energy, energies, forces, stress, stresses and
        extrapolation (per-atom grades, with "max_extrapolation"; needs
        ``model.extrapolation``).  Results also hold "closest_pair" (distance, i, j) when two
        atoms are closer than ``short_range_limit``; ``strict=True`` (default:
        ``model.check_short_distances``) raises instead.  Atoms on top of each other raise.
        ``neighbors`` is an optional ``NeighborList`` kept between calls (the calculator keeps
        one with a Verlet skin; ``snnp.new_neighbor_list(cutoff, skin, device)`` makes the
        right kind).  ``device``: "cpu" (compiled C, OpenMP) or "gpu" (the same kernels
        through CuPy, ``snnp.backends.gpu``).  Returns a dict in ASE units and sign conventions.
        """
        check_device(device)
        positions, cell, species, nl = self._prepare(atoms, neighbors, device)
        want = set(properties)
        want_stress = bool(want & {"stress", "stresses"})
        volume = abs(np.linalg.det(cell))
        if want_stress and not volume > 1e-12:
            raise ValueError("stress needs a cell with nonzero volume; this structure's cell "
                             f"has volume {volume:.3g} A^3")
        want_grade = "extrapolation" in want or "max_extrapolation" in want
        if want_grade and self.extrapolation is None:
            raise ValueError("this model carries no extrapolation grade reference; attach one "
                             "with model.extrapolation = snnp.ExtrapolationGrade.from_data("
                             "model, training_data) (fits do it)")
        if device == "gpu":
            from ..backends import gpu
            out = gpu.compute(self, positions, species, nl, "forces" in want, want_stress,
                              "stresses" in want, grade=want_grade)
        else:
            out = self.tables.compute(positions, species, nl.offsets, nl.neighbors,
                                      nl.shift_vectors, forces="forces" in want,
                                      virial=want_stress, atom_virial="stresses" in want,
                                      grade=want_grade)
        close = self._check_distances(out, strict)
        energies = out["energies"] + self.e0[species]
        energy = float(energies.sum())
        results = {"energy": energy, "free_energy": energy, "energies": energies}
        if close is not None:
            results["closest_pair"] = close
        if want_grade:
            results["extrapolation"] = out["grade"]
            results["max_extrapolation"] = float(out["grade"].max(initial=0.0))
        if "forces" in want:
            results["forces"] = out["forces"]
        if want_stress:
            W = out["virial"]
            results["stress"] = _voigt(0.5 * (W + W.T) / volume)
        if "stresses" in want:
            AW = out["atom_virial"]
            results["stresses"] = _voigt(0.5 * (AW + AW.transpose(0, 2, 1)) / volume)
        return results

    def get_potential_energy(self, atoms):
        return self.compute(atoms, ("energy",))["energy"]

    def descriptors(self, atoms, neighbors=None):
        """The filter values G_i (N, K_r + K_a) of every atom: what the embedding sees."""
        positions, _, species, nl = self._prepare(atoms, neighbors)
        out = self.tables.compute(positions, species, nl.offsets, nl.neighbors, nl.shift_vectors,
                                  mode=_kernels.MODE_DESCRIPTORS, forces=False, virial=False,
                                  descriptors=True)
        self._check_distances(out, strict=False)
        return out["G"][:, :self.filters.n_filters]

    def embedding_energy(self, G, species=0):
        """Embedding energy eps(G) and its gradient for filter rows G of one species (or array)."""
        G = np.atleast_2d(np.asarray(G, dtype=float))
        sp = np.broadcast_to(np.asarray(species), (len(G),))
        return self.tables.embed(sp, G)

    def _check_distances(self, out, strict=None):
        """Raise for coincident atoms; for a pair closer than ``short_range_limit`` return
        (distance, i, j), or raise when strict."""
        i, j = out["rmin_pair"]
        if out["rmin"] < COINCIDENT:               # round-off of a periodic image: r ~ 1e-15
            raise ValueError(f"atoms {i} and {j} sit at the same position (or on a periodic "
                             "image of each other)")
        limit = self.short_range_limit
        if not out["rmin"] < limit:
            return None
        strict = self.check_short_distances if strict is None else strict
        if strict:
            where = ("the ZBL core and clamped learned terms act there" if self.core is not None
                     else "energies there are linear extrapolations of the splines")
            raise ValueError(
                f"atoms {i} and {j} are {out['rmin']:.4g} A apart, closer than the "
                f"{limit:.4g} A this model's data reach; {where}. Use strict=False (or "
                f"model.check_short_distances = False) to evaluate anyway.")
        return (float(out["rmin"]), int(i), int(j))
