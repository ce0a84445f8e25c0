"""How far an atom's environment lies from the training data, in the model's own filter space.

A network can only interpolate: where an atom's filters G_i fall far from every training atom's,
its energy is an extrapolation, whatever the training errors say.  ``FilterCoverage`` keeps the
standardised filters of a training set's atoms (per species, in a k-d tree) and gives each new
atom its distance to the nearest of them, and a grade: that distance over the distance that
atoms of held-out training structures have to the rest of the set (its ``quantile``, 0.99 by
default).  A grade above 1 marks an environment less covered than 99% of held-out training
atoms were.  It is a warning light, not an error bar: on mlearn Si the largest grade of a test
structure ranks with its energy error (Spearman 0.45), but the thin surface that every network
rung overbinds grades 0.91 (docs/accuracy.md).
"""
import numpy as np

__all__ = ["FilterCoverage"]


class FilterCoverage:
    """Nearest-training-atom distances in standardised filter space.

    ``FilterCoverage(model, dataset, quantile=0.99, folds=5, seed=0)``: the filters of every
    atom of ``dataset`` under ``model``, standardised per species by their mean and standard
    deviation.  The scale of the grade comes from ``folds`` held-out splits of the structures:
    each fold's atoms are measured against the other folds' atoms.
    """

    def __init__(self, model, dataset, quantile=0.99, folds=5, seed=0):
        from scipy.spatial import cKDTree
        if len(dataset) == 0:
            raise ValueError("coverage needs a non-empty reference dataset")
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        self.model, self.quantile = model, float(quantile)
        G, species, which = [], [], []
        for k, structure in enumerate(dataset):
            G.append(model.descriptors(structure.atoms))
            species.append(model._atoms_species(structure.atoms))
            which.append(np.full(len(structure.atoms), k))
        G, species, which = np.vstack(G), np.concatenate(species), np.concatenate(which)
        n = model.n_species
        self.mean = np.zeros((n, G.shape[1]))
        self.scale = np.ones((n, G.shape[1]))
        self._trees = [None] * n
        fold = np.random.default_rng(seed).permutation(len(dataset)) % max(2, folds)
        held_out = []
        for a in range(n):
            rows = species == a
            if not rows.any():
                continue
            Ga = G[rows]
            self.mean[a] = Ga.mean(axis=0)
            std = Ga.std(axis=0)
            self.scale[a] = np.where(std > 1e-12 * max(np.abs(Ga).max(), 1e-300), std, 1.0)
            Z = (Ga - self.mean[a]) / self.scale[a]
            self._trees[a] = cKDTree(Z)
            f = fold[which[rows]]
            for q in np.unique(f):
                if (f != q).any():
                    held_out.append(cKDTree(Z[f != q]).query(Z[f == q])[0])
        if not held_out:
            raise ValueError("the reference needs at least two structures per species "
                             "to set the grade's scale")
        self.scale_distance = float(np.quantile(np.concatenate(held_out), self.quantile))
        self.n_atoms = len(G)

    def distance(self, atoms):
        """Per-atom distance (N,) to the nearest reference atom of the same species, in
        standardised filter units; inf for a species the reference has no atoms of."""
        Z = self.model.descriptors(atoms)
        species = self.model._atoms_species(atoms)
        out = np.full(len(atoms), np.inf)
        for a, tree in enumerate(self._trees):
            rows = species == a
            if tree is not None and rows.any():
                out[rows] = tree.query((Z[rows] - self.mean[a]) / self.scale[a])[0]
        return out

    def grade(self, atoms):
        """Per-atom distance over the held-out reference scale: above 1, the atom's environment
        is less covered by the reference than ``quantile`` of held-out training atoms were."""
        return self.distance(atoms) / max(self.scale_distance, 1e-300)
