/* CPU front end of the shared kernels: OpenMP over atoms, one force buffer per thread.
 * Thread 0 writes straight into the output; the others into private buffers summed at the end,
 * in thread order, so a run is deterministic for a given thread count. */
#ifndef SNNP_CPU_DRIVER_H
#define SNNP_CPU_DRIVER_H

#include <stdlib.h>
#include <string.h>
#include <float.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "kernels.h"

/* Below this many atoms per thread a parallel region costs more than it saves (and on a
 * loaded machine one descheduled thread stalls every barrier), so fewer threads are used. */
#define SNNP_MIN_ATOMS_PER_THREAD 256

static int snnp_threads_for(int nthreads, long long natoms)
{
#ifndef _OPENMP
    return 1;
#endif
    const long long cap = natoms / SNNP_MIN_ATOMS_PER_THREAD;
    if (nthreads > cap) nthreads = (int)(cap > 1 ? cap : 1);
    return nthreads < 1 ? 1 : nthreads;
}

static int snnp_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Longest neighbour list: the size of each thread's per-atom scratch. */
static int snnp_max_neighbors(const long long *offsets, int natoms)
{
    long long most = 0;
    for (int i = 0; i < natoms; ++i)
        if (offsets[i+1] - offsets[i] > most) most = offsets[i+1] - offsets[i];
    return (int)most;
}

static int snnp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Returns 0 on success, -1 when memory could not be allocated.
 * energies[N] always written; G_out[N*(K_r+K_a)], forces[3N], virial[9], atom_virial[9N] and
 * grade[N] (extrapolation grades, snnp_grade) optional. */
static int snnp_cpu_compute(const snnp_model *m, int natoms, const double *x, const int *species,
                            const long long *offsets, const int *nbr, const double *shift,
                            int nthreads, int mode, const double *gamma, const snnp_field *fld,
                            double *energies, double *G_out, double *forces, double *virial,
                            double *atom_virial, double *grade, double *rmin_out, int *pair_out)
{
    const int KG = m->K_r + m->K_a;
    const int gstride = (mode == SNNP_TANGENT) ? 2 * KG : KG;
    const int max_nb = snnp_max_neighbors(offsets, natoms);
    nthreads = snnp_threads_for(nthreads, natoms);
    const int per = snnp_scratch_per_neighbor(m);
    double **fbuf = (double **)calloc((size_t)nthreads, sizeof(double *));
    double *vbuf = (double *)calloc((size_t)nthreads * 9, sizeof(double));
    double *rbuf = (double *)malloc((size_t)nthreads * sizeof(double));
    int *ibuf = (int *)malloc((size_t)nthreads * 2 * sizeof(int));
    int failed = (!fbuf || !vbuf || !rbuf || !ibuf);
    if (forces && !failed) {
        memset(forces, 0, sizeof(double) * 3 * (size_t)natoms);
        fbuf[0] = forces;
        for (int t = 1; t < nthreads; ++t) {
            fbuf[t] = (double *)calloc(3 * (size_t)natoms, sizeof(double));
            if (!fbuf[t]) failed = 1;
        }
    }
    if (failed) goto done;

    #pragma omp parallel num_threads(nthreads)
    {
        const int tid = snnp_thread_id();
        double *scr = (double *)malloc(sizeof(double) * ((size_t)max_nb * per + 1));
        int *iscr = (int *)malloc(sizeof(int) * (2 * (size_t)max_nb + 1));
        double rmin = DBL_MAX;
        int imin = -1, jmin = -1;
        double *fb = forces ? fbuf[tid] : NULL;
        double *vb = virial ? vbuf + 9 * tid : NULL;
        if (!scr || !iscr) {
            #pragma omp atomic write
            failed = 1;
        } else {
            #pragma omp for schedule(static, 32)   /* fixed atoms per thread: same sums every run */
            for (int i = 0; i < natoms; ++i) {
                const long long o = offsets[i];
                const double r0 = rmin;
                int j0 = -1;
                energies[i] = snnp_atom(m, i, x, species, nbr + o, shift ? shift + 3 * o : NULL,
                                        (int)(offsets[i+1] - o), scr, iscr, mode,
                                        gamma ? gamma + (size_t)KG * i : NULL, fld,
                                        G_out ? G_out + (size_t)gstride * i : NULL, fb, vb,
                                        atom_virial ? atom_virial + 9 * (size_t)i : NULL,
                                        &rmin, &j0, grade ? grade + i : NULL);
                if (rmin < r0) { imin = i; jmin = j0; }
            }
        }
        rbuf[tid] = rmin; ibuf[2*tid] = imin; ibuf[2*tid+1] = jmin;
        free(scr); free(iscr);
        if (forces && nthreads > 1) {
            #pragma omp barrier
            #pragma omp for schedule(static)
            for (long long q = 0; q < 3 * (long long)natoms; ++q) {
                double s = 0.0;
                for (int t = 1; t < nthreads; ++t) s += fbuf[t][q];
                forces[q] += s;
            }
        }
    }
    if (virial) {
        for (int q = 0; q < 9; ++q) {
            double s = 0.0;
            for (int t = 0; t < nthreads; ++t) s += vbuf[9*t + q];
            virial[q] = s;
        }
    }
    {
        double rmin = DBL_MAX;
        int imin = -1, jmin = -1;
        for (int t = 0; t < nthreads; ++t)
            if (rbuf[t] < rmin) { rmin = rbuf[t]; imin = ibuf[2*t]; jmin = ibuf[2*t+1]; }
        *rmin_out = rmin; pair_out[0] = imin; pair_out[1] = jmin;
    }
done:
    if (fbuf) for (int t = 1; t < nthreads; ++t) free(fbuf[t]);
    free(fbuf); free(vbuf); free(rbuf); free(ibuf);
    return failed ? -1 : 0;
}


/* Training gradient with respect to the spline data (laid out like m->coef), summed over atoms:
 * per atom kappa (of its structure), gamma and Gbar rows of K_r + K_a.  One buffer per thread,
 * summed in thread order.  Returns 0, or -1 when memory could not be allocated. */
static int snnp_cpu_param_grad(const snnp_model *m, long long ncoef, int natoms, const double *x,
                               const int *species, const long long *offsets, const int *nbr,
                               const double *shift, int nthreads, const snnp_field *fld,
                               const double *kappa, const double *gamma, const double *Gbar,
                               double *grad)
{
    const int KG = m->K_r + m->K_a;
    const int max_nb = snnp_max_neighbors(offsets, natoms);
    nthreads = snnp_threads_for(nthreads, natoms);
    const int per = snnp_grad_scratch_per_neighbor(m);
    double *buf = (double *)calloc((size_t)nthreads * (size_t)ncoef, sizeof(double));
    int failed = !buf;
    if (failed) return -1;
    #pragma omp parallel num_threads(nthreads)
    {
        const int tid = snnp_thread_id();
        double *scr = (double *)malloc(sizeof(double) * ((size_t)max_nb * per + 1));
        int *iscr = (int *)malloc(sizeof(int) * (2 * (size_t)max_nb + 1));
        double *g = buf + (size_t)tid * ncoef;
        if (!scr || !iscr) {
            #pragma omp atomic write
            failed = 1;
        } else {
            #pragma omp for schedule(static, 32)   /* fixed atoms per thread: same sums every run */
            for (int i = 0; i < natoms; ++i) {
                const long long o = offsets[i];
                snnp_atom_param_grad(m, i, x, species, nbr + o, shift ? shift + 3 * o : NULL,
                                     (int)(offsets[i+1] - o), scr, iscr, fld, kappa[i],
                                     gamma + (size_t)KG * i, Gbar + (size_t)KG * i, g);
            }
        }
        free(scr); free(iscr);
    }
    for (long long q = 0; q < ncoef; ++q) {
        double s = 0.0;
        for (int t = 0; t < nthreads; ++t) s += buf[(size_t)t * ncoef + q];
        grad[q] = s;
    }
    free(buf);
    return failed ? -1 : 0;
}

#endif
