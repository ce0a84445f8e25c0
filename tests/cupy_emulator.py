"""A CPU stand-in for the few CuPy calls snnp.backends.gpu makes, so the GPU path's own code runs
in CI, where there is no GPU.

Arrays are NumPy arrays.  ``RawModule`` compiles the CUDA source the GPU path would hand to
NVRTC with the C compiler instead, after a prelude that maps the CUDA words onto C: kernels
become plain functions, every launch runs as one thread (gridDim = blockDim = 1), which the
kernels' grid-stride loops make equivalent to any launch shape, and atomicAdd becomes +=.
What this checks: the CUDA front end (gpu_driver.cuh) compiles as the same C, its kernel
arguments match what gpu.py passes, and gpu.py's chunking, MLP matrix products, neighbour
search and reductions give the CPU path's numbers.  What it cannot check: NVRTC itself, real
concurrency (atomic adds), and speed; the tests marked ``gpu`` do that on a device.
"""
import ctypes
import hashlib
import os
import subprocess
import sys
import sysconfig
import tempfile
import types

import numpy as np

PRELUDE = r"""
#define __global__
#define __device__ static
typedef struct { unsigned x, y, z; } snnp_emu_dim3;
static const snnp_emu_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static const snnp_emu_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define atomicAdd(p, v) (*(p) += (v))
#line 1 "gpu_source"
"""

_SCALARS = {np.int32: ctypes.c_int32, np.int64: ctypes.c_int64, np.float64: ctypes.c_double}


class _Kernel:
    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, grid, block, args, **kwargs):
        c_args = []
        for k, a in enumerate(args):
            if isinstance(a, np.ndarray):
                if not a.flags.c_contiguous:
                    raise TypeError(f"{self.name}: argument {k} is not C-contiguous")
                c_args.append(ctypes.c_void_p(a.ctypes.data))
            elif type(a) in _SCALARS:
                c_args.append(_SCALARS[type(a)](a))
            else:     # CuPy needs explicit numpy scalar types; so does the stand-in
                raise TypeError(f"{self.name}: argument {k} has type {type(a).__name__}; pass "
                                "NumPy arrays or np.int32 / np.int64 / np.float64 scalars")
        self.fn(*c_args)


class RawModule:
    """Compiles ``code`` with the C compiler once per source text (cached in a temp folder)."""

    _cache = {}

    def __init__(self, code, options=(), **kwargs):
        key = hashlib.sha256(code.encode()).hexdigest()[:16]
        lib = self._cache.get(key)
        if lib is None:
            folder = os.path.join(tempfile.gettempdir(), f"snnp-cupy-emulator-{os.getuid()}")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"gpu_{key}.so")
            if not os.path.exists(path):
                cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
                tmp = path + f".{os.getpid()}.tmp"
                proc = subprocess.run(cc + ["-O2", "-ffp-contract=off", "-shared", "-fPIC",
                                            "-x", "c", "-", "-o", tmp, "-lm"],
                                      input=(PRELUDE + code).encode(), capture_output=True)
                if proc.returncode != 0:
                    raise RuntimeError("the GPU source does not compile as C:\n"
                                       + proc.stderr.decode()[-4000:])
                os.replace(tmp, path)
            lib = ctypes.CDLL(path)
            self._cache[key] = lib
        self.lib = lib

    def get_function(self, name):
        fn = getattr(self.lib, name)
        fn.restype = None
        return _Kernel(fn, name)


def module():
    """A stand-in for the ``cupy`` module: NumPy plus RawModule, asnumpy and a fake device."""
    ns = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("_")})
    ns.RawModule = RawModule
    ns.asnumpy = lambda a: np.array(a, copy=True)
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1,
                                    getDeviceProperties=lambda i: {"name": b"CuPy emulator (CPU)"})
    ns.cuda = types.SimpleNamespace(runtime=runtime, Device=lambda i=0: types.SimpleNamespace(id=0))
    return ns


if __name__ == "__main__":   # compile check: python tests/cupy_emulator.py
    from snnp.backends import gpu
    RawModule(gpu.kernel_source())
    print("gpu_driver.cuh compiles as C", file=sys.stderr)
