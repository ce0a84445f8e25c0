"""Datasets snnp can make or fetch itself.

- ``emt_copper()``: a small copper dataset labelled by ASE's EMT calculator, built on the spot
  with no download: strained and sheared crystals, rattled cells, vacancies, surfaces and MD
  snapshots, grouped like the mlearn benchmark.  It is what ``snnp ladder`` runs by default.
- ``emt_cuau()``: its two-element counterpart, copper-gold alloys labelled by EMT across the
  composition range (ordered L1_2 and L1_0 phases, solid solutions, strained and rattled cells,
  vacancies, alloy surfaces, MD snapshots): 55 structures, 1706 atoms, under a second.
- ``mlearn(element)``: the DFT benchmark of Zuo et al. (J. Phys. Chem. A 124, 731, 2020),
  downloaded once from the public mlearn repository into a cache directory, verified against
  known SHA-256 checksums, and read with ``Dataset.from_mlearn``.
- ``inp(split)``: the two-element InP DFT set of Cusentino et al. (J. Phys. Chem. A 124, 5456,
  2020; 1894 structures, FitSNAP's groups), read from a copy on disk (it is not downloaded),
  with a seeded train/validation/test split by group (``split_by_group``).
"""
import hashlib
import os
import tempfile
import urllib.request

import numpy as np
from ase.build import bulk, fcc100, fcc111

from .data import MLEARN_SHA256, MLEARN_STRESS_ORDER, Dataset, Structure

__all__ = ["emt_copper", "emt_cuau", "mlearn", "inp", "find_inp", "split_by_group",
           "MLEARN_SHA256", "MLEARN_STRESS_ORDER", "MLEARN_REFERENCE", "MLEARN_RECIPE",
           "INP_SPLIT"]

MLEARN_URL = "https://raw.githubusercontent.com/materialsvirtuallab/mlearn/master/data/{element}/{split}.json"

#: published test-set RMSEs on these files (Zuo et al. 2020; SNAP and qSNAP re-evaluated on the
#: same test sets; UF3, 2 + 3-body B-splines, fitted on the same training sets, as
#: ../shared/data/README.md gives them): method -> (energy meV/atom, force eV/A)
MLEARN_REFERENCE = {
    "Li": {"GAP": (0.49, 0.01), "MTP": (0.49, 0.01), "qSNAP": (0.85, 0.044), "SNAP": (1.31, 0.038),
           "UF3": (0.95, 0.018)},
    "Mo": {"GAP": (2.24, 0.09), "MTP": (2.83, 0.09), "qSNAP": (4.04, 0.333), "SNAP": (9.25, 0.376),
           "UF3": (4.59, 0.231)},
    "Si": {"GAP": (2.91, 0.07), "MTP": (2.21, 0.06), "qSNAP": (5.51, 0.177), "SNAP": (8.06, 0.205),
           "UF3": (7.45, 0.162)},
}

#: fit options beyond the defaults that the zoo's models of an mlearn element use
#: (models_zoo/README.md): Si's angular filters end at 3.5 A, inside the first neighbour shell,
#: and its e0 is held at the free atom's energy (docs/studies/si_angular_reach.md)
MLEARN_RECIPE = {"Si": {"angular_cutoff": 3.5, "e0": {"Si": -0.80}}}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mlearn(element, split="training", cache_dir=None, download=True):
    """The mlearn DFT data for ``element`` ("Li", "Mo", "Si"; "Cu" and "Ni" test only).

    Files are looked for in ``cache_dir/<element>/<split>.json`` (default ``$SNNP_DATA`` or
    ``~/.cache/snnp/mlearn``), downloaded there if missing, and always checked against their
    published SHA-256.  Returns a ``Dataset``; ``split="both"`` returns (training, test).
    """
    if split == "both":
        return (mlearn(element, "training", cache_dir, download),
                mlearn(element, "test", cache_dir, download))
    key = (element, split)
    if key not in MLEARN_SHA256:
        known = sorted({e for e, _ in MLEARN_SHA256})
        raise ValueError(f"mlearn has no {split} set for {element!r} (elements: {known}; "
                         "Cu and Ni have only test sets)")
    cache_dir = cache_dir or os.environ.get("SNNP_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "snnp", "mlearn")
    path = os.path.join(os.fspath(cache_dir), element, f"{split}.json")
    if not os.path.exists(path):
        if not download:
            raise FileNotFoundError(f"{path} is missing and download=False (set $SNNP_DATA to "
                                    "a folder holding <element>/<split>.json)")
        _download(MLEARN_URL.format(element=element, split=split), path)
    digest = _sha256(path)
    if digest != MLEARN_SHA256[key]:
        raise ValueError(f"{path} does not match the published mlearn file (sha256 {digest}); "
                         "delete it to download it again")
    return Dataset.from_mlearn(path, stress_order=MLEARN_STRESS_ORDER[element])


#: the InP split: shares of each config_type group held out for validation and test (seed 0)
INP_SPLIT = {"validation": 0.1, "test": 0.15, "seed": 0}

#: where ``inp`` looks for InP.extxyz.xz, relative to the working folder and to the checkout
_INP_PLACES = (os.path.join("..", "shared", "data", "InP"), os.path.join("shared", "data", "InP"))


def split_by_group(dataset, validation=0.1, test=0.15, seed=0):
    """A reproducible (train, validation, test) split that keeps every group in every part.

    The structures are stratified by group (``Structure.group``) and composition (the
    chemical formula): within each stratum (sorted) they are shuffled with
    ``numpy.random.default_rng(seed)`` and ``round(share * n)`` of them, at least one, go to
    validation and to test.  A stratum of fewer than 3 structures stays whole in train: InP's
    one ``Bulk`` crystal, and the one pure-In cell among its ``EOS`` structures, which no
    model could predict without having seen In alone.  The three parts are disjoint and cover
    the dataset."""
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise ValueError(f"validation and test shares must be in [0, 1) and sum below 1, got "
                         f"{validation} and {test}")
    rng = np.random.default_rng(seed)
    groups = {}
    for k, st in enumerate(dataset):
        groups.setdefault((str(st.group), st.atoms.get_chemical_formula()), []).append(k)
    parts = {"training": [], "validation": [], "test": []}
    for group in sorted(groups):
        idx = np.array(groups[group])
        rng.shuffle(idx)
        n = len(idx)
        n_test = max(1, int(round(test * n))) if n >= 3 and test > 0 else 0
        n_val = max(1, int(round(validation * n))) if n >= 3 and validation > 0 else 0
        parts["test"] += idx[:n_test].tolist()
        parts["validation"] += idx[n_test:n_test + n_val].tolist()
        parts["training"] += idx[n_test + n_val:].tolist()
    return tuple(dataset[sorted(parts[p])] for p in ("training", "validation", "test"))


def find_inp(path=None):
    """The path of InP.extxyz.xz: ``path`` (the file or its folder), else ``$SNNP_INP``, else
    ``../shared/data/InP/`` seen from the working folder, from the folders above it, or from the
    snnp checkout.  A FileNotFoundError names every place looked in."""
    candidates = []
    for given in (path, os.environ.get("SNNP_INP")):
        if given:
            candidates.append(os.fspath(given))
            break
    else:
        bases = [os.getcwd()]
        while os.path.dirname(bases[-1]) != bases[-1] and len(bases) < 6:
            bases.append(os.path.dirname(bases[-1]))
        bases.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        candidates = [os.path.join(b, place) for b in bases for place in _INP_PLACES]
    for c in candidates:
        f = os.path.join(c, "InP.extxyz.xz") if os.path.isdir(c) else c
        if os.path.isfile(f):
            return os.path.abspath(f)
    raise FileNotFoundError(
        "the InP data (InP.extxyz.xz, from FitSNAP's examples/InP_JPCA2020) was not found; "
        "looked in: " + ", ".join(dict.fromkeys(candidates)) + ". Set SNNP_INP to the file or "
        "its folder")


def inp(split="training", path=None, cache_dir=None):
    """The InP DFT set (In and P; energies, forces, stresses; groups Bulk, EOS, Shear, Strain,
    the point defects vP vv iIn iP aIn aP aa and their strained s_* versions) as a Dataset.

    ``split``: "training", "validation", "test" (the seeded split by group of ``INP_SPLIT``:
    10% validation, 15% test of every group) or "all".  The file is found by ``find_inp``;
    the first read (about a minute: ASE parsing 118 214 atoms) is cached as
    ``cache_dir/InP-<sha256>.pkl`` (default ``$SNNP_DATA`` or ``~/.cache/snnp``), so later
    reads take a second.  Labels are in ASE's conventions (stress tensile positive).
    """
    if split not in ("training", "validation", "test", "all"):
        raise ValueError(f"InP splits are training, validation, test and all, not {split!r}")
    source = find_inp(path)
    digest = _sha256(source)
    cache_dir = cache_dir or os.environ.get("SNNP_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "snnp")
    cache = os.path.join(os.fspath(cache_dir), f"InP-{digest[:16]}.pkl")
    data = _read_cache(cache)
    if data is None:
        data = _read_inp(source)
        _write_cache(cache, data)
    data.name = "InP (Cusentino et al. 2020)"
    if split == "all":
        return data
    parts = dict(zip(("training", "validation", "test"), split_by_group(
        data, INP_SPLIT["validation"], INP_SPLIT["test"], INP_SPLIT["seed"])))
    out = parts[split]
    out.name = f"{data.name}, {split}"
    return out


def _read_inp(source):
    import lzma
    import ase.io
    with lzma.open(source, "rt") as fh:
        frames = ase.io.read(fh, ":", format="extxyz")
    data = Dataset.from_atoms_list(frames, name=os.path.basename(source))
    return data


def _read_cache(cache):
    import pickle
    if not os.path.exists(cache):
        return None
    try:
        with open(cache, "rb") as fh:
            data = pickle.load(fh)
        return data if isinstance(data, Dataset) else None
    except Exception:           # noqa: BLE001 - a damaged cache is read again from the source
        return None


def _write_cache(cache, data):
    import pickle
    from .io.atomic import atomic_write
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with atomic_write(cache, "wb") as fh:
            pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:             # a read-only cache folder: read from the source every time
        pass


def _download(url, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OSError(f"could not download {url} ({exc}); put the file at {path} by hand, or "
                      "point $SNNP_DATA at a folder holding <element>/<split>.json") from None


def emt_copper(seed=0, scale=1.0):
    """A copper dataset labelled by ASE's EMT (energies, forces, stresses), made in seconds.

    Groups: Elastic (strained and sheared crystals), Rattled, Vacancy, Surface ((111) and
    (100) slabs with vacuum) and MD (snapshots of EMT molecular dynamics at 600-1500 K).
    ``scale`` multiplies the number of structures per group.
    """
    from ase import units
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:            # ASE < 3.27
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    rng = np.random.default_rng(seed)
    a0 = 3.59
    count = lambda n: max(1, int(round(n * scale)))
    structures = []

    def label(atoms, group):
        atoms = atoms.copy()
        atoms.calc = EMT()
        structures.append(Structure(
            atoms.copy(), atoms.get_potential_energy(), atoms.get_forces(),
            atoms.get_stress() if atoms.cell.volume > 0 else None, group=group,
            name=f"Cu-{group}-{len(structures)}"))

    cubic = bulk("Cu", "fcc", a=a0, cubic=True)
    for _ in range(count(12)):
        strain = np.eye(3) + np.diag(rng.uniform(-0.05, 0.05, 3))
        strain += np.triu(rng.uniform(-0.04, 0.04, (3, 3)), 1) * (rng.random() < 0.5)
        atoms = cubic.repeat(2)
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        label(atoms, "Elastic")
    for _ in range(count(12)):
        atoms = cubic.repeat(2)
        atoms.set_cell(atoms.cell.array * rng.uniform(0.98, 1.03), scale_atoms=True)
        atoms.rattle(rng.uniform(0.05, 0.2), seed=int(rng.integers(1 << 30)))
        label(atoms, "Rattled")
    for _ in range(count(8)):
        atoms = cubic.repeat(2)
        del atoms[int(rng.integers(len(atoms)))]
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        label(atoms, "Vacancy")
    for k in range(count(8)):
        make = fcc111 if k % 2 == 0 else fcc100
        atoms = make("Cu", size=(2, 2, 5), a=a0, vacuum=5.0, periodic=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        label(atoms, "Surface")
    md = cubic.repeat(2)
    md.calc = EMT()
    for k in range(count(12)):
        temperature = 600 + 900 * k / max(1, count(12) - 1)
        thermalize_momenta(md, temperature_K=2 * temperature, rng=rng)
        Stationary(md)
        VelocityVerlet(md, timestep=2 * units.fs).run(25)
        label(md, "MD")
    return Dataset(structures, name="Cu (EMT)")


def emt_cuau(seed=0, scale=1.0):
    """A copper-gold dataset labelled by ASE's EMT (energies, forces, stresses), made in seconds:
    a two-element set for tests and examples, with no download.

    Groups (32-atom fcc cells unless said): Ordered (the L1_2 Cu3Au, L1_0 CuAu and L1_2 CuAu3
    phases, strained and rattled), SolidSolution (random alloys at Au fractions 0-1 on Vegard's
    lattice constant, rattled), Elastic (strained and sheared alloys), Rattled (large
    displacements, compressed and stretched), Vacancy (31-atom alloys), Surface ((111) and (100)
    alloy slabs, periodic in-plane only: they carry no stress) and MD (snapshots of EMT
    molecular dynamics at 600-1500 K).  ``scale`` multiplies the number of structures per group;
    ``seed`` fixes every random choice (compositions' site occupations, strains, rattles, MD).
    """
    from ase import Atoms, units
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:            # ASE < 3.27
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    rng = np.random.default_rng(seed)
    a_cu, a_au = 3.59, 4.055        # EMT's lattice constants
    count = lambda n: max(1, int(round(n * scale)))
    structures = []

    def label(atoms, group):
        atoms = atoms.copy()
        atoms.calc = EMT()
        periodic = bool(np.all(atoms.pbc))
        structures.append(Structure(
            atoms.copy(), atoms.get_potential_energy(), atoms.get_forces(),
            atoms.get_stress() if periodic else None, group=group,
            name=f"CuAu-{group}-{len(structures)}-{atoms.get_chemical_formula()}"))

    def alloy(x_au, repeat=2):
        """A random fcc Cu(1-x)Au(x) supercell on Vegard's lattice constant."""
        atoms = bulk("Cu", "fcc", a=a_cu + x_au * (a_au - a_cu), cubic=True).repeat(repeat)
        n_au = int(round(x_au * len(atoms)))
        symbols = np.array(["Cu"] * len(atoms))
        symbols[rng.permutation(len(atoms))[:n_au]] = "Au"
        atoms.set_chemical_symbols(symbols.tolist())
        return atoms

    def strained(atoms, normal=0.04, shear=0.03):
        strain = np.eye(3) + np.diag(rng.uniform(-normal, normal, 3))
        strain += np.triu(rng.uniform(-shear, shear, (3, 3)), 1) * (rng.random() < 0.5)
        atoms = atoms.copy()
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        return atoms

    # ordered phases: occupations of the four sites of the cubic fcc cell, EMT's lattice
    # constant and c/a
    half = [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)]
    phases = {"Cu3Au": ("AuCuCuCu", 3.71, 1.0), "CuAu": ("AuCuCuAu", 3.96, 0.90),
              "CuAu3": ("CuAuAuAu", 3.955, 1.0)}
    for k in range(count(12)):
        symbols, a, c_over_a = phases[list(phases)[k % 3]]
        cell = Atoms(symbols, scaled_positions=half, cell=[a, a, a * c_over_a], pbc=True)
        atoms = strained(cell.repeat(2), 0.03, 0.02) if k >= 3 else cell.repeat(2)
        if k >= 3:
            atoms.rattle(0.03, seed=int(rng.integers(1 << 30)))
        label(atoms, "Ordered")
    for x_au in np.linspace(0.0, 1.0, count(9)):      # pure Cu to pure Au
        atoms = alloy(x_au)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        label(atoms, "SolidSolution")
    for _ in range(count(8)):
        label(strained(alloy(rng.uniform(0, 1)), 0.05, 0.04), "Elastic")
    for _ in range(count(8)):
        atoms = alloy(rng.uniform(0, 1))
        atoms.set_cell(atoms.cell.array * rng.uniform(0.97, 1.03), scale_atoms=True)
        atoms.rattle(rng.uniform(0.08, 0.15), seed=int(rng.integers(1 << 30)))
        label(atoms, "Rattled")
    for _ in range(count(6)):
        atoms = alloy(rng.uniform(0.1, 0.9))
        del atoms[int(rng.integers(len(atoms)))]
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        label(atoms, "Vacancy")
    for k in range(count(4)):
        x_au = rng.uniform(0.2, 0.8)
        make = fcc111 if k % 2 == 0 else fcc100
        atoms = make("Cu", size=(2, 2, 5), a=a_cu + x_au * (a_au - a_cu), vacuum=6.0)
        atoms.pbc = (True, True, False)
        symbols = np.array(["Cu"] * len(atoms))
        symbols[rng.permutation(len(atoms))[:int(round(x_au * len(atoms)))]] = "Au"
        atoms.set_chemical_symbols(symbols.tolist())
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        label(atoms, "Surface")
    n_md = count(8)
    for k in range(n_md):
        if k % 4 == 0:                  # a fresh alloy every fourth snapshot
            md = alloy((0.25, 0.5, 0.75)[(k // 4) % 3])
            md.calc = EMT()
        temperature = 600 + 900 * k / max(1, n_md - 1)
        thermalize_momenta(md, temperature_K=2 * temperature, rng=rng)
        Stationary(md)
        VelocityVerlet(md, timestep=2 * units.fs).run(20)
        label(md, "MD")
    return Dataset(structures, name="Cu-Au (EMT)")
