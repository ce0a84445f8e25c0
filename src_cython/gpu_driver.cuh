/* GPU front end of the shared kernels, compiled at run time by CuPy (RawModule, NVRTC).
 *
 * snnp/backends/gpu.py reads this file, pastes kernels.h and neighbors.h in place of their
 * #include lines (so CuPy's kernel cache sees every change), and launches the kernels below.
 * The maths is kernels.h's, unchanged: one thread per centre atom runs snnp_atom, forces are
 * scattered with atomicAdd (double atomics: compute capability 6.0 or newer), and the MLP
 * embedding runs outside, as CuPy matrix products over all atoms of a species.
 *
 * Every kernel walks its items with a grid-stride loop, so any launch shape is correct; the
 * per-thread scratch is indexed by the global thread number.  The source is plain C apart from
 * the CUDA qualifiers, so tests can compile it with a C compiler (tests/cupy_emulator.py).
 */
#ifndef SNNP_GPU_DRIVER_CUH
#define SNNP_GPU_DRIVER_CUH

#define SNNP_FN __device__ inline
#define SNNP_ADD(p, v) atomicAdd((p), (v))
#include "kernels.h"
#include "neighbors.h"

#ifdef __cplusplus
#define SNNP_KERNEL extern "C" __global__ void
#else
#define SNNP_KERNEL __global__ void
#endif

#define SNNP_THREAD ((long long)blockIdx.x * blockDim.x + threadIdx.x)
#define SNNP_THREADS ((long long)gridDim.x * blockDim.x)

/* The model tables, as separate arrays (the order snnp/backends/gpu.py passes them). */
#define SNNP_MODEL_PARAMS                                                                     \
    int n_species, int K_r, int K_a, double cutoff, const double *blk_x0, const double *blk_h, \
    const double *blk_invh, const int *blk_nint, const long long *blk_off, const double *coef, \
    const int *phi_blk, const int *rho_blk, const int *f_blk, const int *g_blk,               \
    const int *U_blk, const double *U0, int has_core, const double *core, int grade_M,         \
    const double *grade_ref

/* The embedding MLP is not run in the kernels (mlp_nlayers = 0): the host side does it.  The
 * short-range core and clamp (kernels.h, snnp_core / snnp_clamped) and the extrapolation grade
 * reference (snnp_grade) are the CPU's tables; has_core = 0 or grade_M = 0 switch them off (the
 * pointers then point at a placeholder the kernels never read: CuPy passes no NULL arrays). */
#define SNNP_MODEL_INIT(m)                                                                    \
    snnp_model m;                                                                             \
    m.n_species = n_species; m.K_r = K_r; m.K_a = K_a; m.cutoff = cutoff;                     \
    m.blk_x0 = blk_x0; m.blk_h = blk_h; m.blk_invh = blk_invh; m.blk_nint = blk_nint;         \
    m.blk_off = blk_off; m.coef = coef; m.phi_blk = phi_blk; m.rho_blk = rho_blk;             \
    m.f_blk = f_blk; m.g_blk = g_blk; m.U_blk = U_blk; m.U0 = U0;                             \
    m.mlp_nlayers = 0; m.mlp_act = 0; m.mlp_width = 0; m.mlp_off = 0; m.mlp_w = 0;            \
    m.mlp_mean = 0; m.mlp_inv_scale = 0; m.mlp_zero = 0;                                      \
    m.core = has_core ? core : 0; m.grade_M = grade_M; m.grade_ref = grade_ref

/* Atoms first .. first+count-1 through snnp_atom in `mode` (SNNP_FULL, SNNP_DESCRIPTORS or
 * SNNP_BACKWARD with gamma rows of K_r + K_a).  Per atom i: energies[i], rmin[i] and jmin[i]
 * (shortest pair), and where the flags ask, G[i], the 9-entry atom_virial[i], the forces
 * (scattered into all atoms) and the extrapolation grade grade[i] (snnp_grade of G[i]; needs
 * grade_M > 0).  scratch: max_nb * snnp_scratch_per_neighbor doubles and 2 * max_nb ints per
 * launched thread. */
SNNP_KERNEL snnp_gpu_atoms(SNNP_MODEL_PARAMS, int first, int count, const double *x,
                           const int *species, const long long *offsets, const int *nbr,
                           const double *shift, int mode, const double *gamma, int max_nb,
                           double *scratch, int *iscratch, double *energies, int want_G,
                           double *G, int want_forces, double *forces, int want_virial,
                           double *atom_virial, int want_grade, double *grade, double *rmin,
                           int *jmin)
{
    SNNP_MODEL_INIT(m);
    const int KG = K_r + K_a;
    const long long t = SNNP_THREAD;
    double *scr = scratch + t * (long long)max_nb * snnp_scratch_per_neighbor(&m);
    int *iscr = iscratch + t * 2LL * max_nb;
    for (long long a = t; a < count; a += SNNP_THREADS) {
        const int i = first + (int)a;
        const long long o = offsets[i];
        double r = 1e300;
        int j = -1;
        energies[i] = snnp_atom(&m, i, x, species, nbr + o, shift + 3 * o,
                                (int)(offsets[i + 1] - o), scr, iscr, mode,
                                mode == SNNP_BACKWARD ? gamma + (long long)KG * i : 0, 0,
                                want_G ? G + (long long)KG * i : 0, want_forces ? forces : 0,
                                0, want_virial ? atom_virial + 9LL * i : 0, &r, &j,
                                want_grade && grade_M > 0 ? grade + i : 0);
        rmin[i] = r;
        jmin[i] = j;
    }
}

/* The spline embedding U(R_1 + A_1) - U(0) of atoms 0..count-1, added to energies[i];
 * dG[i] (rows of K_r + K_a) is overwritten with its gradient. */
SNNP_KERNEL snnp_gpu_embed_spline(SNNP_MODEL_PARAMS, int count, const int *species,
                                  const double *G, double *energies, double *dG)
{
    SNNP_MODEL_INIT(m);
    const int KG = K_r + K_a;
    for (long long i = SNNP_THREAD; i < count; i += SNNP_THREADS)
        energies[i] += snnp_embed(&m, species[i], G + KG * i, dG + KG * i);
}

/* Cell-list neighbour search (neighbors.h), in two passes: count, then fill at offsets. */
#define SNNP_CELLS_PARAMS                                                                     \
    int natoms, const double *xw, const int *image, const int *bin, const double *cell,        \
    const int *pbc, const int *nb, const int *reach, const long long *bin_start,               \
    const int *bin_atoms, double cutoff

#define SNNP_CELLS_INIT(c)                                                                    \
    snnp_cells c;                                                                             \
    c.natoms = natoms; c.xw = xw; c.image = image; c.bin = bin; c.cell = cell; c.pbc = pbc;    \
    c.nb = nb; c.reach = reach; c.bin_start = bin_start; c.bin_atoms = bin_atoms;              \
    c.cutoff = cutoff

SNNP_KERNEL snnp_gpu_neighbor_count(SNNP_CELLS_PARAMS, long long *counts)
{
    SNNP_CELLS_INIT(c);
    for (long long i = SNNP_THREAD; i < natoms; i += SNNP_THREADS)
        counts[i] = snnp_cells_visit(&c, (int)i, 0, 0, 0);
}

SNNP_KERNEL snnp_gpu_neighbor_fill(SNNP_CELLS_PARAMS, const long long *offsets, int *nbr,
                                   int *shift, double *vec)
{
    SNNP_CELLS_INIT(c);
    for (long long i = SNNP_THREAD; i < natoms; i += SNNP_THREADS) {
        const long long o = offsets[i];
        snnp_cells_visit(&c, (int)i, nbr + o, shift + 3 * o, vec + 3 * o);
    }
}

#endif /* SNNP_GPU_DRIVER_CUH */
