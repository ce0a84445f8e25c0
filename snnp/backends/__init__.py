"""Where the kernels run: ``device="cpu"`` (the compiled C kernels through Cython, OpenMP over
atoms) or ``device="gpu"`` (the same C source compiled by CuPy, ``snnp.backends.gpu``).

Both take the same model tables and return the same arrays; ``Model.compute`` and the ASE
calculator choose with one ``device`` argument.
"""
from ..neighbors import NeighborList

__all__ = ["DEVICES", "check_device", "new_neighbor_list"]

DEVICES = ("cpu", "gpu")


def check_device(device):
    """Raise ValueError unless ``device`` is "cpu" or "gpu"; for "gpu", raise
    ``snnp.backends.gpu.GPUUnavailable`` when CuPy or a CUDA device is missing."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "gpu":
        from . import gpu
        gpu._cupy()


def new_neighbor_list(cutoff, skin=0.0, device="cpu"):
    """A neighbour list with a Verlet skin whose search runs on ``device``."""
    check_device(device)
    if device == "gpu":
        from . import gpu
        return gpu.NeighborList(cutoff, skin)
    return NeighborList(cutoff, skin)
