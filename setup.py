"""Build the compiled kernels.

OpenMP is used when the compiler accepts it; otherwise the same sources build serially
(the pragmas are ignored) and ``snnp.show_config()`` says so.  Set ``SNNP_NO_OPENMP=1``
to force the serial build, ``SNNP_NATIVE=1`` to add ``-march=native``.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py


def _compiler_accepts(flags):
    """Try to compile and link a tiny OpenMP program with the default C compiler."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as fh:
            fh.write(src)
        cmd = cc + flags + [path, "-o", os.path.join(tmp, "probe")]
        return subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _openmp_flags():
    if os.environ.get("SNNP_NO_OPENMP"):
        return [], [], False
    if sys.platform == "win32":
        return ["/openmp"], [], True
    for cflags, lflags in ((["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])):
        if _compiler_accepts(cflags + lflags):
            return cflags, lflags, True
    return [], [], False


omp_c, omp_l, has_omp = _openmp_flags()
if not has_omp:
    print("snnp: building WITHOUT OpenMP (serial kernels)", file=sys.stderr)
opt = ["/O2"] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-Wno-unknown-pragmas"]
if os.environ.get("SNNP_NATIVE"):
    opt.append("-march=native")

ext = Extension(
    "snnp._kernels",
    sources=["src_cython/_kernels.pyx"],
    include_dirs=["src_cython", np.get_include()],
    extra_compile_args=opt + omp_c,
    extra_link_args=omp_l,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                   ("SNNP_HAVE_OPENMP", "1" if has_omp else "0"),
                   ("SNNP_CPU_CLONES", "1")],
    depends=["src_cython/kernels.h", "src_cython/neighbors.h", "src_cython/cpu_driver.h"],
)

#: the C sources the GPU path compiles at run time (snnp/backends/gpu.py), shipped with the package
KERNEL_SOURCES = ("gpu_driver.cuh", "kernels.h", "neighbors.h")


class build_py_with_kernels(build_py):
    """Copy the shared kernel sources into the package (snnp/backends/csrc/): CuPy compiles
    them on the user's GPU, so the GPU path runs the very source the CPU extension was built from."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "snnp", "backends", "csrc")
        os.makedirs(dest, exist_ok=True)
        for name in KERNEL_SOURCES:
            shutil.copy(os.path.join("src_cython", name), dest)


setup(ext_modules=cythonize([ext], language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False}),
      cmdclass={"build_py": build_py_with_kernels})
