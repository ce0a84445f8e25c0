/* Cell-list neighbour search for periodic, non-periodic and mixed boundaries.
 *
 * The Python side (snnp/neighbors.py) decides the geometry: an effective cell (non-periodic
 * directions completed to a basis), each atom's fractional position already wrapped into
 * [0, 1) along periodic directions, the integer image it was wrapped by, its bin, the number of
 * bins nb[d] and the stencil reach reach[d] (> 1 when the cell is thinner than the cutoff, so one
 * atom meets several periodic images of another).  Bins are at least `cutoff / reach` thick
 * measured along the plane normals, so a stencil of +-reach bins finds every pair.
 *
 * Output: a full list (i -> j and j -> i), with integer image shifts S such that
 * r_ij = x_j - x_i + S . cell  in the caller's original (unwrapped) positions.
 */
#ifndef SNNP_NEIGHBORS_H
#define SNNP_NEIGHBORS_H

#ifndef SNNP_FN
#define SNNP_FN static inline
#endif

typedef struct {
    int natoms;
    const double *xw;        /* wrapped Cartesian positions [3N] */
    const int *image;        /* [3N] integer image each atom was wrapped by: x = xw + image . cell */
    const int *bin;          /* [3N] bin index per direction */
    const double *cell;      /* [9] effective cell, rows are vectors */
    const int *pbc;          /* [3] */
    const int *nb;           /* [3] bins per direction */
    const int *reach;        /* [3] stencil reach per direction */
    const long long *bin_start; /* [nbins+1] */
    const int *bin_atoms;    /* atoms sorted by bin */
    double cutoff;
} snnp_cells;

/* Visit the neighbours of atom i. If out_j is NULL, only count. Returns the count.
 * out_shift gets the integer image shift, out_vec the same shift in Cartesian coordinates. */
SNNP_FN long long snnp_cells_visit(const snnp_cells *c, int i, int *out_j, int *out_shift,
                                  double *out_vec)
{
    const double rc2 = c->cutoff * c->cutoff;
    const double *C = c->cell;
    const int b0 = c->bin[3*i], b1 = c->bin[3*i+1], b2 = c->bin[3*i+2];
    const double xi0 = c->xw[3*i], xi1 = c->xw[3*i+1], xi2 = c->xw[3*i+2];
    long long count = 0;
    for (int da = -c->reach[0]; da <= c->reach[0]; ++da) {
        int ba = b0 + da, sa = 0;
        if (c->pbc[0]) { sa = (ba >= 0) ? ba / c->nb[0] : -((-ba + c->nb[0] - 1) / c->nb[0]); ba -= sa * c->nb[0]; }
        else if (ba < 0 || ba >= c->nb[0]) continue;
        for (int db = -c->reach[1]; db <= c->reach[1]; ++db) {
            int bb = b1 + db, sb = 0;
            if (c->pbc[1]) { sb = (bb >= 0) ? bb / c->nb[1] : -((-bb + c->nb[1] - 1) / c->nb[1]); bb -= sb * c->nb[1]; }
            else if (bb < 0 || bb >= c->nb[1]) continue;
            for (int dc = -c->reach[2]; dc <= c->reach[2]; ++dc) {
                int bc = b2 + dc, sc = 0;
                if (c->pbc[2]) { sc = (bc >= 0) ? bc / c->nb[2] : -((-bc + c->nb[2] - 1) / c->nb[2]); bc -= sc * c->nb[2]; }
                else if (bc < 0 || bc >= c->nb[2]) continue;
                const double s0 = sa * C[0] + sb * C[3] + sc * C[6];
                const double s1 = sa * C[1] + sb * C[4] + sc * C[7];
                const double s2 = sa * C[2] + sb * C[5] + sc * C[8];
                const long long bin = ((long long)ba * c->nb[1] + bb) * c->nb[2] + bc;
                for (long long q = c->bin_start[bin]; q < c->bin_start[bin + 1]; ++q) {
                    const int j = c->bin_atoms[q];
                    if (j == i && sa == 0 && sb == 0 && sc == 0) continue;
                    const double d0 = c->xw[3*j] - xi0 + s0;
                    const double d1 = c->xw[3*j+1] - xi1 + s1;
                    const double d2 = c->xw[3*j+2] - xi2 + s2;
                    if (d0*d0 + d1*d1 + d2*d2 >= rc2) continue;
                    if (out_j) {
                        out_j[count] = j;
                        /* back to the caller's unwrapped positions */
                        const int t0 = sa - c->image[3*j]   + c->image[3*i];
                        const int t1 = sb - c->image[3*j+1] + c->image[3*i+1];
                        const int t2 = sc - c->image[3*j+2] + c->image[3*i+2];
                        out_shift[3*count] = t0; out_shift[3*count+1] = t1; out_shift[3*count+2] = t2;
                        out_vec[3*count]   = t0 * C[0] + t1 * C[3] + t2 * C[6];
                        out_vec[3*count+1] = t0 * C[1] + t1 * C[4] + t2 * C[7];
                        out_vec[3*count+2] = t0 * C[2] + t1 * C[5] + t2 * C[8];
                    }
                    ++count;
                }
            }
        }
    }
    return count;
}

#endif
