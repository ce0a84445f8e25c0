"""How far an atom's environment lies from the training data, in the model's own filter space.

A network can only interpolate: where an atom's filters G_i fall far from every training atom's,
its energy is an extrapolation, whatever the training errors say.  ``ExtrapolationGrade`` is
the grade a model carries and every front end computes in the kernel: the distance of an atom's
whitened filters to the nearest of a few centres of the training cloud, over the largest such
distance of any training atom.  ``FilterCoverage`` is the reference it is measured against:
standardised filters of every training atom in a k-d tree, graded by the distance to the
nearest one over the distance held-out training atoms have (its ``quantile``, 0.99 by default).
Both are warning lights, not error bars (docs/accuracy.md, "Does the grade rank errors?").
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

    Per species, from the filters G of the training atoms: their mean and a whitening matrix W
    (the inverse square root of their covariance, eigenvalues floored at 1e-8 of the largest),
    so that z = W (G - mean) has unit covariance over the training atoms; and M centres in z:
    the origin (the training mean) and, for M > 1, M - 1 more by farthest-point sampling from
    it.  An atom's grade is its distance to the nearest centre over the covering radius, the
    largest such distance of any training atom: every training atom grades at most 1, and a
    grade above 1 means an environment farther out than any training environment was.

    Whitening makes the distance the Mahalanobis one: a direction the training filters hardly
    varied along counts as heavily as it should, which ``FilterCoverage``'s per-filter scaling
    misses.  M = 1 (the mean alone) is the leverage of a model linear in the filters and ranks
    test errors well, but it sees only an ellipsoid: an environment inside it and away from
    every training atom (liquid Si at 3000 K for the mlearn-trained models) grades low.  More
    centres cover the training cloud's outskirts and tighten the covering radius, so such holes
    show, at the price of more alarms on structures drawn like the training set.  The default
    M = 24 ranks the mlearn Si test errors as FilterCoverage does (Spearman 0.52 against 0.53
    on Si/snnp_large), flags 1 of the 25 test structures and the 3000 K liquid; it costs
    K (K + M) operations per atom in the kernel (docs/theory.md, "The extrapolation grade").
    ``model.extrapolation = ExtrapolationGrade.from_data(model, dataset)`` attaches one (``fit``
    does it).
    """

    #: eigenvalues of the training filters' covariance below this fraction of the largest are
    #: raised to it: a direction the training filters never moved along grades very high
    EIGEN_FLOOR = 1e-8

    def __init__(self, mean, whitening, centres, radius):
        self.mean = np.array(mean, dtype=float)
        self.whitening = np.array(whitening, dtype=float)
        self.centres = np.array(centres, dtype=float)
        self.radius = np.array(radius, dtype=float)
        if self.mean.ndim != 2:
            raise ValueError("extrapolation grade: mean must be (species, K)")
        n, K = self.mean.shape
        if self.whitening.shape != (n, K, K) or self.centres.ndim != 3 or \
                self.centres.shape[0] != n or self.centres.shape[2] != K or self.radius.shape != (n,):
            raise ValueError("extrapolation grade: mean (species, K), whitening (species, K, K), "
                             "centres (species, M, K) and radius (species,) disagree")
        for name, v in (("mean", self.mean), ("whitening", self.whitening),
                        ("centres", self.centres), ("radius", self.radius)):
            if not np.isfinite(v).all():
                raise ValueError(f"extrapolation grade: {name} has non-finite values")
        if (self.radius <= 0).any():
            raise ValueError("extrapolation grade: radius must be positive")

    @property
    def n_centres(self):
        return self.centres.shape[1]

    @classmethod
    def from_data(cls, model, dataset, n_centres=24):
        """Mean, whitening, centres and radius from the filters of every atom of ``dataset``
        under ``model``."""
        n_centres = int(n_centres)
        if n_centres < 1:
            raise ValueError(f"n_centres must be at least 1, got {n_centres}")
        if len(dataset) == 0:
            raise ValueError("the extrapolation grade needs a non-empty reference dataset")
        G = np.vstack([model.descriptors(getattr(s, "atoms", s)) for s in dataset])
        species = np.concatenate([model._atoms_species(getattr(s, "atoms", s)) for s in dataset])
        n, K = model.n_species, G.shape[1]
        mean, whitening = np.zeros((n, K)), np.tile(np.eye(K), (n, 1, 1))
        centres = np.full((n, n_centres, K), 1e100)     # a species without data: grade ~1e100
        radius = np.ones(n)
        for a in range(n):
            rows = species == a
            if not rows.any():
                continue
            mean[a] = G[rows].mean(axis=0)
            X = G[rows] - mean[a]
            whitening[a] = _whitening(X, cls.EIGEN_FLOOR)
            Z = X @ whitening[a].T
            chosen, dist = _farthest_points(Z, n_centres)
            if len(chosen) < n_centres:            # fewer distinct atoms than centres: repeat
                chosen = chosen[np.arange(n_centres) % len(chosen)]
            centres[a] = chosen
            radius[a] = max(float(dist.max()), 1e-6)
        return cls(mean, whitening, centres, radius)

    def kernel_reference(self):
        """(M, flat array) in the layout kernels.h's snnp_grade reads: per species mean[K],
        whitening[K][K] (row-major), 1/radius, centres[M][K]."""
        n, K = self.mean.shape
        rows = [np.concatenate([self.mean[a], self.whitening[a].ravel(), [1.0 / self.radius[a]],
                                self.centres[a].ravel()]) for a in range(n)]
        return self.n_centres, np.concatenate(rows)

    def grade_filters(self, G, species):
        """NumPy reference of the kernel's grade for filter rows G (N, K) of given species."""
        G = np.atleast_2d(np.asarray(G, dtype=float))
        species = np.broadcast_to(np.asarray(species), (len(G),))
        out = np.empty(len(G))
        for a in np.unique(species):
            rows = species == a
            Z = (G[rows] - self.mean[a]) @ self.whitening[a].T
            d2 = ((Z[:, None, :] - self.centres[a][None]) ** 2).sum(-1)
            out[rows] = np.sqrt(d2.min(axis=1)) / self.radius[a]
        return out

    def to_dict(self):
        return {"method": "whitened-centres", "mean": self.mean.tolist(),
                "whitening": self.whitening.tolist(), "centres": self.centres.tolist(),
                "radius": self.radius.tolist()}

    @classmethod
    def from_dict(cls, d):
        method = d.get("method")
        if method == "whitened-centres":
            return cls(d["mean"], d["whitening"], d["centres"], d["radius"])
        if method == "filter-centres":      # per-filter standardisation: a diagonal whitening
            scale = np.asarray(d["scale"], dtype=float)
            if scale.ndim != 2 or not np.isfinite(scale).all() or (scale <= 0).any():
                raise ValueError("extrapolation grade: scale must be positive (species, K)")
            return cls(d["mean"], [np.diag(1.0 / s) for s in scale], d["centres"], d["radius"])
        raise ValueError(f"unknown extrapolation grade method {method!r}")


def _whitening(X, floor):
    """W with W X^T of unit covariance for centred rows X (N, K): the inverse square root of
    their covariance, computed on per-column standardised X, eigenvalues floored at ``floor``
    times the largest (or 1 where every column is constant)."""
    std = X.std(axis=0)
    std = np.where(std > 1e-12 * max(np.abs(X).max(), 1e-300), std, 1.0)
    w, V = np.linalg.eigh(np.cov((X / std).T, bias=True).reshape(X.shape[1], X.shape[1]))
    w = np.maximum(w, floor * max(w.max(), 1.0))
    return (V / np.sqrt(w)).T / std[None, :]


def _farthest_points(Z, M):
    """Up to M points for rows Z (N, K) by farthest-point sampling: the origin first, then each
    time the row farthest from those chosen; and every row's distance to the nearest of them."""
    chosen = [np.zeros(Z.shape[1])]
    dist = np.sqrt((Z ** 2).sum(axis=1))
    while len(chosen) < M:
        k = int(np.argmax(dist))
        if dist[k] <= 0.0:
            break
        chosen.append(Z[k])
        dist = np.minimum(dist, np.sqrt(((Z - Z[k]) ** 2).sum(axis=1)))
    return np.array(chosen), dist
