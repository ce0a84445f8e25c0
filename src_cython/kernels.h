/* snnp shared kernels: plain C, one source for the CPU (Cython + OpenMP), GPU (CuPy RawModule)
 * and LAMMPS front ends.  The maths is in docs/theory.md; notation follows DESIGN section 2.
 *
 * A front end defines, before including this header:
 *   SNNP_FN        function qualifier (default: static inline; CUDA: __device__ inline)
 *   SNNP_ADD(p, v) scatter-add into a force buffer (default: *(p) += (v); CUDA: atomicAdd)
 *
 * Splines.  Every spline lives in a "block": one uniform knot grid shared by K splines (a filter
 * bank shares its grid, so locating the interval is paid once for all K filters).  A block
 * with n intervals stores, per interval, the cubics c0 + c1 u + c2 u^2 + c3 u^3 in the local
 * coordinate u = (x - x_i)/h in [0, 1) as c0 of the K splines, then their c1, c2, c3 (so a loop
 * over the K splines reads contiguous memory and vectorises), then (y_0, d_0, y_N, d_N) in the
 * same order, K values each, for the linear continuation outside the knots (LAMMPS meam/spline
 * does the same).
 */
#ifndef SNNP_KERNELS_H
#define SNNP_KERNELS_H

#ifndef __CUDACC_RTC__      /* NVRTC (CuPy) has the maths built in and no system headers */
#include <math.h>
#endif

#ifndef SNNP_FN
#define SNNP_FN static inline
#endif
#ifndef SNNP_ADD
#define SNNP_ADD(p, v) (*(p) += (v))
#endif
/* SNNP_CPU_CLONES (set by setup.py for the CPU extension): snnp_atom in two builds, chosen at
 * run time by the processor, AVX2 and the baseline.  Its filter loops are vectorised lane by
 * lane over filters and nothing is contracted into FMAs (-ffp-contract=off), so both give the
 * same bits; AVX2 does four filters per instruction. */
#ifndef SNNP_ATOM_ATTR
#if defined(SNNP_CPU_CLONES) && defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(__CUDACC__)
#define SNNP_ATOM_ATTR __attribute__((target_clones("avx2", "default")))
#else
#define SNNP_ATOM_ATTR
#endif
#endif
/* Vectorise a loop over filters whose iterations are independent (OpenMP builds, or
 * -fopenmp-simd with SNNP_OMP_SIMD as the LAMMPS plugin is built). */
#if (defined(_OPENMP) || defined(SNNP_OMP_SIMD)) && !defined(__CUDACC__)
#define SNNP_SIMD _Pragma("omp simd")
#else
#define SNNP_SIMD
#endif

typedef struct {
    int n_species;
    int K_r;             /* radial filters per neighbour species          */
    int K_a;             /* angular filters (f_k, g_k)                   */
    double cutoff;       /* global cutoff: pairs with r < cutoff interact  */
    /* spline blocks */
    const double *blk_x0, *blk_h, *blk_invh;
    const int *blk_nint;
    const long long *blk_off;
    const double *coef;
    /* block tables, -1 where absent */
    const int *phi_blk;  /* [ns*ns] pair term, by unordered species pair  */
    const int *rho_blk;  /* [ns]    radial filters, by neighbour species   */
    const int *f_blk;    /* [ns]    angular radial parts, by neighbour     */
    const int *g_blk;    /* [ns*ns] angular parts, by neighbour pair       */
    const int *U_blk;    /* [ns]    spline embedding, by centre species    */
    const double *U0;    /* [ns]    U(0), subtracted so an isolated atom has zero energy */
    /* per-species MLP embedding on standardised filters x = (G - mean) * inv_scale */
    int mlp_nlayers;     /* weight layers; 0 = no MLP */
    int mlp_act;         /* SNNP_TANH, SNNP_SOFTPLUS, SNNP_SILU, SNNP_LINEAR */
    const int *mlp_width;        /* [nlayers + 1]: K_r + K_a, hidden widths.., 1 */
    const long long *mlp_off;    /* [ns] offset of each species' weights in mlp_w */
    const double *mlp_w;         /* per layer: W (out x in, row-major) then b (out) */
    const double *mlp_mean, *mlp_inv_scale;   /* [ns * (K_r + K_a)] */
    const double *mlp_zero;      /* [ns] MLP output at G = 0, subtracted (isolated atom: 0) */
    /* short range (docs/theory.md, "Where the data end"), per ordered species pair, or NULL:
     * SNNP_CORE_STRIDE doubles, see snnp_core */
    const double *core;
    /* extrapolation grade (snnp_grade): centres per species (0 = no grade) and, per species,
     * mean[KG] whitening[KG][KG] (row-major) inv_radius centres[grade_M][KG] */
    int grade_M;
    const double *grade_ref;
} snnp_model;

enum { SNNP_TANH = 0, SNNP_SOFTPLUS = 1, SNNP_SILU = 2, SNNP_LINEAR = 3 };
#define SNNP_MLP_MAX_WIDTH 128
#define SNNP_MLP_MAX_LAYERS 8

/* Smooth activations and their slopes (never ReLU: forces need a continuous derivative). */
SNNP_FN double snnp_activation(int kind, double z, double *slope)
{
    switch (kind) {
    case SNNP_TANH: { const double t = tanh(z); *slope = 1.0 - t * t; return t; }
    case SNNP_SOFTPLUS: {
        const double sig = 1.0 / (1.0 + exp(-z));
        *slope = sig;
        return z > 0.0 ? z + log1p(exp(-z)) : log1p(exp(z));
    }
    case SNNP_SILU: {
        const double sig = 1.0 / (1.0 + exp(-z));
        *slope = sig * (1.0 + z * (1.0 - sig));
        return z * sig;
    }
    default: *slope = 1.0; return z;
    }
}

/* MLP energy of species s at filters G (minus its value at G = 0); adds d/dG into dG. */
SNNP_FN double snnp_mlp(const snnp_model *m, int s, const double *G, double *dG)
{
    const int L = m->mlp_nlayers, KG = m->K_r + m->K_a;
    const int *w = m->mlp_width;
    const double *mean = m->mlp_mean + (long long)s * KG;
    const double *isc = m->mlp_inv_scale + (long long)s * KG;
    double a[SNNP_MLP_MAX_LAYERS][SNNP_MLP_MAX_WIDTH];     /* input of each layer */
    double da[SNNP_MLP_MAX_LAYERS][SNNP_MLP_MAX_WIDTH];    /* activation slope feeding it */
    double delta[SNNP_MLP_MAX_WIDTH], back[SNNP_MLP_MAX_WIDTH];
    const double *layer[SNNP_MLP_MAX_LAYERS];
    const double *p = m->mlp_w + m->mlp_off[s];
    double out = 0.0;
    for (int k = 0; k < KG; ++k) a[0][k] = (G[k] - mean[k]) * isc[k];
    for (int l = 0; l < L; ++l) {
        const int nin = w[l], nout = w[l + 1];
        const double *W = p, *b = p + (long long)nout * nin;
        layer[l] = p;
        p = b + nout;
        for (int o = 0; o < nout; ++o) {
            double z = b[o];
            const double *row = W + (long long)o * nin;
            for (int q = 0; q < nin; ++q) z += row[q] * a[l][q];
            if (l + 1 < L) a[l + 1][o] = snnp_activation(m->mlp_act, z, &da[l + 1][o]);
            else out = z;
        }
    }
    /* reverse sweep: delta holds d out / d z of the current layer's outputs */
    delta[0] = 1.0;
    for (int l = L - 1; l >= 0; --l) {
        const int nin = w[l], nout = w[l + 1];
        const double *W = layer[l];
        for (int q = 0; q < nin; ++q) back[q] = 0.0;
        for (int o = 0; o < nout; ++o) {
            const double *row = W + (long long)o * nin;
            const double d = delta[o];
            for (int q = 0; q < nin; ++q) back[q] += row[q] * d;
        }
        if (l > 0) for (int q = 0; q < nin; ++q) delta[q] = back[q] * da[l][q];
    }
    for (int k = 0; k < KG; ++k) dG[k] += back[k] * isc[k];
    return out - m->mlp_zero[s];
}

/* Where x falls in block b: the interval i in [0, n) with the local coordinate *u in [0, 1), or
 * -1 left of the first knot (*u = t <= 0) or n right of the last (*u = t - n), t and u counted in
 * knot spacings from the first knot and from the interval's start. */
SNNP_FN int snnp_spline_locate(const snnp_model *m, int b, double x, double *u)
{
    const int n = m->blk_nint[b];
    const double t = (x - m->blk_x0[b]) * m->blk_invh[b];
    if (t > 0.0 && t < (double)n) {
        int i = (int)t;
        if (i >= n) i = n - 1;
        *u = t - (double)i;
        return i;
    }
    if (t <= 0.0) { *u = t; return -1; }
    *u = t - (double)n;
    return n;
}

/* Value and slope of the K splines of block b at x. */
SNNP_FN void snnp_spline_eval(const snnp_model *m, int b, int K, double x, double *v, double *d)
{
    const double invh = m->blk_invh[b];
    const int n = m->blk_nint[b];
    const double *c = m->coef + m->blk_off[b];
    double u;
    const int i = snnp_spline_locate(m, b, x, &u);
    if (i >= 0 && i < n) {
        const double *q0 = c + (long long)i * K * 4, *q1 = q0 + K, *q2 = q1 + K, *q3 = q2 + K;
        SNNP_SIMD
        for (int k = 0; k < K; ++k) {
            v[k] = q0[k] + u * (q1[k] + u * (q2[k] + u * q3[k]));
            d[k] = (q1[k] + u * (2.0 * q2[k] + 3.0 * u * q3[k])) * invh;
        }
    } else {
        const double *e = c + (long long)n * K * 4;     /* y_0[K] d_0[K] y_N[K] d_N[K] */
        if (i < 0) {
            const double dx = x - m->blk_x0[b];
            for (int k = 0; k < K; ++k) { v[k] = e[k] + e[K+k] * dx; d[k] = e[K+k]; }
        } else {
            const double dx = u * m->blk_h[b];
            for (int k = 0; k < K; ++k) { v[k] = e[2*K+k] + e[3*K+k] * dx; d[k] = e[3*K+k]; }
        }
    }
}

/* Embedding energy eps_s(G) of a centre of species s and its gradient dG (overwritten):
 * spline U on the density n = R_1 + A_1 (minus U(0)), plus the MLP (minus its value at G = 0). */
SNNP_FN double snnp_embed(const snnp_model *m, int s, const double *G, double *dG)
{
    const int Kr = m->K_r, Ka = m->K_a;
    double e = 0.0;
    for (int k = 0; k < Kr + Ka; ++k) dG[k] = 0.0;
    const int ub = m->U_blk[s];
    if (ub >= 0) {
        const double n = (Kr > 0 ? G[0] : 0.0) + (Ka > 0 ? G[Kr] : 0.0);
        double U, dU;
        snnp_spline_eval(m, ub, 1, n, &U, &dU);
        e += U - m->U0[s];
        if (Kr > 0) dG[0] = dU;
        if (Ka > 0) dG[Kr] = dU;
    }
    if (m->mlp_nlayers > 0) e += snnp_mlp(m, s, G, dG);
    return e;
}

/* How far the angular radial parts f_k of block b reach: past the block's last knot they
 * continue linearly from their end values and slopes, so where all of those are zero (pinned
 * filters) no pair beyond that knot enters a triplet -- an exact skip.  Otherwise: no limit. */
SNNP_FN double snnp_f_reach(const snnp_model *m, int b, int K)
{
    const int n = m->blk_nint[b];
    const double *e = m->coef + m->blk_off[b] + (long long)n * K * 4;
    for (int k = 0; k < K; ++k)
        if (e[2*K+k] != 0.0 || e[3*K+k] != 0.0) return 1e300;
    return m->blk_x0[b] + n * m->blk_h[b];
}

/* Short range.  Per ordered species pair (a, b) the table m->core holds SNNP_CORE_STRIDE doubles:
 *   [0] zz = Z_a Z_b e^2/(4 pi eps0) (eV A; 0: no core)   [1] 1/a, the ZBL screening length
 *   [2] r_in  [3] r_out   [4..7] sw1..sw4  [8] sw5 (constant shift)   as LAMMPS pair_style zbl
 *   [9] r_c  [10] w: the learned radial splines (phi, rho, f) of the pair see the distance
 *       r_eff (snnp_clamped): r from r_c + w up, frozen at r_c below r_c (r_c = 0: no clamp).
 *       snnp's tables set r_c = r_out - w: the rule leaves every pair from r_out up untouched.
 * The ZBL universal screening function with LAMMPS's switching: for r < r_out,
 *   E(r) = E_zbl(r) + sw5 + [r > r_in] (sw3 t^3 + sw4 t^4),  t = r - r_in,
 * so E, E' and E'' reach 0 at r_out; it has no trainable parameters. */
#define SNNP_CORE_STRIDE 11

SNNP_FN double snnp_core(const double *c, double r, double *dE)
{
    *dE = 0.0;
    if (c[0] == 0.0 || r >= c[3]) return 0.0;
    const double x = r * c[1];
    const double e1 = 0.18175 * exp(-3.19980 * x), e2 = 0.50986 * exp(-0.94229 * x);
    const double e3 = 0.28022 * exp(-0.40290 * x), e4 = 0.02817 * exp(-0.20162 * x);
    const double phi = e1 + e2 + e3 + e4;
    const double dphi = -(3.19980 * e1 + 0.94229 * e2 + 0.40290 * e3 + 0.20162 * e4) * c[1];
    const double invr = 1.0 / r;
    double E = c[0] * phi * invr + c[8];
    double d = c[0] * (dphi - phi * invr) * invr;
    if (r > c[2]) {
        const double t = r - c[2];
        E += t * t * t * (c[6] + c[7] * t);
        d += t * t * (c[4] + c[5] * t);
    }
    *dE = d;
    return E;
}

/* The distance the learned radial splines of a pair see (see snnp_core): r itself from
 * r_c + w up, r_c at and below r_c, and in between r_c + w q(t), t = (r - r_c)/w,
 * q = 6t^3 - 8t^4 + 3t^5, which meets both ends with equal value, slope and curvature
 * (q' > 0 inside).  So below r_c the learned terms are frozen and only the core acts.
 * *J = dr_eff/dr. */
SNNP_FN double snnp_clamped(const double *c, double r, double *J)
{
    *J = 1.0;
    if (!c || r >= c[9] + c[10]) return r;
    if (r <= c[9]) { *J = 0.0; return c[9]; }
    const double t = (r - c[9]) / c[10];
    *J = t * t * (18.0 + t * (-32.0 + 15.0 * t));
    return c[9] + c[10] * t * t * t * (6.0 + t * (-8.0 + 3.0 * t));
}

/* Extrapolation grade of a centre of species s with filters G: the distance of the whitened
 * filters z = W (G - mean) (unit covariance over the training atoms of s) to the nearest of
 * grade_M centres, over the largest such distance of any training atom (so every training atom
 * grades <= 1).  One centre at z = 0 is the Mahalanobis distance (snnp.ExtrapolationGrade). */
SNNP_FN double snnp_grade(const snnp_model *m, int s, const double *G)
{
    const int KG = m->K_r + m->K_a, M = m->grade_M;
    const double *ref = m->grade_ref
        + (long long)s * ((long long)KG * (KG + 1) + 1 + (long long)M * KG);
    const double *mean = ref, *W = ref + KG, *cen = ref + (long long)KG * (KG + 1) + 1;
    double x[64], z[64], best = 1e300;
    for (int k = 0; k < KG; ++k) x[k] = G[k] - mean[k];
    for (int r = 0; r < KG; ++r) {               /* z = W (G - mean) */
        const double *w = W + (long long)r * KG;
        double acc = 0.0;
        for (int k = 0; k < KG; ++k) acc += w[k] * x[k];
        z[r] = acc;
    }
    for (int c = 0; c < M; ++c) {
        const double *q = cen + (long long)c * KG;
        double d2 = 0.0;
        for (int k = 0; k < KG && d2 < best; ++k) { const double t = z[k] - q[k]; d2 += t * t; }
        if (d2 < best) best = d2;
    }
    return sqrt(best) * ref[(long long)KG * (KG + 1)];
}

/* Scratch doubles needed per neighbour slot by snnp_atom. */
SNNP_FN int snnp_scratch_per_neighbor(const snnp_model *m)
{
    return 10 + 6 * m->K_a + m->K_r;
}

enum { SNNP_FULL = 0, SNNP_DESCRIPTORS = 1, SNNP_BACKWARD = 2, SNNP_TANGENT = 3 };

/* A displacement field for training gradients (docs/theory.md, "Training gradients"): bond
 * vectors move as rdot_ij = (lam_j - lam_i) + mu_s r_ij, mu_s per structure s. */
typedef struct {
    const double *lam;       /* [3 * natoms] */
    const double *mu;        /* [9 * nstructures], row-major */
    const int *structure;    /* [natoms] structure of each atom */
} snnp_field;

SNNP_FN void snnp_bond_rate(const snnp_field *fld, int i, int j, const double *d, double *rd)
{
    const double *mu = fld->mu + 9 * fld->structure[i];
    for (int q = 0; q < 3; ++q)
        rd[q] = fld->lam[3*j + q] - fld->lam[3*i + q] + mu[3*q] * d[0] + mu[3*q+1] * d[1] + mu[3*q+2] * d[2];
}

/* One atom i: filters G_i, embedding, and (if f != NULL) the forces of its energy e_i.
 *
 *   neighbours  nbr[0..nlisted-1] with Cartesian image shifts shift[3*a] (NULL: no shifts, as in
 *               LAMMPS where ghosts carry their own positions); pairs with r >= cutoff are skipped.
 *   mode        SNNP_FULL: embed in C (spline U and/or MLP);  SNNP_DESCRIPTORS: only G_i and the
 *               pair energy;  SNNP_BACKWARD: take dE/dG_i from gamma (embedding done elsewhere);
 *               SNNP_TANGENT: G_i and its directional derivative Gdot_i along the field `fld`
 *               (an snnp_field), written to G_out[0..2K).
 *   G_out       [K_r + K_a] or NULL;   gamma [K_r + K_a] used in SNNP_BACKWARD
 *   f           force buffer [3*natoms] (scatter into i and its neighbours), or NULL
 *   vir         9 doubles, accumulates sum over bonds of dE/dr_ij (x) r_ij (row-major), or NULL
 *   avir        9 doubles for this atom's own share of the virial (overwritten), or NULL
 *   rmin, jmin  running minimum pair distance seen (for the short-distance check)
 *   grade       the atom's extrapolation grade (snnp_grade), or NULL
 * Returns e_i: half of each pair term plus (FULL mode) U(n_i) - U(0).
 *
 * Each neighbour slot a accumulates dE/dd_a for d_a = x_j - x_i in a scalar part along u_a and
 * per-filter vectors, so the triplet loop is traversed once (LAMMPS traverses it twice).
 */
SNNP_FN SNNP_ATOM_ATTR double snnp_atom(const snnp_model *m, int i, const double *x, const int *species,
                         const int *nbr, const double *shift, int nlisted,
                         double *scr, int *iscr, int mode, const double *gamma,
                         const snnp_field *fld, double *G_out, double *f, double *vir,
                         double *avir, double *rmin, int *jmin, double *grade)
{
    const int ns = m->n_species, Kr = m->K_r, Ka = m->K_a, KG = Kr + Ka;
    const int si = species[i];
    const double rc2 = m->cutoff * m->cutoff;
    const int per = snnp_scratch_per_neighbor(m);
    const double xi0 = x[3*i], xi1 = x[3*i+1], xi2 = x[3*i+2];
    double G[64], dG[64];          /* K_r + K_a <= 64, checked by the front ends */
    double epair = 0.0;
    for (int k = 0; k < KG; ++k) G[k] = 0.0;

    /* scratch layout, slot a: d[3] u[3] r invr phip angular | f[Ka] fp[Ka] alpha[Ka] beta[3][Ka] rhop[Kr]
     * (angular: 1 if the pair reaches any f_k, see snnp_f_reach; triplets skip the others) */
    int nn = 0;
    for (int a = 0; a < nlisted; ++a) {
        const int j = nbr[a];
        double d0 = x[3*j] - xi0, d1 = x[3*j+1] - xi1, d2 = x[3*j+2] - xi2;
        if (shift) { d0 += shift[3*a]; d1 += shift[3*a+1]; d2 += shift[3*a+2]; }
        const double r2 = d0*d0 + d1*d1 + d2*d2;
        if (r2 >= rc2) continue;
        const double r = sqrt(r2);
        if (r < *rmin) { *rmin = r; *jmin = j; }
        const int sj = species[j];
        double *s = scr + (long long)nn * per;
        const double invr = 1.0 / r;
        s[0] = d0; s[1] = d1; s[2] = d2;
        s[3] = d0 * invr; s[4] = d1 * invr; s[5] = d2 * invr;
        s[6] = r; s[7] = invr; s[8] = 0.0; s[9] = 0.0;
        double *fv = s + 10, *fp = fv + Ka, *alpha = fp + Ka, *beta = alpha + Ka, *rhop = beta + 3*Ka;
        iscr[2*nn] = j; iscr[2*nn+1] = sj;
        const double *core = m->core ? m->core + SNNP_CORE_STRIDE * (si*ns + sj) : 0;
        double J;
        const double re = snnp_clamped(core, r, &J);     /* learned splines see r_eff */
        if (core) {
            double dc;
            epair += 0.5 * snnp_core(core, r, &dc);
            s[8] = 0.5 * dc;
        }
        const int pb = m->phi_blk[si*ns + sj];
        if (pb >= 0) {
            double v, dv;
            snnp_spline_eval(m, pb, 1, re, &v, &dv);
            epair += 0.5 * v;
            s[8] += 0.5 * dv * J;
        }
        if (Kr > 0) {
            double rv[64];
            snnp_spline_eval(m, m->rho_blk[sj], Kr, re, rv, rhop);
            for (int k = 0; k < Kr; ++k) G[k] += rv[k];
            if (J != 1.0) for (int k = 0; k < Kr; ++k) rhop[k] *= J;
        }
        if (Ka > 0) {
            const int fb = m->f_blk[sj];
            snnp_spline_eval(m, fb, Ka, re, fv, fp);
            if (J != 1.0) for (int k = 0; k < Ka; ++k) fp[k] *= J;
            for (int k = 0; k < 4 * Ka; ++k) alpha[k] = 0.0;       /* alpha, beta */
            s[9] = re < snnp_f_reach(m, fb, Ka) ? 1.0 : 0.0;
        }
        ++nn;
    }

    /* triplets j < l: A_k = sum f_k(r_ij) f_k(r_il) g_k(cos).  Everything that is constant for
     * a slot is factored out of the pair loop; per slot a and filter k it accumulates
     *   S_a = sum_b f_b g,   B_a = sum_b f_b g' u_b          (in alpha and beta)
     * and afterwards, with dcos/dd_a = (u_b - cos u_a) / r_a and sum_b f_b g' cos = u_a . B_a,
     *   dA/dd_a = (f'_a S_a - f_a (u_a . B_a) / r_a) u_a + (f_a / r_a) B_a,   A = 1/2 sum_a f_a S_a. */
    if (Ka > 0) {
        double lin0[64], lin1[64], zero[64];   /* a g_k continued linearly, as a cubic */
        for (int k = 0; k < Ka; ++k) zero[k] = 0.0;
        for (int a = 1; a < nn; ++a) {
            double *sa = scr + (long long)a * per;
            if (sa[9] == 0.0) continue;                 /* beyond every f_k: no triplet */
            const double *ua = sa + 3;
            const double *fa = sa + 10;
            double *Sa = sa + 10 + 2*Ka, *Ba = Sa + Ka;
            const int *grow = m->g_blk + iscr[2*a+1] * ns;
            for (int b = 0; b < a; ++b) {
                double *sb = scr + (long long)b * per;
                if (sb[9] == 0.0) continue;
                const double *ub = sb + 3;
                const double *fb = sb + 10;
                double *Sb = sb + 10 + 2*Ka, *Bb = Sb + Ka;
                const double ua0 = ua[0], ua1 = ua[1], ua2 = ua[2];
                const double ub0 = ub[0], ub1 = ub[1], ub2 = ub[2];
                const double c = ua0*ub0 + ua1*ub1 + ua2*ub2;
                /* g_k(c), g_k'(c) as in snnp_spline_eval, evaluated inside the filter loop */
                const int gb = grow[iscr[2*b+1]];
                const double invh = m->blk_invh[gb];
                const int n = m->blk_nint[gb];
                const double *q0, *q1, *q2, *q3;
                double u;
                const int iv = snnp_spline_locate(m, gb, c, &u);
                if (iv >= 0 && iv < n) {
                    q0 = m->coef + m->blk_off[gb] + (long long)iv * Ka * 4;
                    q1 = q0 + Ka; q2 = q1 + Ka; q3 = q2 + Ka;
                } else {                              /* outside the knots: linear */
                    const double *e = m->coef + m->blk_off[gb] + (long long)n * Ka * 4;
                    const double h = m->blk_h[gb];
                    const int right = iv == n;
                    for (int k = 0; k < Ka; ++k) {
                        lin0[k] = e[(right ? 2*Ka : 0) + k];
                        lin1[k] = e[(right ? 3*Ka : Ka) + k] * h;
                    }
                    q0 = lin0; q1 = lin1; q2 = zero; q3 = zero;
                }
                SNNP_SIMD
                for (int k = 0; k < Ka; ++k) {      /* lanes independent: same sums as scalar */
                    const double gv = q0[k] + u * (q1[k] + u * (q2[k] + u * q3[k]));
                    const double gd = (q1[k] + u * (2.0 * q2[k] + 3.0 * u * q3[k])) * invh;
                    const double wa = fb[k] * gd, wb = fa[k] * gd;
                    Sa[k] += fb[k] * gv;
                    Sb[k] += fa[k] * gv;
                    Ba[k] += wa * ub0; Ba[Ka+k] += wa * ub1; Ba[2*Ka+k] += wa * ub2;
                    Bb[k] += wb * ua0; Bb[Ka+k] += wb * ua1; Bb[2*Ka+k] += wb * ua2;
                }
            }
        }
        for (int a = 0; a < nn; ++a) {                  /* S, B -> A, alpha, beta */
            double *sa = scr + (long long)a * per;
            if (sa[9] == 0.0) continue;
            const double inva = sa[7], ua0 = sa[3], ua1 = sa[4], ua2 = sa[5];
            const double *fa = sa + 10, *fpa = fa + Ka;
            double *Sa = sa + 10 + 2*Ka, *Ba = Sa + Ka;
            for (int k = 0; k < Ka; ++k) {
                const double q = fa[k] * inva;
                const double T = ua0 * Ba[k] + ua1 * Ba[Ka+k] + ua2 * Ba[2*Ka+k];
                G[Kr + k] += 0.5 * fa[k] * Sa[k];
                Sa[k] = fpa[k] * Sa[k] - q * T;         /* alpha */
                Ba[k] *= q; Ba[Ka+k] *= q; Ba[2*Ka+k] *= q;
            }
        }
    }

    /* embedding */
    double e = epair;
    if (G_out) for (int k = 0; k < KG; ++k) G_out[k] = G[k];
    if (grade) *grade = m->grade_M > 0 ? snnp_grade(m, si, G) : 0.0;
    if (mode == SNNP_DESCRIPTORS) return e;
    if (mode == SNNP_TANGENT) {
        /* Gdot = sum_a dG/dd_a . rdot_a along the field fld, written after G in G_out */
        double *Gdot = G_out + KG;
        for (int k = 0; k < KG; ++k) Gdot[k] = 0.0;
        for (int a = 0; a < nn; ++a) {
            const double *sa = scr + (long long)a * per;
            const double *alpha = sa + 10 + 2*Ka, *beta = alpha + Ka, *rhop = beta + 3*Ka;
            double rd[3];
            snnp_bond_rate(fld, i, iscr[2*a], sa, rd);
            const double par = rd[0]*sa[3] + rd[1]*sa[4] + rd[2]*sa[5];
            for (int k = 0; k < Kr; ++k) Gdot[k] += rhop[k] * par;
            for (int k = 0; k < Ka; ++k)
                Gdot[Kr + k] += alpha[k] * par + beta[k] * rd[0] + beta[Ka+k] * rd[1] + beta[2*Ka+k] * rd[2];
        }
        return e;
    }
    if (mode == SNNP_BACKWARD) {
        for (int k = 0; k < KG; ++k) dG[k] = gamma[k];
    } else {
        e += snnp_embed(m, si, G, dG);
    }
    if (!f && !vir && !avir) return e;

    /* forces: dE/dd_a = (phi'/2 + sum_k dG_Rk rho'_k + sum_k dG_Ak alpha_k) u_a + sum_k dG_Ak beta_k */
    double fi0 = 0.0, fi1 = 0.0, fi2 = 0.0;
    double w[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int a = 0; a < nn; ++a) {
        const double *s = scr + (long long)a * per;
        const double *fv = s + 10, *alpha = fv + 2*Ka, *beta = alpha + Ka, *rhop = beta + 3*Ka;
        double radial = s[8];
        for (int k = 0; k < Kr; ++k) radial += dG[k] * rhop[k];
        double g0 = 0.0, g1 = 0.0, g2 = 0.0;
        for (int k = 0; k < Ka; ++k) {
            const double gk = dG[Kr + k];
            radial += gk * alpha[k];
            g0 += gk * beta[k]; g1 += gk * beta[Ka+k]; g2 += gk * beta[2*Ka+k];
        }
        g0 += radial * s[3]; g1 += radial * s[4]; g2 += radial * s[5];
        fi0 += g0; fi1 += g1; fi2 += g2;
        if (f) {
            const int j = iscr[2*a];
            SNNP_ADD(&f[3*j], -g0); SNNP_ADD(&f[3*j+1], -g1); SNNP_ADD(&f[3*j+2], -g2);
        }
        w[0] += g0 * s[0]; w[1] += g0 * s[1]; w[2] += g0 * s[2];
        w[3] += g1 * s[0]; w[4] += g1 * s[1]; w[5] += g1 * s[2];
        w[6] += g2 * s[0]; w[7] += g2 * s[1]; w[8] += g2 * s[2];
    }
    if (f) { SNNP_ADD(&f[3*i], fi0); SNNP_ADD(&f[3*i+1], fi1); SNNP_ADD(&f[3*i+2], fi2); }
    if (vir) for (int q = 0; q < 9; ++q) vir[q] += w[q];
    if (avir) for (int q = 0; q < 9; ++q) avir[q] = w[q];
    return e;
}

/* Add d(sum_k wv_k s_k(x) + wd_k s'_k(x)) / d(block data) into grad (laid out like coef). */
SNNP_FN void snnp_spline_grad(const snnp_model *m, int b, int K, double x, const double *wv,
                              const double *wd, double *grad)
{
    const double invh = m->blk_invh[b];
    const int n = m->blk_nint[b];
    double *g = grad + m->blk_off[b];
    double u;
    const int i = snnp_spline_locate(m, b, x, &u);
    if (i >= 0 && i < n) {
        const double u2 = u * u;
        double *q = g + (long long)i * K * 4;
        for (int k = 0; k < K; ++k) {
            const double dv = wd[k] * invh;
            SNNP_ADD(&q[k], wv[k]);
            SNNP_ADD(&q[K+k], wv[k] * u + dv);
            SNNP_ADD(&q[2*K+k], wv[k] * u2 + 2.0 * u * dv);
            SNNP_ADD(&q[3*K+k], wv[k] * u2 * u + 3.0 * u2 * dv);
        }
    } else {
        double *e = g + (long long)n * K * 4;
        const int left = i < 0;
        const double dx = left ? x - m->blk_x0[b] : u * m->blk_h[b];
        for (int k = 0; k < K; ++k) {
            SNNP_ADD(&e[(left ? 0 : 2*K) + k], wv[k]);
            SNNP_ADD(&e[(left ? K : 3*K) + k], wv[k] * dx + wd[k]);
        }
    }
}

/* Training gradient of atom i's share of J = kappa E + D E (docs/theory.md) with respect to the
 * spline data of the pair term and the filters, for given gamma = deps/dG_i and
 * Gbar = kappa gamma + H Gdot_i (from the embedding).  Adds into grad (laid out like coef).
 *
 * For the angular filters, A_k = sum_{b<a} f_a f_b g, and its rate along the field is
 * Adot_k = sum (f'_a p_a f_b + f_a f'_b p_b) g + f_a f_b g' cdot, with p_a = u_a . rdot_a.
 * Per slot a and filter k, with h = f' p, F = Gbar_k f + gamma_k h and gf = gamma_k f:
 *   g_k's value weight  Gbar_k f_a f_b + gamma_k (h_a f_b + f_a h_b) = F_a f_b + gf_a h_b,
 *   g_k's slope weight  gamma_k f_a f_b cdot,
 * and f_k at r_a takes value weight P_a + gamma_k Q_a and slope weight gamma_k p_a S_a with
 *   P_a = sum_b F_b g,   Q_a = sum_b f_b g' cdot,   S_a = sum_b f_b g,
 * accumulated over the triplet loop and scattered once per slot afterwards.
 * Below a pair's clamp radius the splines are evaluated at r_eff and their slope weights carry
 * J = dr_eff/dr (snnp_clamped); the core has no parameters.
 * Scratch per neighbour: d[3] u[3] r invr rd[3] p r_eff J | f h F gf P Q S (each [Ka]). */
#define SNNP_GRAD_HEAD 14
SNNP_FN int snnp_grad_scratch_per_neighbor(const snnp_model *m)
{
    return SNNP_GRAD_HEAD + 7 * m->K_a;
}

SNNP_FN void snnp_atom_param_grad(const snnp_model *m, int i, const double *x, const int *species,
                                  const int *nbr, const double *shift, int nlisted,
                                  double *scr, int *iscr, const snnp_field *fld, double kappa,
                                  const double *gamma, const double *Gbar, double *grad)
{
    const int ns = m->n_species, Kr = m->K_r, Ka = m->K_a;
    const int si = species[i];
    const double rc2 = m->cutoff * m->cutoff;
    const int per = snnp_grad_scratch_per_neighbor(m);
    const double *gA = gamma + Kr, *GA = Gbar + Kr;
    double wv[64], wd[64];
    int nn = 0;
    for (int a = 0; a < nlisted; ++a) {
        const int j = nbr[a];
        double d[3] = {x[3*j] - x[3*i], x[3*j+1] - x[3*i+1], x[3*j+2] - x[3*i+2]};
        if (shift) { d[0] += shift[3*a]; d[1] += shift[3*a+1]; d[2] += shift[3*a+2]; }
        const double r2 = d[0]*d[0] + d[1]*d[1] + d[2]*d[2];
        if (r2 >= rc2) continue;
        const double r = sqrt(r2), invr = 1.0 / r;
        const int sj = species[j];
        double *s = scr + (long long)nn * per;
        for (int q = 0; q < 3; ++q) { s[q] = d[q]; s[3+q] = d[q] * invr; }
        s[6] = r; s[7] = invr;
        snnp_bond_rate(fld, i, j, d, s + 8);
        const double par = s[8]*s[3] + s[9]*s[4] + s[10]*s[5];
        s[11] = par;
        iscr[2*nn] = j; iscr[2*nn+1] = sj;
        double J;
        const double re = snnp_clamped(m->core ? m->core + SNNP_CORE_STRIDE * (si*ns + sj) : 0,
                                       r, &J);
        const double parJ = par * J;          /* rate of r_eff */
        s[12] = re; s[13] = J;
        const int pb = m->phi_blk[si*ns + sj];
        if (pb >= 0) {        /* half of the pair term: kappa phi/2 + phi'/2 rdot_par */
            const double hv = 0.5 * kappa, hd = 0.5 * parJ;
            snnp_spline_grad(m, pb, 1, re, &hv, &hd, grad);
        }
        if (Kr > 0) {         /* R_k: Gbar_k rho_k + gamma_k rho'_k rdot_par */
            for (int k = 0; k < Kr; ++k) { wv[k] = Gbar[k]; wd[k] = gamma[k] * parJ; }
            snnp_spline_grad(m, m->rho_blk[sj], Kr, re, wv, wd, grad);
        }
        if (Ka > 0) {
            double *fv = s + SNNP_GRAD_HEAD, *h = fv + Ka, *F = h + Ka, *gf = F + Ka, *acc = gf + Ka;
            snnp_spline_eval(m, m->f_blk[sj], Ka, re, fv, h);
            for (int k = 0; k < Ka; ++k) {
                h[k] *= parJ;
                F[k] = GA[k] * fv[k] + gA[k] * h[k];
                gf[k] = gA[k] * fv[k];
            }
            for (int k = 0; k < 3 * Ka; ++k) acc[k] = 0.0;      /* P, Q, S */
        }
        ++nn;
    }
    if (Ka == 0) return;
    for (int a = 1; a < nn; ++a) {
        double *sa = scr + (long long)a * per;
        const double ua0 = sa[3], ua1 = sa[4], ua2 = sa[5];
        const double *fa = sa + SNNP_GRAD_HEAD, *Fa = fa + 2*Ka, *gfa = Fa + Ka;
        double *Pa = sa + SNNP_GRAD_HEAD + 4*Ka, *Qa = Pa + Ka, *Sa = Qa + Ka;
        const double ia = sa[7], pa = sa[11];
        const double ra0 = sa[8], ra1 = sa[9], ra2 = sa[10];
        const int *grow = m->g_blk + iscr[2*a+1] * ns;
        for (int b = 0; b < a; ++b) {
            double *sb = scr + (long long)b * per;
            const double ub0 = sb[3], ub1 = sb[4], ub2 = sb[5];
            const double *fb = sb + SNNP_GRAD_HEAD, *hb = fb + Ka, *Fb = hb + Ka;
            double *Pb = sb + SNNP_GRAD_HEAD + 4*Ka, *Qb = Pb + Ka, *Sb = Qb + Ka;
            const double c = ua0*ub0 + ua1*ub1 + ua2*ub2;
            const double cdot = (ub0*ra0 + ub1*ra1 + ub2*ra2 - c * pa) * ia
                              + (ua0*sb[8] + ua1*sb[9] + ua2*sb[10] - c * sb[11]) * sb[7];
            const int gb = grow[iscr[2*b+1]];
            const double invh = m->blk_invh[gb];
            const int n = m->blk_nint[gb];
            double u;
            const int iv = snnp_spline_locate(m, gb, c, &u);
            if (iv >= 0 && iv < n) {
                const double *q0 = m->coef + m->blk_off[gb] + (long long)iv * Ka * 4;
                const double *q1 = q0 + Ka, *q2 = q1 + Ka, *q3 = q2 + Ka;
                double *G0 = grad + m->blk_off[gb] + (long long)iv * Ka * 4;
                double *G1 = G0 + Ka, *G2 = G1 + Ka, *G3 = G2 + Ka;
                const double u2 = u * u, u3 = u2 * u;
                SNNP_SIMD
                for (int k = 0; k < Ka; ++k) {   /* lanes independent: same sums as scalar */
                    const double gv = q0[k] + u * (q1[k] + u * (q2[k] + u * q3[k]));
                    const double gd = (q1[k] + u * (2.0 * q2[k] + 3.0 * u * q3[k])) * invh;
                    const double v = Fa[k] * fb[k] + gfa[k] * hb[k];      /* g's value weight */
                    const double sl = gfa[k] * fb[k] * cdot * invh;      /* slope weight / h */
                    SNNP_ADD(&G0[k], v);              /* atomic where the buffer is shared */
                    SNNP_ADD(&G1[k], v * u + sl);
                    SNNP_ADD(&G2[k], v * u2 + 2.0 * u * sl);
                    SNNP_ADD(&G3[k], v * u3 + 3.0 * u2 * sl);
                    const double gdc = gd * cdot;
                    Pa[k] += Fb[k] * gv; Qa[k] += fb[k] * gdc; Sa[k] += fb[k] * gv;
                    Pb[k] += Fa[k] * gv; Qb[k] += fa[k] * gdc; Sb[k] += fa[k] * gv;
                }
            } else {                             /* outside the knots: linear, rare */
                double gv[64], gd[64];
                snnp_spline_eval(m, gb, Ka, c, gv, gd);
                for (int k = 0; k < Ka; ++k) {
                    wv[k] = Fa[k] * fb[k] + gfa[k] * hb[k];
                    wd[k] = gfa[k] * fb[k] * cdot;
                    const double gdc = gd[k] * cdot;
                    Pa[k] += Fb[k] * gv[k]; Qa[k] += fb[k] * gdc; Sa[k] += fb[k] * gv[k];
                    Pb[k] += Fa[k] * gv[k]; Qb[k] += fa[k] * gdc; Sb[k] += fa[k] * gv[k];
                }
                snnp_spline_grad(m, gb, Ka, c, wv, wd, grad);
            }
        }
    }
    for (int a = 0; a < nn; ++a) {
        const double *sa = scr + (long long)a * per;
        const double *P = sa + SNNP_GRAD_HEAD + 4*Ka, *Q = P + Ka, *S = Q + Ka;
        for (int k = 0; k < Ka; ++k) {
            wv[k] = P[k] + gA[k] * Q[k];
            wd[k] = gA[k] * sa[11] * sa[13] * S[k];
        }
        snnp_spline_grad(m, m->f_blk[iscr[2*a+1]], Ka, sa[12], wv, wd, grad);
    }
}

#endif /* SNNP_KERNELS_H */
