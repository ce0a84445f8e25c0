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

__all__ = ["FilterCoverage", "ExtrapolationGrade"]


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


class ExtrapolationGrade:
    """The extrapolation grade a model carries and its kernels compute, per atom.

    From the standardised filters of the training atoms (per species: mean and standard
    deviation), ``n_centres`` centres are chosen by farthest-point sampling, which keeps the
    outermost environments of the training cloud and spreads the rest over it.  An atom's grade
    is its distance to the nearest centre over the covering radius, the largest such distance
    of any training atom: every training atom grades at most 1, and a grade above 1 means an
    environment farther from the training set's centres than any training environment was.

    It is ``FilterCoverage``'s nearest-neighbour idea made cheap enough to run every MD step in
    the kernel (M K operations per atom instead of a k-d tree over every training atom), so
    ASE, ``snnp eval``, the GPU and LAMMPS report the same number.  ``model.extrapolation =
    ExtrapolationGrade.from_data(model, dataset)`` attaches one (``fit`` does it).
    """

    def __init__(self, mean, scale, centres, radius):
        self.mean = np.array(mean, dtype=float)
        self.scale = np.array(scale, dtype=float)
        self.centres = np.array(centres, dtype=float)
        self.radius = np.array(radius, dtype=float)
        n, K = self.mean.shape
        if self.scale.shape != (n, K) or self.centres.ndim != 3 or \
                self.centres.shape[0] != n or self.centres.shape[2] != K or self.radius.shape != (n,):
            raise ValueError("extrapolation grade: mean and scale (species, K), centres "
                             "(species, M, K) and radius (species,) disagree")
        for name, v in (("mean", self.mean), ("scale", self.scale), ("centres", self.centres),
                        ("radius", self.radius)):
            if not np.isfinite(v).all():
                raise ValueError(f"extrapolation grade: {name} has non-finite values")
        if (self.scale <= 0).any() or (self.radius <= 0).any():
            raise ValueError("extrapolation grade: scale and radius must be positive")

    @property
    def n_centres(self):
        return self.centres.shape[1]

    @classmethod
    def from_data(cls, model, dataset, n_centres=64):
        """Centres and radius from the filters of every atom of ``dataset`` under ``model``."""
        n_centres = int(n_centres)
        if n_centres < 1:
            raise ValueError(f"n_centres must be at least 1, got {n_centres}")
        if len(dataset) == 0:
            raise ValueError("the extrapolation grade needs a non-empty reference dataset")
        G = np.vstack([model.descriptors(getattr(s, "atoms", s)) for s in dataset])
        species = np.concatenate([model._atoms_species(getattr(s, "atoms", s)) for s in dataset])
        n, K = model.n_species, G.shape[1]
        mean, scale = np.zeros((n, K)), np.ones((n, K))
        centres = np.full((n, n_centres, K), 1e100)     # a species without data: grade ~1e100
        radius = np.ones(n)
        for a in range(n):
            rows = species == a
            if not rows.any():
                continue
            Ga = G[rows]
            mean[a] = Ga.mean(axis=0)
            std = Ga.std(axis=0)
            scale[a] = np.where(std > 1e-12 * max(np.abs(Ga).max(), 1e-300), std, 1.0)
            Z = (Ga - mean[a]) / scale[a]
            idx, dist = _farthest_points(Z, n_centres)
            chosen = Z[idx]
            if len(idx) < n_centres:            # fewer distinct atoms than centres: repeat
                chosen = chosen[np.arange(n_centres) % len(idx)]
            centres[a] = chosen
            radius[a] = max(float(dist.max()), 1e-6)
        return cls(mean, scale, centres, radius)

    def kernel_reference(self):
        """(M, flat array) in the layout kernels.h's snnp_grade reads."""
        n, K = self.mean.shape
        rows = [np.concatenate([self.mean[a], 1.0 / self.scale[a], [1.0 / self.radius[a]],
                                self.centres[a].ravel()]) for a in range(n)]
        return self.n_centres, np.concatenate(rows)

    def grade_filters(self, G, species):
        """NumPy reference of the kernel's grade for filter rows G (N, K) of given species."""
        G = np.atleast_2d(np.asarray(G, dtype=float))
        species = np.broadcast_to(np.asarray(species), (len(G),))
        out = np.empty(len(G))
        for a in np.unique(species):
            rows = species == a
            Z = (G[rows] - self.mean[a]) / self.scale[a]
            d2 = ((Z[:, None, :] - self.centres[a][None]) ** 2).sum(-1)
            out[rows] = np.sqrt(d2.min(axis=1)) / self.radius[a]
        return out

    def to_dict(self):
        return {"method": "filter-centres", "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "centres": self.centres.tolist(),
                "radius": self.radius.tolist()}

    @classmethod
    def from_dict(cls, d):
        if d.get("method") != "filter-centres":
            raise ValueError(f"unknown extrapolation grade method {d.get('method')!r}")
        return cls(d["mean"], d["scale"], d["centres"], d["radius"])


def _farthest_points(Z, M):
    """Indices of up to M rows of Z by farthest-point sampling (starting from the row farthest
    from the mean), and every row's distance to the nearest chosen row."""
    start = int(np.argmax(((Z - Z.mean(axis=0)) ** 2).sum(axis=1)))
    chosen = [start]
    dist = np.sqrt(((Z - Z[start]) ** 2).sum(axis=1))
    while len(chosen) < M:
        k = int(np.argmax(dist))
        if dist[k] <= 0.0:
            break
        chosen.append(k)
        dist = np.minimum(dist, np.sqrt(((Z - Z[k]) ** 2).sum(axis=1)))
    return np.array(chosen), dist
