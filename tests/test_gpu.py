"""The GPU path (snnp.backends.gpu) against the CPU path, for every rung, 1-3 species, small and
large cells.

Each comparison runs twice: on "cuda" (real CuPy and a CUDA device; marked ``gpu``, skipped with
the reason where there is none) and on "emulated" (tests/cupy_emulator.py: the same CUDA source
compiled as C, run on the CPU), so the GPU path's code is exercised in CI too.
"""
import sys

import numpy as np
import pytest
from ase.build import bulk

import snnp
from snnp.backends import gpu
from cupy_emulator import module as emulated_cupy
from models_for_tests import MODELS, random_ladder_model

TOL = 1e-10


def _cuda_reason():
    ok, why = gpu.available()
    return None if ok else why


@pytest.fixture(params=["emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request, monkeypatch):
    """Yields the backend name after pointing snnp.backends.gpu at real or emulated CuPy."""
    if request.param == "cuda":
        reason = _cuda_reason()
        if reason:
            pytest.skip(f"no usable GPU: {reason}")
    else:
        monkeypatch.setattr(gpu, "_cp", emulated_cupy())
        monkeypatch.setattr(gpu, "_modules", {})
    yield request.param


def _compare(model, atoms, tol=TOL):
    props = ("energy", "energies", "forces", "stress", "stresses")
    cpu = model.compute(atoms, props)
    model._cached_device = None
    dev = model.compute(atoms, props, device="gpu")
    scale = max(1.0, abs(cpu["energy"]))
    assert abs(dev["energy"] - cpu["energy"]) <= tol * scale
    for key in ("energies", "forces", "stress", "stresses"):
        ref = np.asarray(cpu[key])
        err = np.max(np.abs(np.asarray(dev[key]) - ref))
        assert err <= tol * max(1.0, np.max(np.abs(ref))), (key, err)
    return cpu, dev


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gpu_matches_cpu_small_cells(device, name):
    make_model, make_atoms = MODELS[name]
    _compare(make_model(), make_atoms())


def _large(symbols, reps, seed):
    atoms = bulk("Cu", "fcc", a=3.9, cubic=True).repeat(reps)
    rng = np.random.default_rng(seed)
    atoms.set_chemical_symbols(rng.choice(symbols, size=len(atoms)))
    atoms.rattle(0.07, seed=seed)
    return atoms


@pytest.mark.parametrize("name,symbols", [("synthetic_1", ["Cu"]), ("smeam_nn_2", ["Cu", "Ag"]),
                                          ("snnp_1", ["Cu"]), ("snnp_2", ["Cu", "Ag"])])
def test_gpu_matches_cpu_large_cells_in_chunks(device, monkeypatch, name, symbols):
    """A 2048-atom cell, with scratch so small that the atoms go through in several chunks."""
    atoms = _large(symbols, (8, 8, 8), 5)
    model = MODELS[name][0]()
    if device == "emulated":
        monkeypatch.setattr(gpu, "SCRATCH_BYTES", 300 * 1024)
    _compare(model, atoms)


def test_gpu_matches_cpu_on_a_surface_and_a_molecule(device):
    """Non-periodic directions: a slab with vacuum, and a cluster with no cell at all."""
    model = random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 2, seed=21)
    slab = _large(["Cu", "Ag"], (3, 3, 2), 6)
    slab.center(vacuum=6.0, axis=2)
    slab.pbc = (True, True, False)
    props = ("energy", "forces")
    for atoms in (slab, slab[:20]):
        if atoms is not slab:
            atoms.pbc = False
            atoms.cell = np.zeros((3, 3))
            props = ("energy", "energies", "forces")
        cpu = model.compute(atoms, props)
        dev = model.compute(atoms, props, device="gpu")
        assert abs(dev["energy"] - cpu["energy"]) <= TOL * max(1, abs(cpu["energy"]))
        assert np.max(np.abs(dev["forces"] - cpu["forces"])) <= TOL * max(1, np.abs(cpu["forces"]).max())


def test_gpu_neighbor_list_matches_cpu(device):
    atoms = _large(["Cu"], (4, 3, 2), 3)
    atoms.set_cell(atoms.cell.array @ np.array([[1, 0.1, 0], [0, 1, 0.05], [0, 0, 1]]),
                   scale_atoms=True)
    host = snnp.NeighborList(5.0, skin=0.5)
    dev = snnp.new_neighbor_list(5.0, skin=0.5, device="gpu")
    for nl in (host, dev):
        nl.update(atoms.positions, atoms.cell.array, atoms.pbc)
    np.testing.assert_array_equal(dev.offsets, host.offsets)
    for i in range(len(atoms)):   # the same neighbours and shifts, in any order
        sl = slice(host.offsets[i], host.offsets[i + 1])
        a = sorted(zip(host.neighbors[sl], map(tuple, host.shifts[sl])))
        b = sorted(zip(dev.neighbors[sl], map(tuple, dev.shifts[sl])))
        assert a == b
    np.testing.assert_allclose(dev.shift_vectors, dev.shifts @ atoms.cell.array, atol=1e-12)
    # the Verlet skin: a small move keeps the list, a large one rebuilds it
    assert not dev.update(atoms.positions + 0.1, atoms.cell.array, atoms.pbc)
    assert dev.update(atoms.positions + 0.3, atoms.cell.array, atoms.pbc)


def test_gpu_calculator_runs_md_like_the_cpu(device):
    from ase.md.verlet import VelocityVerlet
    model = MODELS["snnp_2"][0]()
    model.check_short_distances = False     # a random model: atoms may wander close
    trajs = {}
    for where in ("cpu", "gpu"):
        atoms = _large(["Cu", "Ag"], (3, 3, 3), 8)
        atoms.set_momenta(0.3 * np.random.default_rng(0).normal(size=(len(atoms), 3)))
        atoms.calc = model.calculator(device=where, skin=0.5)
        VelocityVerlet(atoms, timestep=1.0).run(5)
        trajs[where] = (atoms.get_positions(), atoms.get_potential_energy(), atoms.get_stress())
    np.testing.assert_allclose(trajs["gpu"][0], trajs["cpu"][0], rtol=0, atol=1e-9)
    assert abs(trajs["gpu"][1] - trajs["cpu"][1]) <= 1e-9 * abs(trajs["cpu"][1])
    np.testing.assert_allclose(trajs["gpu"][2], trajs["cpu"][2], rtol=0, atol=1e-10)


def test_gpu_names_atoms_that_are_too_close(device):
    model = MODELS["snnp_1"][0]()
    atoms = _large(["Cu"], (2, 2, 2), 2)
    atoms.positions[5] = atoms.positions[3] + [0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"atoms (3 and 5|5 and 3) are 0.5 A apart"):
        model.compute(atoms, device="gpu")


# -- without a GPU ----------------------------------------------------------------------------

def test_kernel_source_is_complete():
    """The installed package carries the kernel sources, pasted into one CUDA text."""
    src = gpu.kernel_source()
    assert "double snnp_atom(" in src and "snnp_cells_visit(" in src
    assert "snnp_gpu_atoms(" in src
    assert '#include "' not in src


def test_asking_for_the_gpu_without_cupy_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(gpu, "_cp", None)
    monkeypatch.setitem(sys.modules, "cupy", None)      # import cupy -> ImportError
    model = MODELS["synthetic_1"][0]()
    atoms = MODELS["synthetic_1"][1]()
    with pytest.raises(gpu.GPUUnavailable, match=r"needs CuPy.*snnp\[gpu\]"):
        model.compute(atoms, device="gpu")
    with pytest.raises(gpu.GPUUnavailable, match="needs CuPy"):
        model.calculator(device="gpu")
    assert gpu.available()[0] is False


def test_cupy_without_a_device_is_named(monkeypatch):
    fake = emulated_cupy()

    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    fake.cuda.runtime.getDeviceCount = no_device
    monkeypatch.setattr(gpu, "_cp", None)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(gpu.GPUUnavailable, match="no usable CUDA device.*no CUDA-capable"):
        snnp.new_neighbor_list(5.0, device="gpu")


def test_unknown_device_is_refused():
    model = MODELS["synthetic_1"][0]()
    with pytest.raises(ValueError, match="device must be one of"):
        model.compute(MODELS["synthetic_1"][1](), device="tpu")


def test_cli_bench_on_the_gpu_without_cupy_is_one_line(monkeypatch, capsys):
    from snnp.cli import main
    monkeypatch.setattr(gpu, "_cp", None)
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["bench", "Si/smeam", "--atoms", "64", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnp bench: error: device='gpu' needs CuPy") and "Traceback" not in err


def test_cli_bench_runs_on_the_emulated_gpu(monkeypatch, capsys):
    from snnp.cli import main
    monkeypatch.setattr(gpu, "_cp", emulated_cupy())
    monkeypatch.setattr(gpu, "_modules", {})
    assert main(["bench", "Si/smeam", "--atoms", "64", "--device", "gpu"]) == 0
    assert "us/atom/step on 64 atoms, GPU" in capsys.readouterr().out
