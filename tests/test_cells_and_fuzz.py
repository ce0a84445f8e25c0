"""Issue 16, item 6 (any valid lattice works), item 7's meam/spline remainder, and the
property-based fuzz test of the geometry a user may give.

A strongly skewed periodic cell is searched in its Minkowski-reduced basis (snnp.neighbors,
shared by the CPU and GPU paths), so it gives the results of its reduced form; tiny cells meet
enough periodic images or are refused naming their width and the cutoff; huge boxes, far-apart
atoms and atoms far outside the cell give a result or a clear error, never a hang, an integer
overflow or a MemoryError.
"""
import functools
import re

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.calculators.calculator import PropertyNotImplementedError
from ase.geometry import minkowski_reduce
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress
from hypothesis import HealthCheck, event, given, settings, strategies as st

import snnp
from snnp.backends import gpu
from snnp.neighbors import MAX_WRAP, cell_list, check_geometry, neighbor_list
from cupy_emulator import module as emulated_cupy
from models_for_tests import MODELS, alloy

PROPS = ("energy", "forces", "stress")


@functools.lru_cache(maxsize=None)
def model(name):
    if "/" in name:
        return snnp.load(name)
    return MODELS[name][0]()


def results(m, atoms, props=PROPS, **kw):
    r = m.compute(atoms, props, **kw)
    return {k: np.asarray(r[k], dtype=float) for k in props}


def assert_same(a, b, tol=1e-10, floor=1.0):
    """Equal energy, forces and stress to ``tol`` relative to the largest value of each (or to
    ``floor``, where results are sums of larger terms that cancel)."""
    for key in a:
        scale = max(floor, float(np.max(np.abs(a[key]))))
        err = float(np.max(np.abs(a[key] - b[key])))
        assert err <= tol * scale, (key, err, scale)


def with_cell(atoms, cell):
    """The same positions under another basis (or completion) of the cell."""
    out = atoms.copy()
    out.set_cell(cell, scale_atoms=False)
    return out


def unimodular(pbc, seed, size=6, steps=6, largest=None):
    """A random integer matrix of determinant 1 that changes only the basis of the periodic
    lattice (periodic rows mix periodic rows; a non-periodic row may take in any rows), with
    entries at most ``largest`` (default: unbounded)."""
    rng = np.random.default_rng(seed)
    op = np.eye(3, dtype=np.int64)
    for _ in range(steps):
        i, j = rng.choice(3, size=2, replace=False)
        if pbc[i] and not pbc[j]:
            continue
        e = np.eye(3, dtype=np.int64)
        e[i, j] = rng.integers(-size, size + 1)
        if largest is not None and np.abs(e @ op).max() > largest:
            continue
        op = e @ op
    return op


def skew(atoms, op):
    return with_cell(atoms, op @ atoms.cell.array)


# -- skewed cells give the results of their reduced form ---------------------------------------

SKEWS = {
    "shear_100": np.array([[1, 0, 0], [0, 1, 0], [100, 100, 1]]),
    "shear_1000": np.array([[1, 0, 0], [1000, 1, 0], [0, 0, 1]]),
    "nested": np.array([[1, 0, 0], [300, 1, 0], [300 * 2000, 2000, 1]]),
    "mixed": np.array([[2, 1, 0], [1, 1, 0], [-7, 13, 1]]),
}


@pytest.mark.parametrize("name", ["Si/snnp_small", "synthetic_2", "snnp_3", "smeam_nn_2",
                                  "smeam_core_2"])
@pytest.mark.parametrize("skew_name", sorted(SKEWS))
def test_skewed_cell_equals_its_reduced_form(name, skew_name):
    m = model(name)
    atoms = bulk("Si", "diamond", a=5.431).repeat((1, 1, 2)) if name.startswith("Si/") \
        else MODELS[name][1]()
    atoms.rattle(0.03, seed=4)
    skewed = skew(atoms, SKEWS[skew_name])
    ref = results(m, atoms)
    got = results(m, skewed)          # refused on the old code: "too small" / "zero volume"
    # the skewed vectors (up to 3e6 A long) hold the lattice only to their rounding, ~1e-16
    # of their length: the nested skew's lattice differs from the original by ~1e-9 A
    nested = skew_name == "nested"
    assert_same(ref, got, 1e-7 if nested else 1e-10)
    # its reduced form: the same neighbours and vectors, so the same numbers; only the stress's
    # volume, det(cell) of the skewed vectors, carries their rounding (5e-12 for "nested")
    reduced, _ = minkowski_reduce(skewed.cell.array)
    same = results(m, with_cell(skewed, reduced))
    assert_same({k: same[k] for k in ("energy", "forces")},
                {k: got[k] for k in ("energy", "forces")}, 1e-12)
    assert_same({"stress": same["stress"]}, {"stress": got["stress"]}, 2e-11 if nested else 1e-12)
    wrapped = skewed.copy()
    wrapped.wrap()                    # into the skewed cell: positions up to 3e6 A out
    assert_same(results(m, wrapped), got, 1e-7 if nested else 1e-10)


def test_exactly_representable_skew_equals_the_original():
    """A lattice whose skewed basis is exact in floating point: the same numbers to 1e-12."""
    m = model("Si/snnp_small")
    atoms = bulk("Si", "diamond", a=5.5, cubic=True)          # vectors and sites exact
    atoms.positions[3] += [0.125, -0.0625, 0.03125]
    ref = results(m, atoms)
    for op in SKEWS.values():
        got = results(m, skew(atoms, op))
        assert np.array_equal(op @ atoms.cell.array, skew(atoms, op).cell.array)
        assert_same(ref, got, 1e-12)


def test_skewed_cell_through_the_calculator_and_an_md_skin():
    m = model("Si/snnp_small")
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.rattle(0.05, seed=1)
    skewed = skew(atoms, SKEWS["nested"])
    skewed.calc = snnp.SNNPCalculator(m, skin=1.0)
    atoms.calc = snnp.SNNPCalculator(m, skin=1.0)
    for step in range(3):
        for a in (atoms, skewed):
            a.positions[3] += [0.1, 0.05, 0.0]
        assert abs(skewed.get_potential_energy() - atoms.get_potential_energy()) < 1e-9
        np.testing.assert_allclose(skewed.get_forces(), atoms.get_forces(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(skewed.get_stress(), atoms.get_stress(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("pbc, op", [
    ((True, True, False), [[1, 0, 0], [50, 1, 0], [0, 0, 1]]),      # periodic b skewed
    ((True, True, False), [[1, 0, 0], [0, 1, 0], [300, -200, 1]]),  # the open c leans over
    ((True, True, False), [[3, 1, 0], [5, 2, 0], [40, 0, 1]]),
    ((True, False, False), [[1, 0, 0], [25, 1, 0], [-30, 4, 1]]),   # a wire
    ((False, False, False), [[1, 0, 0], [25, 1, 0], [-30, 4, 1]]),  # a cluster in a skewed box
])
def test_mixed_boundaries_with_skewed_vectors(pbc, op):
    m = model("synthetic_2")
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=4.0, a=3.9)
    slab.set_chemical_symbols(["Cu", "Ag"] * 6)
    slab.rattle(0.05, seed=2)
    slab.pbc = pbc
    props = PROPS if pbc != (False, False, False) else ("energy", "forces")
    ref = results(m, slab, props)
    got = results(m, skew(slab, np.array(op)), props)
    assert_same(ref, got, 1e-10)


def test_shifts_are_in_the_callers_basis():
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.rattle(0.05, seed=3)
    op = SKEWS["mixed"]
    skewed = skew(atoms, op)
    o, j, shifts = neighbor_list(skewed.positions, skewed.cell.array, True, 4.0)
    o0, j0, shifts0 = neighbor_list(atoms.positions, atoms.cell.array, True, 4.0)
    i = np.repeat(np.arange(len(atoms)), np.diff(o))
    i0 = np.repeat(np.arange(len(atoms)), np.diff(o0))
    r = skewed.positions[j] - skewed.positions[i] + shifts @ skewed.cell.array
    r0 = atoms.positions[j0] - atoms.positions[i0] + shifts0 @ atoms.cell.array
    key = lambda a, b, v: sorted(zip(a.tolist(), b.tolist(), np.round(v, 8).tolist()))
    assert key(i, j, r) == key(i0, j0, r0)
    # integer shifts in the skewed basis; the same lattice vectors as shifts @ op in the other
    lattice = r - (atoms.positions[j] - atoms.positions[i])
    np.testing.assert_allclose(shifts @ op @ atoms.cell.array, lattice, atol=1e-9)


def test_gpu_path_gets_the_same_reduction(monkeypatch):
    monkeypatch.setattr(gpu, "_cp", emulated_cupy())
    monkeypatch.setattr(gpu, "_modules", {})
    m = MODELS["snnp_2"][0]()
    atoms = alloy(["Cu", "Ag"], 10)
    skewed = skew(atoms, SKEWS["shear_1000"])
    cpu = results(m, atoms, PROPS)
    dev = results(m, skewed, PROPS, device="gpu")
    assert_same(cpu, dev, 1e-10)
    nl = snnp.new_neighbor_list(m.cutoff, 0.5, device="gpu")
    nl.update(skewed.positions, skewed.cell.array, skewed.pbc)
    host = snnp.NeighborList(m.cutoff, 0.5)
    host.update(skewed.positions, skewed.cell.array, skewed.pbc)
    np.testing.assert_allclose(nl.shifts @ skewed.cell.array, nl.shift_vectors, atol=1e-6)
    for i in range(len(atoms)):
        a = sorted(zip(host.neighbors[host.offsets[i]:host.offsets[i + 1]],
                       map(tuple, host.shifts[host.offsets[i]:host.offsets[i + 1]])))
        b = sorted(zip(nl.neighbors[nl.offsets[i]:nl.offsets[i + 1]],
                       map(tuple, nl.shifts[nl.offsets[i]:nl.offsets[i + 1]])))
        assert a == b


def test_degenerate_lattices_are_still_refused():
    for cell, pbc, what in [
        ([[5, 0, 0], [10, 0, 0], [0, 0, 5]], True, "zero volume"),
        ([[5, 0, 0], [5, 1e-12, 0], [0, 0, 5]], True, "zero volume"),
        ([[5, 0, 0], [5 * np.sqrt(2), 0, 0], [0, 0, 5]], True, "zero volume"),
        ([[5, 0, 0], [0, 0, 0], [1, 2, 5]], [True, True, False], "zero area"),
        ([[1e-300, 0, 0], [0, 1, 0], [0, 0, 1]], True, "zero volume"),
    ]:
        with pytest.raises(ValueError, match=what):
            check_geometry([[0, 0, 0]], cell, pbc)


# -- tiny cells, huge boxes, far atoms --------------------------------------------------------

def test_tiny_cells_meet_enough_images():
    m = model("Si/snnp_small")
    one = Atoms("Si", positions=[[0.1, 0.2, 0.3]], cell=np.eye(3) * 2.3, pbc=True)
    big = one.repeat((2, 3, 2))
    r1, r2 = results(m, one), results(m, big)
    assert abs(r2["energy"] / len(big) - r1["energy"]) < 1e-10
    np.testing.assert_allclose(r2["stress"], r1["stress"], atol=1e-11)
    thin = Atoms("Si", positions=[[0, 0, 0]], cell=[[0.8, 0, 0], [0, 6, 0], [0, 0, 6]], pbc=True)
    assert np.isfinite(results(m, thin)["energy"])


@pytest.mark.parametrize("cell", [np.eye(3) * 0.05, np.diag([0.01, 0.02, 10.0]),
                                  [[0.05, 0, 0], [1000.02, 0.05, 0], [0, 0, 0.1]]])
def test_too_small_cell_names_its_width_and_the_cutoff(cell):
    m = model("Si/snnp_small")
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=cell, pbc=True)
    with pytest.raises(ValueError, match=r"cell is too small.* A apart.*cutoff is 5 A"):
        m.compute(atoms)


@pytest.mark.parametrize("L", [1e6, 1.05e7, 2e7, 1e9, 1e15])
@pytest.mark.parametrize("pbc", [True, False])
def test_huge_vacuum_box(L, pbc):
    m = model("Si/snnp_small")
    dimer = Atoms("Si2", positions=[[0, 0, 0], [2.35, 0.1, 0]], cell=np.eye(3) * L, pbc=pbc)
    ref = results(m, Atoms("Si2", positions=dimer.positions), ("energy", "forces"))
    got = results(m, dimer, ("energy", "forces"))    # old code: "negative dimensions" >= 1.05e7
    assert_same(ref, got, 1e-12)
    c = cell_list(dimer.positions, dimer.cell.array, dimer.pbc, m.cutoff)
    assert np.prod(c["nb"].astype(float)) <= 1000


@pytest.mark.parametrize("distance", [1e5, 1e8, 1e12])
def test_far_apart_atoms_without_periodicity(distance):
    m = model("Si/snnp_small")
    far = Atoms("Si4", positions=[[0, 0, 0], [2.3, 0, 0], [distance, -distance, 0.5 * distance],
                                  [distance + 2.3, -distance, 0.5 * distance]])
    dimer = results(m, Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]]), ("energy",))
    # the far pair as its given coordinates hold it (2.3 A to the rounding of 1e12 + 2.3)
    far_pair = Atoms("Si2", positions=[[0, 0, 0], far.positions[3] - far.positions[2]])
    got = results(m, far, ("energy", "forces"))
    assert abs(got["energy"] - dimer["energy"] - results(m, far_pair, ("energy",))["energy"]) \
        < 1e-12
    c = cell_list(far.positions, far.cell.array, far.pbc, m.cutoff)
    assert np.prod(c["nb"].astype(float)) <= 1000


def test_atoms_far_outside_the_cell():
    m = model("Si/snnp_small")
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.rattle(0.02, seed=1)
    ref = results(m, atoms)
    moved = atoms.copy()
    moved.positions[1] += 2 ** 20 * moved.cell[0] - 3 ** 9 * moved.cell[2]
    assert_same(ref, results(m, moved), 1e-8)        # positions that far out lose ~1e-10 A
    moved.positions[1] += 2 ** 31 * moved.cell[0]    # old code: wrong energy, RuntimeWarning
    with pytest.raises(ValueError, match=r"atom 1 lies .* cell widths outside the cell.*wrap"):
        m.compute(moved)
    assert MAX_WRAP < 2 ** 30


# -- meam/spline files with non-finite numbers --------------------------------------------------

SI_FILE = """# a tiny old-format Si file
3
-1.0 0.0
1 0 1 0
1.5 1.0 0.0
3.0 0.5 0.0
4.5 0.0 0.0
"""


def _meam_file(path, blocks):
    path.write_text("# tiny\nmeam/spline 1 Si\n" + "".join(line for b in blocks for line in b))
    return path


def _spline_lines(values=("1.0", "0.5", "0.0"), d=("-1.0", "0.0"), y2="0.0"):
    lines = ["spline3eq\n", "3\n", f"{d[0]} {d[1]}\n"]
    lines += [f"{x} {y} {y2}\n" for x, y in zip(("1.5", "3.0", "4.5"), values)]
    return lines


@pytest.mark.parametrize("where, spline, value", [
    (0, dict(values=("nan", "0.5", "0.0")), "nan"),
    (0, dict(values=("1.0", "inf", "0.0")), "inf"),
    (1, dict(d=("-Infinity", "0.0")), "-Infinity"),
    (2, dict(y2="NaN"), "NaN"),                   # LAMMPS recomputes y'': still a broken file
    (4, dict(values=("1.0", "0.5", "-inf")), "-inf"),
])
def test_meam_spline_file_with_non_finite_number(tmp_path, where, spline, value):
    blocks = [_spline_lines() for _ in range(5)]          # phi, rho, U, f, g
    snnp.SplineMEAM.from_lammps(_meam_file(tmp_path / "Si_good.meam.spline", blocks))
    blocks[where] = _spline_lines(**spline)
    path = _meam_file(tmp_path / "Si_bad.meam.spline", blocks)
    line = 2 + 6 * where + next(k for k, text in enumerate(blocks[where], 1)
                                if value in text.split())
    with pytest.raises(ValueError, match=rf"Si_bad\.meam\.spline, line {line}: .*"
                                         rf"non-finite value '{re.escape(value)}'.*finite"):
        snnp.SplineMEAM.from_lammps(path)


def test_old_format_file_with_infinity(tmp_path):
    path = tmp_path / "Si_old.meam.spline"
    path.write_text(SI_FILE.replace("3.0 0.5 0.0", "3.0 0.5 inf"))
    with pytest.raises(ValueError, match=r"Si_old\.meam\.spline, line 6: knot 1 of phi\[Si-Si\] "
                                         r"holds the non-finite value 'inf'"):
        snnp.io.lammps.read_meam_spline(path)


# -- property-based fuzz test -----------------------------------------------------------------

#: the models the fuzz test draws: 1-3 species spline-MEAM and ladder rungs, two zoo rungs
FUZZ_MODELS = ["synthetic_1", "synthetic_3", "smeam_nn_2", "snnp_3", "snnp_core_2",
               "Si/snnp_small", "Mo/smeam_nn"]

#: what a refusal must say: one of the problems a user can cause with a geometry
CLEAR = (r"sit at the same position|cell is too small|zero (volume|area|length)|NaN or infinite"
         r"|neighbours within"
         r"|knows only .* contains|stress needs a cell")


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@st.composite
def structures(draw):
    name = draw(st.sampled_from(FUZZ_MODELS))
    m = model(name)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    pbc = np.array(draw(st.lists(st.booleans(), min_size=3, max_size=3)))
    lengths = rng.uniform(1.6, 7.0, size=3)
    base = np.diag(lengths) + np.triu(rng.uniform(-0.4, 0.4, size=(3, 3)), 1) * lengths[:, None]
    base = np.round(base * 2 ** 10) / 2 ** 10     # dyadic: skewed bases are exact products
    kind = draw(st.sampled_from(["plain", "skewed", "skewed", "small", "tiny", "open_zero",
                                 "bad"]))
    n = draw(st.integers(1, 5))
    frac = rng.random((n, 3))
    if kind == "open_zero" and not pbc.all():
        base[~pbc] = 0.0                        # no cell vector along the open directions
        frac[:, ~pbc] *= 0.0
    positions = frac @ base + rng.normal(scale=0.05, size=(n, 3))
    if not pbc.all():                           # open directions: atoms spread over 5 A
        positions[:, ~pbc] = rng.uniform(0, 5.0, size=(n, int((~pbc).sum())))
    cell = base
    if kind == "skewed":
        # entries up to 300: the vectors (up to ~5000 A) still hold the lattice to ~1e-12 A
        # (test_skewed_cell_equals_its_reduced_form takes skews of 6e5)
        cell = unimodular(pbc, seed, size=draw(st.sampled_from([3, 30, 300])), largest=300) @ base
    if kind in ("small", "tiny"):       # widths 0.5-2 A: many images; 0.02-0.07 A: refused
        scale = 0.3 if kind == "small" else 0.01
        cell = base * scale
        positions = positions * scale
    positions = positions + rng.integers(-3, 4, size=(n, 1)) * cell[rng.integers(0, 3)]
    symbols = list(rng.choice(m.species, size=n))
    if kind == "bad":
        what = rng.integers(4)
        if what == 3 and pbc.sum() >= 2:      # two periodic vectors along one line
            p, q = np.flatnonzero(pbc)[:2]
            cell = cell.copy()
            cell[q] = 2 * cell[p]
        elif what == 0:
            symbols[rng.integers(n)] = "Xe"
        elif what == 1:
            positions[rng.integers(n), rng.integers(3)] = np.nan
        elif n > 1:
            positions[1] = positions[0]           # on top of each other (r = 0 exactly)
    positions = np.round(positions * 2 ** 20) / 2 ** 20
    atoms = Atoms(symbols, positions=positions, cell=cell, pbc=pbc)
    event(f"cell: {kind}, {int(pbc.sum())} periodic")
    return name, atoms, seed


def _fuzz_props(atoms):
    return PROPS if abs(np.linalg.det(atoms.cell.array)) > 1e-6 else ("energy", "forces")


@pytest.mark.filterwarnings("ignore::snnp.CloseApproachWarning")
@settings(max_examples=300, deadline=None, derandomize=True, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(structures())
def test_fuzz_geometry(case):
    name, atoms, seed = case
    m = model(name)
    rng = np.random.default_rng(seed + 1)
    props = _fuzz_props(atoms)
    try:
        ref = results(m, atoms, props)
    except (ValueError, PropertyNotImplementedError) as exc:
        assert re.search(CLEAR, str(exc)), str(exc)
        event(f"refused: {re.search(CLEAR, str(exc)).group(0)}")
        return
    event("computed")
    if "stress" not in props:                 # the calculator says so the ASE way
        calc = snnp.SNNPCalculator(m)
        with pytest.raises(PropertyNotImplementedError, match="stress needs a cell"):
            calc.get_stress(atoms.copy())
        np.testing.assert_allclose(calc.results["forces"], ref["forces"], rtol=0, atol=1e-12)
    for key, value in ref.items():
        assert np.all(np.isfinite(value)), key
    n = len(atoms)
    pbc = atoms.pbc
    # tiny cells sum hundreds of large (core) terms into forces that nearly cancel: compare to
    # the size of the energy per atom too; positions and skewed cell vectors thousands of A
    # long (a supercell, a rotation of them) hold distances only to their rounding
    size = max(float(np.abs(atoms.positions).max()), float(np.abs(atoms.cell.array).max()))
    tol, floor = 1e-9 * max(1.0, size / 100), max(1.0, abs(float(ref["energy"])) / n)
    check = lambda a, b: assert_same(a, b, tol, floor)

    # translation
    moved = atoms.copy()
    moved.positions += rng.normal(scale=3.0, size=3)
    check(ref, results(m, moved, props))

    # rotation: forces rotate, stress rotates as R S R^T
    R = _rotation(rng)
    turned = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions @ R.T,
                   cell=atoms.cell.array @ R.T, pbc=pbc)
    got = results(m, turned, props)
    expect = {"energy": ref["energy"]}
    if "forces" in ref:
        expect["forces"] = ref["forces"] @ R.T
    if "stress" in ref:
        expect["stress"] = full_3x3_to_voigt_6_stress(
            R @ voigt_6_to_full_3x3_stress(ref["stress"]) @ R.T)
    check(expect, got)

    # permutation
    perm = rng.permutation(n)
    shuffled = atoms[perm]
    got = results(m, shuffled, props)
    check({**ref, "forces": ref["forces"][perm]}, got)

    # supercell along the periodic directions: energy per atom equal, forces tiled
    if pbc.any():
        reps = tuple(2 if (p and d == int(np.argmax(pbc))) else 1 for d, p in enumerate(pbc))
        big = atoms.repeat(reps)
        got = results(m, big, props)
        per = {"energy": got["energy"] / 2, "forces": got["forces"][:n]}
        if "stress" in got:
            per["stress"] = got["stress"]
        check(ref, per)
        check({"forces": got["forces"][:n]}, {"forces": got["forces"][n:]})

    # the reduced form of the cell (only the periodic lattice is reduced)
    if pbc.sum() >= 2:
        reduced, _ = minkowski_reduce(atoms.cell.array, pbc)
        check(ref, results(m, with_cell(atoms, reduced), props))


def test_an_atom_on_its_own_periodic_image_is_refused():
    """r comes out ~1e-15, not 0, for positions[1] = positions[0] + a lattice vector."""
    from ase.build import bulk
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions[1] = atoms.positions[0] + atoms.cell[0] * 1.0000000000000002
    model = snnp.load("Si/snnp_small")
    with pytest.raises(ValueError, match="sit at the same position"):
        model.compute(atoms, strict=False)
