/* ----------------------------------------------------------------------
   pair_style snnp for LAMMPS: every rung of snnp's model ladder (spline-MEAM, spline-MEAM + NN,
   spline neural-network potential), any number of species, through the shared C kernel
   snnp_atom() of src_cython/kernels.h -- the same code the Python (Cython) front end runs.

   Per owned atom i the kernel computes e_i from its full neighbour list (ghost atoms carry
   their own positions, so no image shifts) and scatters the forces of e_i into i and its
   neighbours, ghosts included; with newton pair on LAMMPS sums ghost forces back to their
   owners.  The global virial comes from virial_fdotr_compute() (sum over owned + ghost atoms
   of x . f), or from the kernel's bond sum when LAMMPS asks for it explicitly.

   The ZBL core of the model (if the file has one) is evaluated inside snnp_atom like every
   other term.  Extrapolation grades (snnp_grade) are computed only on steps that ask for them:
   fix pair sets "extrapolation_flag" (fix ID all pair N snnp extrapolation 1) and reads the
   per-atom vector "extrapolation"; pair_style snnp extrapolation THRESHOLD asks every N steps
   (every N, default 1) and checks the largest grade over all ranks.  On every other step the
   kernel gets grade = nullptr and does no grade work.
------------------------------------------------------------------------- */

#include "pair_snnp.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using namespace LAMMPS_NS;

static const char *const ACTIVATION_NAMES[] = {"tanh", "softplus", "silu", "linear"};

/* ---------------------------------------------------------------------- */

PairSNNP::PairSNNP(LAMMPS *lmp) :
    Pair(lmp), have_model(false), grade_flag(0), grade(nullptr), nmax_grade(0),
    grade_threshold(0.0), grade_stop(0), grade_every(1), grade_offending(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
  std::memset(&model, 0, sizeof(model));
}

/* ---------------------------------------------------------------------- */

PairSNNP::~PairSNNP()
{
  if (copymode) return;
  memory->destroy(grade);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

/* ---------------------------------------------------------------------- */

void PairSNNP::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int inum = list->inum;

  // grades on this step?  (the same answer on every rank: check_grades is collective)
  const bool check_due = grade_threshold > 0.0 && update->ntimestep % grade_every == 0;
  const bool want_grade = grade_flag || check_due;
  if (want_grade) {
    if (model.grade_M <= 0)
      error->all(FLERR,
                 "pair snnp: extrapolation grades were requested (fix pair ... snnp "
                 "extrapolation 1) but model file {} has no grade reference; attach one in "
                 "Python (model.extrapolation = snnp.ExtrapolationGrade.from_data(model, "
                 "training_data)) and write the file again",
                 model_path);
    if (atom->nmax > nmax_grade) {
      memory->destroy(grade);
      nmax_grade = atom->nmax;
      memory->create(grade, nmax_grade, "pair:snnp:grade");
    }
    for (int i = 0; i < nlocal; ++i) grade[i] = 0.0;    // NULL-type atoms: no grade
  }
  if (nall == 0 || inum == 0) {
    if (check_due) check_grades();
    if (vflag_fdotr) virial_fdotr_compute();
    return;
  }

  const double *x = atom->x[0];    // contiguous [nmax][3]
  double *f = atom->f[0];
  const int *type = atom->type;

  if ((int) species.size() < nall) species.resize(atom->nmax > nall ? atom->nmax : nall);
  for (int i = 0; i < nall; ++i) species[i] = type2species[type[i]];

  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  int maxnb = 0;
  for (int ii = 0; ii < inum; ++ii) {
    const int n = numneigh[ilist[ii]];
    if (n > maxnb) maxnb = n;
  }
  const int per = snnp_scratch_per_neighbor(&model);
  if ((int) nbr.size() < maxnb + 1) {
    nbr.resize(maxnb + 1);
    iscr.resize(2 * (size_t) maxnb + 2);
    scr.resize((size_t) per * (maxnb + 1));
  }

  double vir[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  double *virp = vflag_global ? vir : nullptr;
  double w[9];
  double rmin = DBL_MAX;
  int jmin = -1, imin = -1;

  for (int ii = 0; ii < inum; ++ii) {
    const int i = ilist[ii];
    const int si = species[i];
    if (si < 0) continue;    // NULL type (pair hybrid)
    const int *jlist = firstneigh[i];
    const int jnum = numneigh[i];
    int n = 0;
    for (int jj = 0; jj < jnum; ++jj) {
      const int j = jlist[jj] & NEIGHMASK;
      if (species[j] >= 0) nbr[n++] = j;
    }
    const double r0 = rmin;
    double ei = snnp_atom(&model, i, x, species.data(), nbr.data(), nullptr, n, scr.data(),
                          iscr.data(), SNNP_FULL, nullptr, nullptr, nullptr, f, virp,
                          vflag_atom ? w : nullptr, &rmin, &jmin,
                          want_grade ? grade + i : nullptr);
    if (rmin < r0) imin = i;
    ei += tab.e0[si];
    if (eflag_global) eng_vdwl += ei;
    if (eflag_atom) eatom[i] += ei;
    if (vflag_atom) {
      // this atom's share of the virial, -sum over its bonds of dE/dd (x) d, symmetrised
      vatom[i][0] -= w[0];
      vatom[i][1] -= w[4];
      vatom[i][2] -= w[8];
      vatom[i][3] -= 0.5 * (w[1] + w[3]);
      vatom[i][4] -= 0.5 * (w[2] + w[6]);
      vatom[i][5] -= 0.5 * (w[5] + w[7]);
    }
  }

  if (rmin == 0.0)
    error->one(FLERR, "pair snnp: atoms {} and {} sit at the same position", atom->tag[imin],
               atom->tag[jmin]);

  if (check_due) check_grades();

  if (vflag_global) {
    virial[0] -= vir[0];
    virial[1] -= vir[4];
    virial[2] -= vir[8];
    virial[3] -= 0.5 * (vir[1] + vir[3]);
    virial[4] -= 0.5 * (vir[2] + vir[6]);
    virial[5] -= 0.5 * (vir[5] + vir[7]);
  }
  if (vflag_fdotr) virial_fdotr_compute();
}

/* ----------------------------------------------------------------------
   largest grade over all ranks against the threshold: warn (the first offending evaluation of
   a run, then every 100th) or stop
------------------------------------------------------------------------- */

void PairSNNP::check_grades()
{
  struct {
    double value;
    int rank;
  } mine = {-1.0, comm->me}, top;
  tagint tag = 0;
  const int *ilist = list->ilist;
  for (int ii = 0; ii < list->inum; ++ii) {
    const int i = ilist[ii];
    if (species[i] >= 0 && grade[i] > mine.value) {
      mine.value = grade[i];
      tag = atom->tag[i];
    }
  }
  MPI_Allreduce(&mine, &top, 1, MPI_DOUBLE_INT, MPI_MAXLOC, world);
  if (!(top.value > grade_threshold)) return;
  MPI_Bcast(&tag, 1, MPI_LMP_TAGINT, top.rank, world);
  if (grade_stop)
    error->all(FLERR,
               "pair snnp: extrapolation grade {:.6g} of atom {} exceeds the threshold {:.6g} at "
               "step {}: the structure left the model's training data (pair_style snnp "
               "extrapolation {:.6g} stop)",
               top.value, tag, grade_threshold, update->ntimestep, grade_threshold);
  if (grade_offending++ % 100 == 0 && comm->me == 0)
    error->warning(FLERR,
                   "pair snnp: extrapolation grade {:.6g} of atom {} exceeds the threshold {:.6g} "
                   "at step {} ({} evaluation(s) above it in this run; warned on the first and "
                   "every 100th)",
                   top.value, tag, grade_threshold, update->ntimestep, grade_offending);
}

/* ----------------------------------------------------------------------
   fix pair: "extrapolation_flag" (scalar int trigger), "extrapolation" (per-atom vector)
------------------------------------------------------------------------- */

void *PairSNNP::extract(const char *str, int &dim)
{
  dim = 0;
  if (std::strcmp(str, "extrapolation_flag") == 0) return (void *) &grade_flag;
  return nullptr;
}

void *PairSNNP::extract_peratom(const char *str, int &ncol)
{
  if (std::strcmp(str, "extrapolation") == 0) {
    ncol = 0;
    return (void *) grade;
  }
  return nullptr;
}

/* ---------------------------------------------------------------------- */

void PairSNNP::allocate()
{
  allocated = 1;
  const int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 0; i <= n; ++i)
    for (int j = 0; j <= n; ++j) setflag[i][j] = 0;
}

/* ---------------------------------------------------------------------- */

/* ----------------------------------------------------------------------
   pair_style snnp [extrapolation THRESHOLD [warn|stop] [every N]]
------------------------------------------------------------------------- */

void PairSNNP::settings(int narg, char **arg)
{
  grade_threshold = 0.0;
  grade_stop = 0;
  grade_every = 1;
  if (narg == 0) return;
  const char *usage = "pair_style snnp [extrapolation THRESHOLD [warn|stop] [every N]]";
  if (std::strcmp(arg[0], "extrapolation") != 0)
    error->all(FLERR, "Illegal pair_style snnp keyword {}: {}", arg[0], usage);
  if (narg < 2) error->all(FLERR, "Illegal pair_style snnp command: {}", usage);
  grade_threshold = utils::numeric(FLERR, arg[1], false, lmp);
  if (!(grade_threshold > 0.0))
    error->all(FLERR, "pair_style snnp: the extrapolation threshold must be positive, not {}",
               arg[1]);
  for (int iarg = 2; iarg < narg; ++iarg) {
    if (std::strcmp(arg[iarg], "warn") == 0)
      grade_stop = 0;
    else if (std::strcmp(arg[iarg], "stop") == 0)
      grade_stop = 1;
    else if (std::strcmp(arg[iarg], "every") == 0) {
      if (iarg + 1 >= narg) error->all(FLERR, "Illegal pair_style snnp command: {}", usage);
      grade_every = utils::inumeric(FLERR, arg[++iarg], false, lmp);
      if (grade_every < 1)
        error->all(FLERR, "pair_style snnp: extrapolation every N needs N >= 1, not {}",
                   grade_every);
    } else
      error->all(FLERR, "Illegal pair_style snnp keyword {}: {}", arg[iarg], usage);
  }
}

/* ----------------------------------------------------------------------
   pair_coeff * * model.snnp El1 El2 ... (one element or NULL per atom type)
------------------------------------------------------------------------- */

void PairSNNP::coeff(int narg, char **arg)
{
  const int ntypes = atom->ntypes;
  if (narg != 3 + ntypes)
    error->all(FLERR,
               "Incorrect args for pair coefficients: pair_coeff * * model.snnp followed by {} "
               "element name(s) or NULL, one per atom type",
               ntypes);
  if (std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0)
    error->all(FLERR, "Incorrect args for pair coefficients: pair_style snnp needs pair_coeff * *");
  if (!allocated) allocate();

  read_file(arg[2]);

  type2species.assign(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; ++t) {
    const std::string name = arg[2 + t];
    if (name == "NULL") continue;
    int s = -1;
    for (int k = 0; k < (int) tab.species.size(); ++k)
      if (tab.species[k] == name) s = k;
    if (s < 0) {
      std::string known;
      for (const auto &e : tab.species) known += " " + e;
      error->all(FLERR, "pair snnp: element {} (atom type {}) is not in model file {}; it has:{}",
                 name, t, arg[2], known);
    }
    type2species[t] = s;
  }

  int count = 0;
  for (int i = 1; i <= ntypes; ++i)
    for (int j = i; j <= ntypes; ++j) {
      setflag[i][j] = (type2species[i] >= 0 && type2species[j] >= 0) ? 1 : 0;
      count += setflag[i][j];
    }
  if (count == 0) error->all(FLERR, "Incorrect args for pair coefficients: every type is NULL");
}

/* ---------------------------------------------------------------------- */

void PairSNNP::init_style()
{
  if (!have_model) error->all(FLERR, "pair snnp: pair_coeff * * model.snnp ... was not given");
  if (force->newton_pair == 0) error->all(FLERR, "Pair style snnp requires newton pair on");
  if (std::strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "Pair style snnp requires units metal (eV, Angstrom), not {}",
               update->unit_style);
  if (grade_threshold > 0.0 && model.grade_M <= 0)
    error->all(FLERR,
               "pair_style snnp extrapolation {:.6g}: model file {} has no extrapolation grade "
               "reference; attach one in Python (model.extrapolation = "
               "snnp.ExtrapolationGrade.from_data(model, training_data)) and write the file again",
               grade_threshold, model_path);
  grade_offending = 0;    // warnings restart with every run
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

/* ---------------------------------------------------------------------- */

double PairSNNP::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set");
  return tab.cutoff;
}

/* ---------------------------------------------------------------------- */

double PairSNNP::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) species.capacity() * sizeof(int);
  bytes += (double) nbr.capacity() * sizeof(int) + (double) iscr.capacity() * sizeof(int);
  bytes += (double) scr.capacity() * sizeof(double);
  bytes += (double) (tab.coef.size() + tab.mlp_w.size() + tab.grade_ref.size()) * sizeof(double);
  bytes += (double) nmax_grade * sizeof(double);
  return bytes;
}

/* ----------------------------------------------------------------------
   rank 0 reads the file, every rank parses the same text (so errors are collective)
------------------------------------------------------------------------- */

void PairSNNP::read_file(const std::string &path)
{
  std::string text;
  long long len = -1;
  if (comm->me == 0) {
    std::string full = utils::get_potential_file_path(path);
    if (full.empty()) full = path;
    std::ifstream in(full, std::ios::in | std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      text = ss.str();
      len = (long long) text.size();
    }
  }
  MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, world);
  if (len < 0) error->all(FLERR, "pair snnp: cannot open model file {}", path);
  text.resize((size_t) len);
  const long long chunk = 1 << 30;
  for (long long off = 0; off < len; off += chunk) {
    const int n = (int) (len - off < chunk ? len - off : chunk);
    MPI_Bcast(&text[off], n, MPI_CHAR, 0, world);
  }
  parse(text, path);
  bind_model();
  model_path = path;
  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair snnp: read {} ({} species, K_r = {}, K_a = {}, MLP layers {}, "
                   "cutoff {}, {}, {})\n",
                   path, tab.species.size(), tab.K_r, tab.K_a, tab.mlp_nlayers, tab.cutoff,
                   tab.core.empty() ? "no core" : "ZBL core",
                   tab.grade_M > 0 ? fmt::format("extrapolation grade ({} centres)", tab.grade_M)
                                   : std::string("no extrapolation grade"));
}

/* ---------------------------------------------------------------------- */

void PairSNNP::parse(const std::string &text, const std::string &path)
{
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> tok;
  bool header = false;
  int version = -1;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    std::istringstream ls(line);
    if (!header) {
      std::string fmt;
      ls >> fmt >> version;
      if (fmt != "snnp-lammps")
        error->all(FLERR,
                   "pair snnp: {} is not an snnp-lammps file (first line '{}'); write one with "
                   "snnp.io.lammps_snnp.write_kernel_tables(model, path) or "
                   "python -m snnp.io.lammps_snnp MODEL.json OUT",
                   path, line.substr(0, 60));
      // 2: spline coefficients c0[K] c1[K] c2[K] c3[K] per interval; 3: + core, grade records;
      // 4: the grade with its whitening matrix (version 3's per-filter scale is its diagonal)
      if (version < 2 || version > 4)
        error->all(FLERR, "pair snnp: {} has snnp-lammps version {}; this plugin reads 2 to 4 "
                   "(write the file again with this snnp: snnp export --lammps)", path, version);
      header = true;
      continue;
    }
    std::string t;
    while (ls >> t) tok.push_back(t);
  }
  if (!header) error->all(FLERR, "pair snnp: model file {} is empty", path);

  std::map<std::string, std::vector<std::string>> rec;
  size_t pos = 0;
  bool ended = false;
  while (pos < tok.size()) {
    const std::string name = tok[pos];
    if (name == "end") {
      ended = true;
      break;
    }
    if (pos + 1 >= tok.size()) break;
    char *endp = nullptr;
    const long long count = std::strtoll(tok[pos + 1].c_str(), &endp, 10);
    if (*endp != '\0' || count < 0)
      error->all(FLERR, "pair snnp: {}: record {} has a bad count '{}'", path, name, tok[pos + 1]);
    if (pos + 2 + (size_t) count > tok.size())
      error->all(FLERR, "pair snnp: {}: record {} needs {} values; the file ends first", path,
                 name, count);
    rec[name].assign(tok.begin() + pos + 2, tok.begin() + pos + 2 + count);
    pos += 2 + (size_t) count;
  }
  if (!ended) error->all(FLERR, "pair snnp: {}: no 'end' record (file truncated?)", path);

  auto need = [&](const char *name) -> const std::vector<std::string> & {
    auto it = rec.find(name);
    if (it == rec.end()) error->all(FLERR, "pair snnp: {}: record {} is missing", path, name);
    return it->second;
  };
  auto doubles = [&](const char *name) {
    std::vector<double> v;
    for (const auto &s : need(name)) {
      char *endp = nullptr;
      const double d = std::strtod(s.c_str(), &endp);
      if (*endp != '\0' || !std::isfinite(d))
        error->all(FLERR, "pair snnp: {}: record {}: '{}' is not a finite number", path, name, s);
      v.push_back(d);
    }
    return v;
  };
  auto integers = [&](const char *name) {
    std::vector<long long> v;
    for (const auto &s : need(name)) {
      char *endp = nullptr;
      const long long k = std::strtoll(s.c_str(), &endp, 10);
      if (*endp != '\0')
        error->all(FLERR, "pair snnp: {}: record {}: '{}' is not an integer", path, name, s);
      v.push_back(k);
    }
    return v;
  };
  auto ints = [&](const char *name) {
    std::vector<int> v;
    for (long long k : integers(name)) v.push_back((int) k);
    return v;
  };
  auto scalar_int = [&](const char *name) {
    auto v = integers(name);
    if (v.size() != 1) error->all(FLERR, "pair snnp: {}: record {} needs 1 value", path, name);
    return (int) v[0];
  };
  auto expect = [&](const char *name, size_t have, size_t want) {
    if (have != want)
      error->all(FLERR, "pair snnp: {}: record {} has {} values, expected {}", path, name, have,
                 want);
  };

  Tables t;
  t.species = need("species");
  const int ns = (int) t.species.size();
  if (ns < 1) error->all(FLERR, "pair snnp: {}: no species", path);
  auto cut = doubles("cutoff");
  expect("cutoff", cut.size(), 1);
  t.cutoff = cut[0];
  if (!(t.cutoff > 0.0)) error->all(FLERR, "pair snnp: {}: cutoff must be positive", path);
  t.K_r = scalar_int("K_r");
  t.K_a = scalar_int("K_a");
  const int KG = t.K_r + t.K_a;
  if (t.K_r < 0 || t.K_a < 0 || KG > 64)
    error->all(FLERR, "pair snnp: {}: need 0 <= K_r, K_a and K_r + K_a <= 64", path);

  t.e0 = doubles("e0");
  expect("e0", t.e0.size(), ns);
  t.blk_x0 = doubles("blk_x0");
  t.blk_h = doubles("blk_h");
  t.blk_nint = ints("blk_nint");
  t.blk_off = integers("blk_off");
  t.coef = doubles("coef");
  const size_t nblk = t.blk_x0.size();
  expect("blk_h", t.blk_h.size(), nblk);
  expect("blk_nint", t.blk_nint.size(), nblk);
  expect("blk_off", t.blk_off.size(), nblk);
  for (size_t b = 0; b < nblk; ++b) {
    if (!(t.blk_h[b] > 0.0) || t.blk_nint[b] < 1 || t.blk_off[b] < 0)
      error->all(FLERR, "pair snnp: {}: spline block {} is malformed", path, b);
    t.blk_invh.push_back(1.0 / t.blk_h[b]);
  }
  t.phi_blk = ints("phi_blk");
  t.rho_blk = ints("rho_blk");
  t.f_blk = ints("f_blk");
  t.g_blk = ints("g_blk");
  t.U_blk = ints("U_blk");
  t.U0 = doubles("U0");
  expect("phi_blk", t.phi_blk.size(), (size_t) ns * ns);
  expect("g_blk", t.g_blk.size(), (size_t) ns * ns);
  expect("rho_blk", t.rho_blk.size(), ns);
  expect("f_blk", t.f_blk.size(), ns);
  expect("U_blk", t.U_blk.size(), ns);
  expect("U0", t.U0.size(), ns);

  // every block a table points to must hold K splines inside coef
  auto check = [&](const char *name, int b, int K, bool required) {
    if (b < 0) {
      if (required)
        error->all(FLERR, "pair snnp: {}: {} has no block where one is needed", path, name);
      return;
    }
    if ((size_t) b >= nblk)
      error->all(FLERR, "pair snnp: {}: {} refers to block {} of {}", path, name, b, nblk);
    const long long end = t.blk_off[b] + (long long) (t.blk_nint[b] + 1) * K * 4;
    if (end > (long long) t.coef.size())
      error->all(FLERR, "pair snnp: {}: block {} ({}) runs past the coefficients", path, b, name);
  };
  for (int a = 0; a < ns; ++a) {
    check("rho_blk", t.rho_blk[a], t.K_r, t.K_r > 0);
    check("f_blk", t.f_blk[a], t.K_a, t.K_a > 0);
    check("U_blk", t.U_blk[a], 1, false);
    if (t.U_blk[a] >= 0 && t.K_r < 1)
      error->all(FLERR, "pair snnp: {}: a spline embedding U needs a radial filter", path);
    for (int c = 0; c < ns; ++c) {
      check("phi_blk", t.phi_blk[a * ns + c], 1, false);
      check("g_blk", t.g_blk[a * ns + c], t.K_a, t.K_a > 0);
    }
  }

  t.mlp_nlayers = scalar_int("mlp_nlayers");
  const auto &act = need("mlp_activation");
  expect("mlp_activation", act.size(), 1);
  t.mlp_act = -1;
  for (int k = 0; k < 4; ++k)
    if (act[0] == ACTIVATION_NAMES[k]) t.mlp_act = k;
  if (t.mlp_act < 0) error->all(FLERR, "pair snnp: {}: unknown activation {}", path, act[0]);
  const int L = t.mlp_nlayers;
  if (L < 0 || L > SNNP_MLP_MAX_LAYERS)
    error->all(FLERR, "pair snnp: {}: MLP has {} layers; at most {}", path, L,
               SNNP_MLP_MAX_LAYERS);
  if (L > 0) {
    t.mlp_width = ints("mlp_widths");
    t.mlp_off = integers("mlp_offsets");
    t.mlp_w = doubles("mlp_weights");
    t.mlp_mean = doubles("mlp_mean");
    t.mlp_inv_scale = doubles("mlp_inv_scale");
    t.mlp_zero = doubles("mlp_zero");
    expect("mlp_widths", t.mlp_width.size(), (size_t) L + 1);
    if (t.mlp_width[0] != KG || t.mlp_width[L] != 1)
      error->all(FLERR, "pair snnp: {}: MLP widths must start with K_r + K_a and end with 1", path);
    long long size = 0;
    for (int l = 0; l < L; ++l) {
      if (t.mlp_width[l + 1] < 1 || t.mlp_width[l + 1] > SNNP_MLP_MAX_WIDTH ||
          t.mlp_width[l] > SNNP_MLP_MAX_WIDTH)
        error->all(FLERR, "pair snnp: {}: MLP layer widths must be 1..{}", path,
                   SNNP_MLP_MAX_WIDTH);
      size += (long long) t.mlp_width[l + 1] * (t.mlp_width[l] + 1);
    }
    expect("mlp_offsets", t.mlp_off.size(), ns);
    for (int a = 0; a < ns; ++a)
      if (t.mlp_off[a] < 0 || t.mlp_off[a] + size > (long long) t.mlp_w.size())
        error->all(FLERR, "pair snnp: {}: MLP weights of species {} run past mlp_weights", path,
                   a);
    expect("mlp_mean", t.mlp_mean.size(), (size_t) ns * KG);
    expect("mlp_inv_scale", t.mlp_inv_scale.size(), (size_t) ns * KG);
    expect("mlp_zero", t.mlp_zero.size(), ns);
  }

  // optional (version 3): the short-range core and the extrapolation grade reference
  if (version < 3 && (rec.count("core") || rec.count("grade_M") || rec.count("grade_ref")))
    error->all(FLERR, "pair snnp: {}: version {} has no core or grade records", path, version);
  if (rec.count("core")) {
    t.core = doubles("core");
    expect("core", t.core.size(), (size_t) ns * ns * SNNP_CORE_STRIDE);
    for (int p = 0; p < ns * ns; ++p) {
      const double *c = t.core.data() + (size_t) p * SNNP_CORE_STRIDE;
      if (c[0] != 0.0 && !(c[0] > 0.0 && c[1] > 0.0 && 0.0 < c[2] && c[2] < c[3]))
        error->all(FLERR, "pair snnp: {}: core of species pair {}-{} is malformed (needs "
                   "Z_a Z_b > 0, 1/a > 0, 0 < r_in < r_out)", path, t.species[p / ns],
                   t.species[p % ns]);
      if (c[9] != 0.0 && !(c[9] > 0.0 && c[10] > 0.0))
        error->all(FLERR, "pair snnp: {}: clamp of species pair {}-{} needs r_c > 0 and w > 0",
                   path, t.species[p / ns], t.species[p % ns]);
    }
  }
  if (rec.count("grade_M") || rec.count("grade_ref")) {
    t.grade_M = scalar_int("grade_M");
    t.grade_ref = doubles("grade_ref");
    if (t.grade_M < 1 || KG < 1)
      error->all(FLERR, "pair snnp: {}: an extrapolation grade needs grade_M >= 1 and a filter",
                 path);
    const size_t M = (size_t) t.grade_M, K = (size_t) KG;
    if (version == 3) {     // mean[K] inv_scale[K] inv_radius centres -> mean[K] W[K][K] ...
      expect("grade_ref", t.grade_ref.size(), (size_t) ns * (2 * K + 1 + M * K));
      std::vector<double> v4;
      for (int a = 0; a < ns; ++a) {
        const double *p = t.grade_ref.data() + (size_t) a * (2 * K + 1 + M * K);
        v4.insert(v4.end(), p, p + K);
        for (size_t r = 0; r < K; ++r)
          for (size_t c = 0; c < K; ++c) v4.push_back(r == c ? p[K + r] : 0.0);
        v4.insert(v4.end(), p + 2 * K, p + 2 * K + 1 + M * K);
      }
      t.grade_ref = std::move(v4);
    }
    expect("grade_ref", t.grade_ref.size(), (size_t) ns * (K * (K + 1) + 1 + M * K));
  }
  tab = std::move(t);
}

/* ----------------------------------------------------------------------
   point the kernel's model struct at the tables (never at empty storage)
------------------------------------------------------------------------- */

void PairSNNP::bind_model()
{
  Tables &t = tab;
  const int ns = (int) t.species.size();
  if (t.blk_x0.empty()) {
    t.blk_x0.push_back(0.0);
    t.blk_h.push_back(1.0);
    t.blk_invh.push_back(1.0);
    t.blk_nint.push_back(1);
    t.blk_off.push_back(0);
  }
  if (t.coef.empty()) t.coef.push_back(0.0);
  if (t.mlp_nlayers == 0) {
    t.mlp_width.assign(2, 0);
    t.mlp_off.assign(ns, 0);
    t.mlp_w.assign(1, 0.0);
    t.mlp_mean.assign((size_t) ns * (t.K_r + t.K_a) + 1, 0.0);
    t.mlp_inv_scale.assign((size_t) ns * (t.K_r + t.K_a) + 1, 1.0);
    t.mlp_zero.assign(ns, 0.0);
  }
  std::memset(&model, 0, sizeof(model));
  model.n_species = ns;
  model.K_r = t.K_r;
  model.K_a = t.K_a;
  model.cutoff = t.cutoff;
  model.blk_x0 = t.blk_x0.data();
  model.blk_h = t.blk_h.data();
  model.blk_invh = t.blk_invh.data();
  model.blk_nint = t.blk_nint.data();
  model.blk_off = t.blk_off.data();
  model.coef = t.coef.data();
  model.phi_blk = t.phi_blk.data();
  model.rho_blk = t.rho_blk.data();
  model.f_blk = t.f_blk.data();
  model.g_blk = t.g_blk.data();
  model.U_blk = t.U_blk.data();
  model.U0 = t.U0.data();
  model.mlp_nlayers = t.mlp_nlayers;
  model.mlp_act = t.mlp_act;
  model.mlp_width = t.mlp_width.data();
  model.mlp_off = t.mlp_off.data();
  model.mlp_w = t.mlp_w.data();
  model.mlp_mean = t.mlp_mean.data();
  model.mlp_inv_scale = t.mlp_inv_scale.data();
  model.mlp_zero = t.mlp_zero.data();
  model.core = t.core.empty() ? nullptr : t.core.data();
  model.grade_M = t.grade_M;
  model.grade_ref = t.grade_ref.empty() ? nullptr : t.grade_ref.data();
  have_model = true;
  // scratch is sized per neighbour slot, which depends on K_a, K_r: rebuild on next compute
  nbr.clear();
  scr.clear();
  iscr.clear();
}
