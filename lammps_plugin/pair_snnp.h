/* -*- c++ -*- ----------------------------------------------------------
   pair_style snnp: spline-MEAM (rung 0) up to spline neural-network potentials (rung 2),
   evaluated with snnp's shared C kernel (src_cython/kernels.h).

   Usage:
     pair_style snnp [extrapolation THRESHOLD [warn|stop] [every N]]
     pair_coeff * * model.snnp El1 El2 ...
     fix ID all pair N snnp extrapolation 1      # per-atom extrapolation grades every N steps

   model.snnp is the kernel-table file written by snnp.io.lammps_snnp.write_kernel_tables
   (format "snnp-lammps 3"; version 2 is read too).  One element name (or NULL) per LAMMPS atom
   type.  The model's ZBL core, if it has one, is part of the file.  Extrapolation grades
   (docs/lammps.md) need a grade reference in the file.
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
  void *extract(const char *, int &) override;
  void *extract_peratom(const char *, int &) override;

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
    std::vector<double> core;         // [ns * ns * SNNP_CORE_STRIDE] or empty (no core)
    int grade_M = 0;                  // extrapolation grade centres per species, 0 = none
    std::vector<double> grade_ref;    // kernels.h snnp_grade layout, or empty
  };
  Tables tab;
  snnp_model model;
  bool have_model;
  std::string model_path;

  // extrapolation grade: computed on a step when fix pair sets grade_flag
  // ("extrapolation_flag") or when the threshold check is due (every grade_every steps)
  int grade_flag;                   // trigger, set and cleared by fix pair
  double *grade;                    // [nmax_grade] per owned atom, the last computed grades
  int nmax_grade;
  double grade_threshold;           // <= 0: no check
  int grade_stop;                   // 1: error->all above the threshold, 0: warn
  int grade_every;                  // check every this many steps
  bigint grade_offending;           // evaluations above the threshold in this run
  void check_grades();

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
