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


@pytest.mark.filterwarnings("ignore::snnp.calculator.CloseApproachWarning")
def test_gpu_calculator_runs_md_like_the_cpu(device):
    from ase.md.verlet import VelocityVerlet
    model = MODELS["snnp_2"][0]()           # a random model: atoms may wander close (warned)
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
        model.compute(atoms, device="gpu", strict=True)
    res = model.compute(atoms, device="gpu")         # not strict: the pair is reported
    assert res["closest_pair"][0] == pytest.approx(0.5, abs=1e-12)
    assert sorted(res["closest_pair"][1:]) == [3, 5]


# -- the short-range core, the clamp and the extrapolation grade -------------------------------

#: (r_in, r_out) per species pair: wide enough that the compressed cells below have many pairs
#: in the switching region and the clamp, and one pair deep inside the core
CORE_RADII = {(0, 0): (2.2, 2.6), (0, 1): (2.0, 2.5), (1, 1): (2.3, 2.7)}


def _core_cases():
    from models_for_tests import random_spline_meam
    cases = {}
    for species in (["Cu"], ["Cu", "Ag"]):
        n = len(species)
        cases[f"smeam_{n}"] = lambda sp=species, n=n: random_spline_meam(sp, 30 + n)
        cases[f"smeam_nn_{n}"] = lambda sp=species, n=n: random_ladder_model(
            snnp.SplineMEAMNN, sp, 1 + n, 2, seed=40 + n, activation="softplus")
        cases[f"snnp_small_{n}"] = lambda sp=species, n=n: random_ladder_model(
            snnp.SNNP, sp, 2, 2, widths=(8,), seed=50 + n)
    return cases


CORE_CASES = _core_cases()


def _squeezed(species, seed, scale=0.85, close=True):
    """A compressed, rattled fcc cell (nearest neighbours about 2.1-2.6 A) and, with close, one
    pair at 1.3 A (deep in the ZBL core, below every r_in)."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.9 * scale, cubic=True).repeat((2, 2, 2))
    atoms.set_chemical_symbols(rng.choice(species, size=len(atoms)))
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.02 * rng.normal(size=(3, 3))),
                   scale_atoms=True)
    atoms.rattle(0.08, seed=seed)
    if close:
        atoms.positions[7] = atoms.positions[2] + [0.9, 0.6, 0.7]     # 1.30 A
    return atoms


def _with_core_and_grade(make, n_centres=16):
    model = make()
    species = model.species
    model.core = snnp.ZBLCore(species, {k: v for k, v in CORE_RADII.items()
                                        if max(k) < len(species)})
    reference = [_squeezed(species, s, scale=0.9, close=False) for s in (60, 61, 62)]
    model.extrapolation = snnp.ExtrapolationGrade.from_data(model, reference, n_centres)
    return model


def _compare_all(model, atoms, props, tol=TOL):
    """GPU against CPU for every property in props; returns the largest differences."""
    cpu = model.compute(atoms, props)
    model._cached_device = None
    dev = model.compute(atoms, props, device="gpu")
    worst = {}
    for key in props:
        ref, got = np.asarray(cpu[key], dtype=float), np.asarray(dev[key], dtype=float)
        assert got.shape == ref.shape, key
        err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        assert err <= tol * max(1.0, float(np.max(np.abs(ref)))), (key, err)
        worst[key] = err
    assert dev.get("closest_pair") == cpu.get("closest_pair")
    return cpu, dev, worst


@pytest.mark.parametrize("name", sorted(CORE_CASES))
def test_gpu_matches_cpu_with_core_clamp_and_grade(device, name):
    model = _with_core_and_grade(CORE_CASES[name])
    atoms = _squeezed(model.species, 70)
    core = model.core
    # the structure reaches into the core: pairs in the switching region, one inside r_in
    from ase.neighborlist import neighbor_list
    d = neighbor_list("d", atoms, model.cutoff)
    assert d.min() < min(r for r, _ in core.radii.values())
    assert ((d > 2.0) & (d < 2.6)).sum() >= 20
    props = ("energy", "energies", "forces", "stress", "stresses", "extrapolation",
             "max_extrapolation")
    cpu, dev, _ = _compare_all(model, atoms, props)
    assert cpu["closest_pair"][0] < model.short_range_limit
    # the grade is kernels.h's snnp_grade of the filters: the NumPy reference agrees
    ref = model.extrapolation.grade_filters(model.descriptors(atoms), model._atoms_species(atoms))
    np.testing.assert_allclose(dev["extrapolation"], ref, rtol=1e-10, atol=1e-12)
    assert dev["max_extrapolation"] > 1.0        # the squeezed pair is outside the reference
    # the core and the clamp change the numbers (so the comparison above tests them)
    bare = model.copy()
    bare.core = None
    plain = bare.compute(atoms, ("energy", "forces"), device="gpu")
    assert abs(plain["energy"] - dev["energy"]) > 1.0
    # energy and grades alone: the filter pass only (no BACKWARD sweep, rung 0 without forces)
    _compare_all(model, atoms, ("energy", "energies", "extrapolation"))


def test_gpu_grade_only_where_asked_and_in_chunks(device, monkeypatch):
    """A 500-atom cell through several chunks: grades land in the rows of their atoms."""
    model = _with_core_and_grade(CORE_CASES["snnp_small_2"], n_centres=64)
    atoms = _squeezed(model.species, 71).repeat((2, 2, 2))
    atoms.rattle(0.02, seed=3)
    if device == "emulated":
        monkeypatch.setattr(gpu, "SCRATCH_BYTES", 150 * 1024)
    _compare_all(model, atoms, ("energy", "forces", "stress", "extrapolation"))
    dev = model.compute(atoms, ("energy", "forces"), device="gpu")
    assert "extrapolation" not in dev
    positions, _, species, nl = model._prepare(atoms, None, device="gpu")
    assert "grade" not in gpu.compute(model, positions, species, nl, True, False, False)
    grades = gpu.compute(model, positions, species, nl, False, False, False, grade=True)["grade"]
    assert grades.shape == (len(atoms),) and isinstance(grades, np.ndarray)
    model.extrapolation = None        # no reference: no grades, as the CPU Tables.compute
    assert "grade" not in gpu.compute(model, positions, species, nl, False, False, False,
                                      grade=True)


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
