"""Copying models and calculators, leftovers of interrupted saves, ASE conventions (issue 16)."""
import concurrent.futures
import copy
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError

import snnp
from snnp import SNNPCalculator


@pytest.fixture(scope="module")
def model():
    return snnp.load("Si/snnp_small")


def _crystal(seed, repeat=(2, 2, 2), a=5.43):
    atoms = bulk("Si", "diamond", a=a, cubic=True) * repeat
    atoms.rattle(0.05, seed=seed)
    return atoms


def _cluster():
    return Atoms("Si3", positions=[[0, 0, 0], [2.3, 0, 0], [0, 2.3, 0.2]])


# -- 4. copying --------------------------------------------------------------------------------
def test_evaluated_model_pickles_and_gives_bitwise_equal_results(model):
    atoms = _crystal(1)
    before = model.compute(atoms)               # builds the compiled kernel tables
    clone = pickle.loads(pickle.dumps(model))
    after = clone.compute(atoms)
    assert clone == model
    assert after["energy"] == before["energy"]
    assert np.array_equal(after["forces"], before["forces"])
    assert np.array_equal(after["stress"], before["stress"])
    # the original still works and keeps its tables
    assert model.compute(atoms)["energy"] == before["energy"]


def test_evaluated_preset_model_deep_copies():
    model = snnp.presets(["Cu"], cutoff=4.6, r_min=1.7)["snnp_small"]
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    atoms.rattle(0.05, seed=3)
    before = model.compute(atoms)
    twin = copy.deepcopy(model)
    after = twin.compute(atoms)
    assert after["energy"] == before["energy"]
    assert np.array_equal(after["forces"], before["forces"])


def test_deepcopy_of_atoms_with_an_evaluated_calculator(model):
    atoms = _crystal(2)
    atoms.calc = model.calculator()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    twin = copy.deepcopy(atoms)
    assert isinstance(twin.calc, SNNPCalculator) and twin.calc is not atoms.calc
    assert twin.get_potential_energy() == energy
    twin.positions[0] += 0.02                   # recomputes: the neighbour list is rebuilt
    twin.calc.results.clear()
    moved = twin.get_forces()
    reference = model.compute(twin)
    assert twin.get_potential_energy() == pytest.approx(reference["energy"], abs=1e-11)
    np.testing.assert_allclose(moved, reference["forces"], atol=1e-12)
    np.testing.assert_array_equal(atoms.get_forces(), forces)      # the original is untouched


def test_evaluated_calculator_pickles(model):
    atoms = _crystal(4)
    calc = model.calculator(skin=0.5)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    clone = pickle.loads(pickle.dumps(calc))
    other = _crystal(5)
    other.calc = clone
    assert other.get_potential_energy() == pytest.approx(model.compute(other)["energy"],
                                                         abs=1e-11)
    assert clone.neighbors.skin == 0.5
    assert atoms.get_potential_energy() == energy


def test_pickled_model_evaluates_in_worker_processes(model):
    structures = [_crystal(seed, repeat=(1, 1, 2)) for seed in range(4)]
    model.compute(structures[0])                # the model holds its compiled tables
    expected = [model.get_potential_energy(a) for a in structures]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        got = list(pool.map(model.get_potential_energy, structures))   # pickles the model
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


# -- 5. leftovers of interrupted saves ---------------------------------------------------------
def _leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_next_save_removes_temporary_files_of_killed_writers(model, tmp_path):
    target = tmp_path / "model.json"
    model.save(target)
    # a writer killed mid-write (SIGKILL: no cleanup runs) leaves its temporary file
    script = ("import os, signal, sys\n"
              "from snnp.io.atomic import atomic_write\n"
              "with atomic_write(sys.argv[1]) as fh:\n"
              "    fh.write('{\"half\": ')\n"
              "    fh.flush()\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n")
    # run outside the repository, whose uncompiled source tree would shadow the installed snnp
    proc = subprocess.run([sys.executable, "-c", script, str(target)], cwd=tmp_path)
    assert proc.returncode != 0
    killed = _leftovers(tmp_path)
    assert len(killed) == 1 and killed[0].startswith(".model.json.")
    # a live writer's fresh temporary file, and another target's, must be left alone
    from snnp.io.atomic import _temp_prefix
    live = tmp_path / (_temp_prefix(target) + "live1234.tmp")
    live.write_text("in progress")
    old_live = tmp_path / (_temp_prefix(target) + "old12345.tmp")
    old_live.write_text("abandoned long ago")
    hours_ago = time.time() - 2 * 3600
    os.utime(old_live, (hours_ago, hours_ago))
    other = tmp_path / (_temp_prefix(tmp_path / "other.json", pid=999999999) + "other123.tmp")
    other.write_text("another target")
    model.save(target)
    assert _leftovers(tmp_path) == sorted([live.name, other.name])
    assert snnp.load(target) == model


# -- 8. ASE conventions ------------------------------------------------------------------------
def test_stress_of_a_zero_volume_cell_is_property_not_implemented(model):
    cluster = _cluster()
    cluster.calc = model.calculator()
    with pytest.raises(PropertyNotImplementedError, match="stress needs a cell with nonzero"):
        cluster.get_stress()
    with pytest.raises(PropertyNotImplementedError):
        cluster.get_stresses()
    assert np.isfinite(cluster.get_potential_energy())


def test_calculator_accepts_a_zoo_name_or_a_model_file(model, tmp_path):
    atoms = _crystal(6)
    expected = model.compute(atoms)["energy"]
    by_name = SNNPCalculator("Si/snnp_small")
    assert by_name.model == model
    path = tmp_path / "si.json"
    model.save(path)
    for spec in (path, str(path)):
        calc = SNNPCalculator(spec, skin=0.3)
        assert calc.model == model
        assert calc.get_potential_energy(atoms) == pytest.approx(expected, abs=1e-11)


def test_one_calculator_shared_by_two_threads(model):
    structures = [_crystal(7, repeat=(2, 2, 2)), _crystal(8, repeat=(1, 1, 2), a=5.5)]
    variants = []                               # two states per thread, alternated every step
    for atoms in structures:
        moved = atoms.copy()
        moved.positions[0, 0] += 1e-3
        variants.append([(a, model.compute(a)) for a in (atoms, moved)])
    calc = model.calculator(skin=0.0)
    errors = []
    start = threading.Barrier(2)

    def work(k):
        try:
            start.wait()
            for step in range(80):
                state, ref = variants[k][step % 2]
                atoms = state.copy()
                atoms.calc = calc
                forces = atoms.get_forces()
                energy = atoms.get_potential_energy()
                if forces.shape != ref["forces"].shape or not (
                        abs(energy - ref["energy"]) < 1e-9
                        and np.allclose(forces, ref["forces"], atol=1e-10)):
                    errors.append((k, step))
        except Exception as exc:                 # noqa: BLE001 - collected for the assert
            errors.append((k, repr(exc)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
