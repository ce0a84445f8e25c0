# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""CPU front end of the shared C kernels (kernels.h, neighbors.h, cpu_driver.h).

Only array plumbing lives here: the model packs its splines into a `Tables` object once, and
every call passes flat, C-contiguous NumPy arrays to the C functions with the GIL released.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange

cnp.import_array()

cdef extern from "kernels.h":
    ctypedef struct snnp_model:
        int n_species, K_r, K_a
        double cutoff
        const double *blk_x0
        const double *blk_h
        const double *blk_invh
        const int *blk_nint
        const long long *blk_off
        const double *coef
        const int *phi_blk
        const int *rho_blk
        const int *f_blk
        const int *g_blk
        const int *U_blk
        const double *U0
        int mlp_nlayers, mlp_act
        const int *mlp_width
        const long long *mlp_off
        const double *mlp_w
        const double *mlp_mean
        const double *mlp_inv_scale
        const double *mlp_zero
        const double *core
        int grade_M
        const double *grade_ref
    double snnp_embed(const snnp_model *m, int s, const double *G, double *dG) nogil
    int snnp_scratch_per_neighbor(const snnp_model *m) nogil
    void snnp_spline_eval(const snnp_model *m, int b, int K, double x, double *v, double *d) nogil

cdef extern from "kernels.h":
    ctypedef struct snnp_field:
        const double *lam
        const double *mu
        const int *structure

cdef extern from "cpu_driver.h" nogil:
    int snnp_max_threads()
    int snnp_threads_for(int nthreads, long long natoms)
    int snnp_cpu_compute(const snnp_model *m, int natoms, const double *x, const int *species,
                         const long long *offsets, const int *nbr, const double *shift,
                         int nthreads, int mode, const double *gamma, const snnp_field *fld,
                         double *energies, double *G_out, double *forces, double *virial,
                         double *atom_virial, double *grade, double *rmin_out, int *pair_out)
    int snnp_cpu_param_grad(const snnp_model *m, long long ncoef, int natoms, const double *x,
                            const int *species, const long long *offsets, const int *nbr,
                            const double *shift, int nthreads, const snnp_field *fld,
                            const double *kappa, const double *gamma, const double *Gbar,
                            double *grad)

cdef extern from "neighbors.h" nogil:
    ctypedef struct snnp_cells:
        int natoms
        const double *xw
        const int *image
        const int *bin
        const double *cell
        const int *pbc
        const int *nb
        const int *reach
        const long long *bin_start
        const int *bin_atoms
        double cutoff
    long long snnp_cells_visit(const snnp_cells *c, int i, int *out_j, int *out_shift,
                               double *out_vec)

cdef extern from *:
    """
    #ifndef SNNP_HAVE_OPENMP
    #define SNNP_HAVE_OPENMP 0
    #endif
    """
    int SNNP_HAVE_OPENMP

MODE_FULL, MODE_DESCRIPTORS, MODE_BACKWARD, MODE_TANGENT = 0, 1, 2, 3
MAX_FILTERS = 64
MLP_MAX_WIDTH, MLP_MAX_LAYERS = 128, 8
CORE_STRIDE = 11   # kernels.h SNNP_CORE_STRIDE
ACTIVATIONS = {"tanh": 0, "softplus": 1, "silu": 2, "linear": 3}

_threads = [0]   # 0: OpenMP default (OMP_NUM_THREADS or all cores)


def openmp_enabled():
    return bool(SNNP_HAVE_OPENMP)


def max_threads():
    return snnp_max_threads()


def set_num_threads(int n):
    if n < 0:
        raise ValueError(f"number of threads must be >= 0 (0 = OpenMP default), got {n}")
    _threads[0] = n


def get_num_threads():
    return _threads[0] if _threads[0] > 0 else snnp_max_threads()


def _c(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


cdef class Tables:
    """Spline blocks and per-species block tables of one model, in the layout kernels.h reads."""
    cdef snnp_model m
    cdef object _keep
    cdef public int n_species, K_r, K_a
    cdef public double cutoff
    cdef public long long n_coef
    cdef public bint has_core
    cdef public int grade_M

    def __init__(self, int n_species, int K_r, int K_a, double cutoff, blk_x0, blk_h, blk_nint,
                 blk_off, coef, phi_blk, rho_blk, f_blk, g_blk, U_blk, U0, mlp=None,
                 core=None, grade=None):
        """`mlp`, if given: dict with `widths` (hidden widths), `activation` (name),
        `weights` (one flat array per species: per layer W (out x in) then b), `mean` and
        `scale` (n_species x (K_r + K_a)) of the input standardisation.
        `core`, if given: (n_species**2, CORE_STRIDE) short-range table (kernels.h, snnp_core).
        `grade`, if given: (M, ref) with the grade reference laid out as kernels.h's snnp_grade
        reads it (per species: mean, inv_scale, inv_radius, M centres)."""
        if K_r + K_a > MAX_FILTERS:
            raise ValueError(f"at most {MAX_FILTERS} filters in total, got {K_r + K_a}")
        cdef cnp.ndarray[double] x0 = _c(blk_x0, np.float64)
        cdef cnp.ndarray[double] h = _c(blk_h, np.float64)
        cdef cnp.ndarray[double] invh = _c(1.0 / np.asarray(blk_h, dtype=np.float64), np.float64)
        cdef cnp.ndarray[int] nint = _c(blk_nint, np.intc)
        cdef cnp.ndarray[long long] off = _c(blk_off, np.longlong)
        cdef cnp.ndarray[double] cf = _c(coef, np.float64)
        cdef cnp.ndarray[int] phi = _c(phi_blk, np.intc)
        cdef cnp.ndarray[int] rho = _c(rho_blk, np.intc)
        cdef cnp.ndarray[int] f = _c(f_blk, np.intc)
        cdef cnp.ndarray[int] g = _c(g_blk, np.intc)
        cdef cnp.ndarray[int] U = _c(U_blk, np.intc)
        cdef cnp.ndarray[double] u0 = _c(U0, np.float64)
        if x0.size == 0:   # keep valid pointers for a model without splines
            x0 = np.zeros(1); h = np.ones(1); invh = np.ones(1)
            nint = np.ones(1, np.intc); off = np.zeros(1, np.longlong)
        if cf.size == 0:
            cf = np.zeros(1)
        KG = K_r + K_a
        cdef cnp.ndarray[int] width
        cdef cnp.ndarray[long long] moff
        cdef cnp.ndarray[double] mw, mmean, misc, mzero
        if mlp is None:
            width = np.zeros(2, np.intc); moff = np.zeros(n_species, np.longlong)
            mw = np.zeros(1); mmean = np.zeros(max(n_species * KG, 1))
            misc = np.ones(max(n_species * KG, 1)); mzero = np.zeros(n_species)
            nlayers, act = 0, 0
        else:
            widths = [KG] + [int(w) for w in mlp["widths"]] + [1]
            if len(widths) - 1 > MLP_MAX_LAYERS or max(widths) > MLP_MAX_WIDTH:
                raise ValueError(f"MLP limited to {MLP_MAX_LAYERS} layers of at most "
                                 f"{MLP_MAX_WIDTH} units, got widths {widths}")
            if mlp["activation"] not in ACTIVATIONS:
                raise ValueError(f"unknown activation {mlp['activation']!r}; smooth choices: "
                                 f"{sorted(ACTIVATIONS)}")
            size = sum(widths[l + 1] * (widths[l] + 1) for l in range(len(widths) - 1))
            weights = [np.asarray(w, dtype=np.float64).ravel() for w in mlp["weights"]]
            if len(weights) != n_species or any(w.size != size for w in weights):
                raise ValueError(f"MLP weights: need {n_species} arrays of {size} numbers")
            width = _c(widths, np.intc)
            moff = _c(np.arange(n_species) * size, np.longlong)
            mw = _c(np.concatenate(weights), np.float64)
            mmean = _c(np.asarray(mlp["mean"], dtype=np.float64).ravel(), np.float64)
            misc = _c(1.0 / np.asarray(mlp["scale"], dtype=np.float64).ravel(), np.float64)
            if mmean.size != n_species * KG or misc.size != n_species * KG:
                raise ValueError("MLP input mean/scale need n_species x (K_r + K_a) values")
            mzero = np.zeros(n_species)
            nlayers, act = len(widths) - 1, ACTIVATIONS[mlp["activation"]]
        cdef cnp.ndarray[double] ctab = np.zeros(1)
        if core is not None:
            ctab = _c(np.asarray(core, dtype=np.float64).ravel(), np.float64)
            if ctab.shape[0] != n_species * n_species * CORE_STRIDE:
                raise ValueError(f"core table needs {n_species}^2 x {CORE_STRIDE} values")
        cdef cnp.ndarray[double] gref = np.zeros(1)
        cdef int gM = 0
        if grade is not None:
            gM = int(grade[0])
            gref = _c(np.asarray(grade[1], dtype=np.float64).ravel(), np.float64)
            if gM < 1 or gref.shape[0] != n_species * (KG * (KG + 1) + 1 + gM * KG):
                raise ValueError("grade reference needs n_species x (K (K + 1) + 1 + M K) "
                                 "values (kernels.h snnp_grade)")
        self._keep = (x0, h, invh, nint, off, cf, phi, rho, f, g, U, u0,
                      width, moff, mw, mmean, misc, mzero, ctab, gref)
        self.n_species, self.K_r, self.K_a, self.cutoff = n_species, K_r, K_a, cutoff
        self.n_coef = cf.shape[0]
        self.m.n_species = n_species
        self.m.K_r = K_r
        self.m.K_a = K_a
        self.m.cutoff = cutoff
        self.m.blk_x0 = &x0[0]
        self.m.blk_h = &h[0]
        self.m.blk_invh = &invh[0]
        self.m.blk_nint = &nint[0]
        self.m.blk_off = &off[0]
        self.m.coef = &cf[0]
        self.m.phi_blk = &phi[0]
        self.m.rho_blk = &rho[0]
        self.m.f_blk = &f[0]
        self.m.g_blk = &g[0]
        self.m.U_blk = &U[0]
        self.m.U0 = &u0[0]
        self.m.mlp_nlayers = nlayers
        self.m.mlp_act = act
        self.m.mlp_width = &width[0]
        self.m.mlp_off = &moff[0]
        self.m.mlp_w = &mw[0]
        self.m.mlp_mean = &mmean[0]
        self.m.mlp_inv_scale = &misc[0]
        self.m.mlp_zero = &mzero[0]
        self.m.core = &ctab[0] if core is not None else NULL
        self.m.grade_M = gM
        self.m.grade_ref = &gref[0]
        self.has_core = core is not None
        self.grade_M = gM
        if nlayers:   # reference the MLP to an isolated atom (G = 0): its energy is e0 alone
            e, _ = self.embed(np.arange(n_species), np.zeros((n_species, KG)), spline=False)
            mzero[:] = e

    def arrays(self):
        """Copies of the packed arrays the kernels read (read-only view of ``snnp_model``).

        Keys follow the struct's fields: blk_x0, blk_h, blk_invh, blk_nint, blk_off, coef,
        phi_blk, rho_blk, f_blk, g_blk, U_blk, U0, mlp_nlayers, mlp_act, mlp_width, mlp_off,
        mlp_w, mlp_mean, mlp_inv_scale, mlp_zero (used by snnp.io.lammps_snnp)."""
        names = ("blk_x0", "blk_h", "blk_invh", "blk_nint", "blk_off", "coef", "phi_blk",
                 "rho_blk", "f_blk", "g_blk", "U_blk", "U0", "mlp_width", "mlp_off", "mlp_w",
                 "mlp_mean", "mlp_inv_scale", "mlp_zero", "core", "grade_ref")
        out = {k: np.array(v, copy=True) for k, v in zip(names, self._keep)}
        out["mlp_nlayers"] = self.m.mlp_nlayers
        out["mlp_act"] = self.m.mlp_act
        if not self.has_core:
            out["core"] = None
        out["grade_M"] = self.grade_M
        if not self.grade_M:
            out["grade_ref"] = None
        return out

    def scratch_per_neighbor(self):
        """Doubles of scratch snnp_atom needs per neighbour (front ends size buffers with it)."""
        return snnp_scratch_per_neighbor(&self.m)

    def embed(self, species, G, bint spline=True):
        """Embedding energies eps(G) and gradients dE/dG of rows G (n, K_r + K_a), in C.

        With ``spline=False`` only the MLP part (used to reference it at G = 0)."""
        cdef cnp.ndarray[int] sp = _c(species, np.intc)
        cdef int KG = self.K_r + self.K_a
        cdef cnp.ndarray[double, ndim=2] g = _c(G, np.float64).reshape(-1, KG)
        cdef Py_ssize_t n = g.shape[0], r
        if sp.shape[0] != n:
            raise ValueError("species and G rows disagree")
        cdef cnp.ndarray[double] e = np.zeros(n)
        cdef cnp.ndarray[double, ndim=2] dG = np.zeros((n, max(KG, 1)))
        cdef snnp_model m = self.m
        cdef cnp.ndarray[int] no_spline = np.full(self.n_species, -1, np.intc)
        if not spline:
            m.U_blk = &no_spline[0]
        for r in range(n):
            e[r] = snnp_embed(&m, sp[r], &g[r, 0], &dG[r, 0])
        return e, dG[:, :KG]

    def param_grad(self, positions, species, offsets, neighbors, shifts, field, kappa, gamma,
                   Gbar):
        """Gradient of J = sum kappa E + D E (docs/theory.md) with respect to the spline data
        of the pair term and filters (array laid out like the packed coefficients), given per
        atom kappa, gamma = deps/dG and Gbar = kappa gamma + H Gdot."""
        cdef cnp.ndarray[double, ndim=2] x = _c(positions, np.float64)
        cdef cnp.ndarray[int] sp = _c(species, np.intc)
        cdef cnp.ndarray[long long] off = _c(offsets, np.longlong)
        cdef cnp.ndarray[int] nbr = _c(neighbors, np.intc)
        cdef cnp.ndarray[double, ndim=2] sh = _c(shifts, np.float64)
        cdef int n = x.shape[0]
        cdef int KG = self.K_r + self.K_a
        cdef cnp.ndarray[double] kap = _c(kappa, np.float64)
        cdef cnp.ndarray[double, ndim=2] gam = _c(gamma, np.float64).reshape(n, KG)
        cdef cnp.ndarray[double, ndim=2] gbar = _c(Gbar, np.float64).reshape(n, KG)
        cdef FieldArrays fa = FieldArrays(field, n)
        cdef cnp.ndarray[double] grad = np.zeros(self.n_coef)
        if nbr.shape[0] == 0:
            nbr = np.zeros(1, np.intc)
            sh = np.zeros((1, 3))
        if kap.shape[0] != n or sp.shape[0] != n:
            raise ValueError("kappa and species need one value per atom")
        cdef int nt = get_num_threads()
        cdef int rc
        with nogil:
            rc = snnp_cpu_param_grad(&self.m, self.n_coef, n, &x[0, 0], &sp[0], &off[0], &nbr[0],
                                     &sh[0, 0], nt, &fa.f, &kap[0], &gam[0, 0], &gbar[0, 0],
                                     &grad[0])
        if rc != 0:
            raise MemoryError("snnp kernel could not allocate its gradient buffers")
        return grad

    def spline_values(self, int block, int K, x):
        """Values and slopes (len(x), K) of the K splines of a block, evaluated by the kernel."""
        cdef cnp.ndarray[double] xs = _c(x, np.float64).ravel()
        cdef cnp.ndarray[double, ndim=2] v = np.zeros((xs.shape[0], K))
        cdef cnp.ndarray[double, ndim=2] d = np.zeros((xs.shape[0], K))
        cdef Py_ssize_t r
        for r in range(xs.shape[0]):
            snnp_spline_eval(&self.m, block, K, xs[r], &v[r, 0], &d[r, 0])
        return v, d

    def compute(self, positions, species, offsets, neighbors, shifts, int mode=MODE_FULL,
                gamma=None, bint forces=True, bint virial=True, bint atom_virial=False,
                bint descriptors=False, field=None, bint grade=False):
        """Run the per-atom kernel over all atoms.

        Returns a dict with `energies` (N,), and where asked `forces` (N,3), `virial` (3,3) =
        sum over bonds of dE/dr_ij (x) r_ij, `atom_virial` (N,3,3), `G` (N, K_r+K_a), plus the
        shortest pair distance `rmin` and the pair `rmin_pair` (i, j) where it occurs.
        With ``grade`` (and a grade reference in the tables) also `grade` (N,), the per-atom
        extrapolation grade.
        MODE_TANGENT needs `field` = (lam (N,3), mu (S,3,3), structure (N,)) and returns `G` as
        (N, 2(K_r+K_a)): the filters, then their derivative along the field.
        """
        cdef cnp.ndarray[double, ndim=2] x = _c(positions, np.float64)
        cdef cnp.ndarray[int] sp = _c(species, np.intc)
        cdef cnp.ndarray[long long] off = _c(offsets, np.longlong)
        cdef cnp.ndarray[int] nbr = _c(neighbors, np.intc)
        cdef cnp.ndarray[double, ndim=2] sh = _c(shifts, np.float64)
        cdef int n = x.shape[0]
        cdef int KG = self.K_r + self.K_a
        if sp.shape[0] != n or off.shape[0] != n + 1:
            raise ValueError("positions, species and neighbour offsets disagree in length")
        if n and (sp.min() < 0 or sp.max() >= self.n_species):
            raise ValueError("species index out of range for this model")
        if nbr.shape[0] == 0:
            nbr = np.zeros(1, np.intc)
            sh = np.zeros((1, 3))
        cdef cnp.ndarray[double] e = np.zeros(n)
        cdef int gw = 2 * KG if mode == MODE_TANGENT else KG
        cdef FieldArrays fa
        cdef snnp_field *fp = NULL
        if mode == MODE_TANGENT:
            fa = FieldArrays(field, n)
            fp = &fa.f
            descriptors = True
        cdef cnp.ndarray[double, ndim=2] G = np.zeros((n if descriptors else 1, gw if gw else 1))
        cdef cnp.ndarray[double, ndim=2] F = np.zeros((n if forces else 1, 3))
        cdef cnp.ndarray[double, ndim=2] W = np.zeros((3, 3))
        cdef cnp.ndarray[double, ndim=3] AW = np.zeros((n if atom_virial else 1, 3, 3))
        cdef cnp.ndarray[double, ndim=2] gam
        cdef const double *gp = NULL
        if mode == MODE_BACKWARD:
            gam = _c(gamma, np.float64).reshape(n, KG)
            gp = &gam[0, 0]
        grade = grade and self.grade_M > 0
        cdef cnp.ndarray[double] Xg = np.zeros(n if grade else 1)
        cdef double rmin = 0.0
        cdef int pair[2]
        cdef int nt = get_num_threads()
        cdef int rc
        if n == 0:
            return {"energies": e, "forces": np.zeros((0, 3)), "virial": W,
                    "rmin": np.inf, "rmin_pair": (-1, -1)}
        with nogil:
            rc = snnp_cpu_compute(&self.m, n, &x[0, 0], &sp[0], &off[0], &nbr[0], &sh[0, 0], nt,
                                  mode, gp, fp, &e[0],
                                  &G[0, 0] if descriptors else NULL,
                                  &F[0, 0] if forces else NULL,
                                  &W[0, 0] if virial else NULL,
                                  &AW[0, 0, 0] if atom_virial else NULL,
                                  &Xg[0] if grade else NULL,
                                  &rmin, pair)
        if rc != 0:
            raise MemoryError("snnp kernel could not allocate its work buffers")
        out = {"energies": e, "rmin": rmin, "rmin_pair": (pair[0], pair[1])}
        if forces:
            out["forces"] = F
        if virial:
            out["virial"] = W
        if atom_virial:
            out["atom_virial"] = AW
        if descriptors:
            out["G"] = G
        if grade:
            out["grade"] = Xg
        return out


cdef class FieldArrays:
    """Keeps the arrays of a displacement field (lam, mu, structure) alive for the kernels."""
    cdef snnp_field f
    cdef object keep

    def __init__(self, field, int n):
        lam, mu, structure = field
        cdef cnp.ndarray[double, ndim=2] L = _c(lam, np.float64).reshape(n, 3)
        cdef cnp.ndarray[double, ndim=3] M = _c(mu, np.float64).reshape(-1, 3, 3)
        cdef cnp.ndarray[int] S = _c(structure, np.intc)
        if S.shape[0] != n:
            raise ValueError("the field needs a structure index per atom")
        if n and (S.min() < 0 or S.max() >= M.shape[0]):
            raise ValueError("structure index out of range of mu")
        self.keep = (L, M, S)
        self.f.lam = &L[0, 0]
        self.f.mu = &M[0, 0, 0]
        self.f.structure = &S[0]


def neighbor_search(xw, image, bins, cell, pbc, nb, reach, bin_start, bin_atoms, double cutoff):
    """Full neighbour list from a prepared cell list (see neighbors.h and snnp/neighbors.py).

    Returns (offsets (N+1,) int64, neighbors (M,) int32, shifts (M,3) int32, shift vectors
    (M,3) float64 = shifts . cell), the vectors computed here so that no N-sized matrix product
    runs through a multithreaded BLAS whose spinning workers would compete with the kernels.
    """
    cdef cnp.ndarray[double, ndim=2] X = _c(xw, np.float64)
    cdef cnp.ndarray[int, ndim=2] IM = _c(image, np.intc)
    cdef cnp.ndarray[int, ndim=2] B = _c(bins, np.intc)
    cdef cnp.ndarray[double, ndim=2] C = _c(cell, np.float64)
    cdef cnp.ndarray[int] P = _c(pbc, np.intc)
    cdef cnp.ndarray[int] NB = _c(nb, np.intc)
    cdef cnp.ndarray[int] R = _c(reach, np.intc)
    cdef cnp.ndarray[long long] BS = _c(bin_start, np.longlong)
    cdef cnp.ndarray[int] BA = _c(bin_atoms, np.intc)
    cdef int n = X.shape[0]
    cdef snnp_cells c
    cdef cnp.ndarray[long long] counts = np.zeros(n + 1, np.longlong)
    cdef int i
    if n == 0:
        return counts, np.zeros(0, np.intc), np.zeros((0, 3), np.intc), np.zeros((0, 3))
    c.natoms = n
    c.xw = &X[0, 0]
    c.image = &IM[0, 0]
    c.bin = &B[0, 0]
    c.cell = &C[0, 0]
    c.pbc = &P[0]
    c.nb = &NB[0]
    c.reach = &R[0]
    c.bin_start = &BS[0]
    c.bin_atoms = &BA[0]
    c.cutoff = cutoff
    cdef int nt = snnp_threads_for(get_num_threads(), n)
    with nogil:
        for i in prange(n, num_threads=nt, schedule="dynamic", chunksize=64):
            counts[i + 1] = snnp_cells_visit(&c, i, NULL, NULL, NULL)
    offsets = np.cumsum(counts)
    cdef cnp.ndarray[long long] off = offsets
    cdef long long total = off[n]
    cdef cnp.ndarray[int] J = np.empty(max(total, 1), np.intc)
    cdef cnp.ndarray[int, ndim=2] S = np.empty((max(total, 1), 3), np.intc)
    cdef cnp.ndarray[double, ndim=2] V = np.empty((max(total, 1), 3))
    with nogil:
        for i in prange(n, num_threads=nt, schedule="dynamic", chunksize=64):
            snnp_cells_visit(&c, i, &J[off[i]], &S[off[i], 0], &V[off[i], 0])
    return offsets, J[:total], S[:total], V[:total]
