"""Datasets snnp can make or fetch itself.

- ``emt_copper()``: a small copper dataset labelled by ASE's EMT calculator, built on the spot
  with no download: strained and sheared crystals, rattled cells, vacancies, surfaces and MD
  snapshots, grouped like the mlearn benchmark.  It is what ``snnp ladder`` runs by default.
- ``mlearn(element)``: the DFT benchmark of Zuo et al. (J. Phys. Chem. A 124, 731, 2020),
  downloaded once from the public mlearn repository into a cache directory, verified against
  known SHA-256 checksums, and read with ``Dataset.from_mlearn``.
"""
import hashlib
import os
import tempfile
import urllib.request

import numpy as np
from ase.build import bulk, fcc100, fcc111

from .data import MLEARN_SHA256, MLEARN_STRESS_ORDER, Dataset, Structure

__all__ = ["emt_copper", "mlearn", "MLEARN_SHA256", "MLEARN_STRESS_ORDER", "MLEARN_REFERENCE"]

MLEARN_URL = "https://raw.githubusercontent.com/materialsvirtuallab/mlearn/master/data/{element}/{split}.json"

#: published test-set RMSEs on these files (Zuo et al. 2020; SNAP and qSNAP re-evaluated on the
#: same test sets): method -> (energy meV/atom, force eV/A)
MLEARN_REFERENCE = {
    "Li": {"GAP": (0.49, 0.01), "MTP": (0.49, 0.01), "qSNAP": (0.85, 0.044), "SNAP": (1.31, 0.038)},
    "Mo": {"GAP": (2.24, 0.09), "MTP": (2.83, 0.09), "qSNAP": (4.04, 0.333), "SNAP": (9.25, 0.376)},
    "Si": {"GAP": (2.91, 0.07), "MTP": (2.21, 0.06), "qSNAP": (5.51, 0.177), "SNAP": (8.06, 0.205)},
}


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
            raise FileNotFoundError(f"{path} is missing and download=False")
        _download(MLEARN_URL.format(element=element, split=split), path)
    digest = _sha256(path)
    if digest != MLEARN_SHA256[key]:
        raise ValueError(f"{path} does not match the published mlearn file (sha256 {digest}); "
                         "delete it to download it again")
    return Dataset.from_mlearn(path, stress_order=MLEARN_STRESS_ORDER[element])


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
        raise OSError(f"could not download {url} ({exc}); put the file at {path} by hand") from None


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
