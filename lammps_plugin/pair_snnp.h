/* -*- c++ -*- ----------------------------------------------------------
   pair_style snnp: spline-MEAM (rung 0) up to spline neural-network potentials (rung 2),
   evaluated with snnp's shared C kernel (src_cython/kernels.h).

   Usage:
     pair_style snnp
     pair_coeff * * model.snnp El1 El2 ...

   model.snnp is the kernel-table file written by snnp.io.lammps_snnp.write_kernel_tables
   (format "snnp-lammps 1").  One element name (or NULL) per LAMMPS atom type.
------------------------------------------------------------------------- */

#ifdef PAIR_CLASS
// clang-format off
PairStyle(snnp,PairSNNP);
// clang-format on
#else

#ifndef LMP_PAIR_SNNP_H
#define LMP_PAIR_SNNP_H

#include "pair.h"

#include <string>
#include <vector>

#include "kernels.h"    // snnp shared kernel (src_cython/)

namespace LAMMPS_NS {

class PairSNNP : public Pair {
 public:
  PairSNNP(class LAMMPS *);
  ~PairSNNP() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  double memory_usage() override;

 protected:
  // the model as read from the file; snnp_model points into these vectors
  struct Tables {
    std::vector<std::string> species;
    double cutoff = 0.0;
    int K_r = 0, K_a = 0;
    std::vector<double> e0, blk_x0, blk_h, blk_invh, coef, U0;
    std::vector<int> blk_nint, phi_blk, rho_blk, f_blk, g_blk, U_blk;
    std::vector<long long> blk_off;
    int mlp_nlayers = 0, mlp_act = 0;
    std::vector<int> mlp_width;
    std::vector<long long> mlp_off;
    std::vector<double> mlp_w, mlp_mean, mlp_inv_scale, mlp_zero;
  };
  Tables tab;
  snnp_model model;
  bool have_model;

  std::vector<int> type2species;    // [ntypes + 1], -1 for NULL
  std::vector<int> species;         // per owned + ghost atom
  std::vector<int> nbr;             // masked neighbour indices of one atom
  std::vector<double> scr;          // kernel scratch, per neighbour slot
  std::vector<int> iscr;

  void allocate();
  void read_file(const std::string &);
  void parse(const std::string &text, const std::string &path);
  void bind_model();
};

}    // namespace LAMMPS_NS

#endif
#endif
