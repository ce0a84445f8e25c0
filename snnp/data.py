"""Datasets of structures with energies, forces and stresses (any may be missing).

Readers: extxyz (``Dataset.from_extxyz``), ASE databases (``from_ase_db``) and the mlearn JSON
format of Zuo et al. (``from_mlearn``).  Labels come in ASE units and conventions
(docs/conventions.md): total energy in eV, forces in eV/A, stress in eV/A^3 (Voigt, ASE sign).
"""
import hashlib
import json
import os

import numpy as np
from ase import Atoms
from ase.units import GPa

__all__ = ["Structure", "Dataset"]

#: mlearn/VASP virial stress in kbar, compression positive (ASE's units: 1 kbar = 0.1 GPa)
KBAR_PER_EV_A3 = 10.0 / GPa

#: orders of the three shear components in mlearn's ``virial_stress`` (after xx yy zz).  The
#: published files disagree: Li and Si use VASP's order, Mo, Cu and Ni swap yz and zx
#: (docs/conventions.md); ``from_mlearn`` detects which from the sheared cells in a file.
MLEARN_STRESS_ORDERS = ("xy yz zx", "xy zx yz")

#: SHA-256 of the published mlearn files (Cu and Ni have no training set)
MLEARN_SHA256 = {
    ("Cu", "test"): "1805a315ce8d0ce4a18bb761df4c4f619909ce114d598d426015d0071edc98c2",
    ("Li", "test"): "554d0ce60b35a07b357be3a80bf04f68eb8fc97b5a88328caf08c860b5e9b260",
    ("Li", "training"): "1cac01475c5a4fb85771ee1fd23366a6b8abfb9891e0c9e088b6e37228e147b3",
    ("Mo", "test"): "68169e2927c2115daa2f504805fcb9548ee65daf2dd015428807ba92f8e13bb8",
    ("Mo", "training"): "b13305fca0d0d2631ab080c8fcf13c743ee79a911712fb65a34ca88fadf09f9a",
    ("Ni", "test"): "dccbfa14ddff5d1d35f658c48b68f6b431f95496a5261ef8b8f4d1d41e36008a",
    ("Si", "test"): "d452b30a89f23bff76f7cc529b7b6c2d159ea81ccd5a4599fb1a18207654fa91",
    ("Si", "training"): "ae6d4b0a65b00e0fcf7ba0a6fad366716710d2f0d21d70199203089c6866b500",
}

#: order of the shear stresses in each published file (checked by ``Dataset.from_mlearn``'s
#: detection on the sheared cells; Li and the Mo test set have none it can read, Li's few shear
#: stresses (below 1 kbar) agree with VASP's order and the Mo test set comes from the same
#: pipeline as the Mo training set)
MLEARN_STRESS_ORDER = {"Li": "xy yz zx", "Si": "xy yz zx", "Mo": "xy zx yz", "Cu": "xy zx yz",
                       "Ni": "xy zx yz"}


def _voigt_slots(order):
    """Indices into virial_stress of ASE's yz, xz, xy for a shear ``order``."""
    names = order.replace("xz", "zx").split()
    return tuple(3 + names.index(p) for p in ("yz", "zx", "xy"))


def _published_stress_order(raw):
    """The shear order of a published mlearn file, recognised by the sha256 of its bytes
    ``raw`` (None if not one)."""
    digest = hashlib.sha256(raw).hexdigest()
    for (element, _), known in MLEARN_SHA256.items():
        if known == digest:
            return MLEARN_STRESS_ORDER[element]
    return None


def _mlearn_stress_order(entries, path):
    """Which shear order a file's virial stresses use, from its sheared cells.

    A cell whose lattice vectors are nearly along x, y, z and of which exactly one pair is
    tilted is sheared in that Cartesian plane; its largest off-diagonal stress must sit in that
    plane's slot.  Returns None for a file without such cells; a file whose cells disagree
    (fewer than 80% for one order) is an error: pass ``stress_order`` to choose."""
    votes = {name: 0 for name in MLEARN_STRESS_ORDERS}
    planes = {(0, 1): "xy", (0, 2): "zx", (1, 2): "yz"}
    for e in entries:
        try:
            A = np.array(e["structure"]["lattice"]["matrix"], dtype=float)
            v = np.abs(np.asarray(e["outputs"]["virial_stress"], dtype=float)[3:6])
        except (KeyError, TypeError, ValueError):
            continue
        if A.shape != (3, 3) or v.shape != (3,) or not np.all(np.isfinite(v)):
            continue
        diag = np.abs(np.diag(A))
        if np.any(diag <= 0) or np.abs(A - np.diag(np.diag(A))).max() > 0.2 * diag.min():
            continue
        G = A @ A.T
        cos = {p: abs(G[p]) / np.sqrt(G[p[0], p[0]] * G[p[1], p[1]]) for p in planes}
        tilted = [p for p, c in cos.items() if c > 1e-2]
        # a clear shear: one tilted pair, and a shear stress that dominates (> 5 kbar, 3x the
        # next); slabs with vacuum or thermal noise give no clear answer and do not vote
        if (len(tilted) != 1 or planes[tilted[0]] == "xy" or v.max() < 5.0
                or v.max() < 3 * np.sort(v)[1]):
            continue
        slot = int(np.argmax(v))                # 0 xy, 1 and 2 the other two planes
        for name in MLEARN_STRESS_ORDERS:
            if name.split()[slot] == planes[tilted[0]]:
                votes[name] += 1
    total = sum(votes.values())
    if total == 0:
        return None
    best = max(votes, key=votes.get)
    if votes[best] < 0.8 * total:
        raise ValueError(f"{path}: sheared cells disagree on the order of the shear stresses "
                         f"({votes}); pass stress_order= one of {list(MLEARN_STRESS_ORDERS)}")
    return best


class Structure:
    """One labelled structure: ASE Atoms plus energy (eV), forces (N,3) and stress (6,)."""

    __slots__ = ("atoms", "energy", "forces", "stress", "weight", "group", "name")

    def __init__(self, atoms, energy=None, forces=None, stress=None, weight=1.0, group=None,
                 name=None):
        self.atoms = atoms
        n = len(atoms)
        where = f"structure {name!r}" if name else "structure"
        if n == 0:
            raise ValueError(f"{where} has no atoms")
        if not np.all(np.isfinite(atoms.positions)):
            raise ValueError(f"{where} has NaN or infinite positions")
        def number(label, value, shape=None):
            try:
                return float(value) if shape is None else np.array(value, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: the {label} label is not a number "
                                 f"({str(value)[:40]!r})") from None
        self.energy = None if energy is None else number("energy", energy)
        if self.energy is not None and not np.isfinite(self.energy):
            raise ValueError(f"{where}: energy label is NaN or infinite")
        self.forces = None if forces is None else number("forces", forces, 1)
        if self.forces is not None:
            if self.forces.shape != (n, 3):
                raise ValueError(f"{where}: forces must have shape ({n}, 3), got {self.forces.shape}")
            if not np.all(np.isfinite(self.forces)):
                raise ValueError(f"{where}: force labels contain NaN or infinite values")
        self.stress = None if stress is None else number("stress", stress, 1).ravel()
        if self.stress is not None:
            if self.stress.shape == (9,):
                s = self.stress.reshape(3, 3)
                self.stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
            if self.stress.shape != (6,):
                raise ValueError(f"{where}: stress must have 6 (Voigt) or 9 values")
            if not np.all(np.isfinite(self.stress)):
                raise ValueError(f"{where}: stress labels contain NaN or infinite values")
        self.weight = float(weight)
        if not (self.weight >= 0 and np.isfinite(self.weight)):
            raise ValueError(f"{where}: weight must be finite and >= 0")
        self.group, self.name = group, name


class Dataset:
    """A list of labelled structures with reproducible splits."""

    def __init__(self, structures, name=None):
        self.structures = list(structures)
        self.name = name
        #: why no labels were found, when a reader found none (names the keys it looked for)
        self.label_hint = None

    def __len__(self):
        return len(self.structures)

    def __getitem__(self, k):
        if isinstance(k, (slice, list, np.ndarray)):
            idx = range(len(self))[k] if isinstance(k, slice) else k
            return Dataset([self.structures[i] for i in idx], self.name)
        return self.structures[k]

    def __iter__(self):
        return iter(self.structures)

    def __add__(self, other):
        return Dataset(self.structures + other.structures, self.name)

    @property
    def n_atoms(self):
        return sum(len(s.atoms) for s in self.structures)

    @property
    def species(self):
        return sorted({sym for s in self.structures for sym in s.atoms.get_chemical_symbols()})

    @property
    def groups(self):
        return sorted({s.group for s in self.structures if s.group is not None})

    def with_group_weights(self, weights):
        """A copy whose structures' weights are multiplied by ``weights[group]`` (default 1),
        e.g. ``{"Surface": 3.0}`` for groups the data holds few of."""
        unknown = set(weights) - set(self.groups)
        if unknown:
            raise ValueError(f"no structures in groups {sorted(unknown, key=str)}; groups: {self.groups}")
        out = []
        for s in self.structures:
            t = Structure(s.atoms, s.energy, s.forces, s.stress, s.weight * weights.get(s.group, 1.0),
                          s.group, s.name)
            out.append(t)
        return Dataset(out, self.name)

    def sha256(self):
        """A hash of positions, cells, species and labels, for provenance in model files."""
        h = hashlib.sha256()
        for s in self.structures:
            a = s.atoms
            for arr in (a.numbers, a.positions, a.cell.array, a.pbc):
                h.update(np.ascontiguousarray(arr).tobytes())
            for lab in (s.energy, s.forces, s.stress, s.weight):
                h.update(b"-" if lab is None else np.ascontiguousarray(lab, dtype=float).tobytes())
        return h.hexdigest()

    def split(self, validation=0.1, seed=0, by_group=True):
        """Reproducible (train, validation) split; ``by_group`` keeps every group's share."""
        rng = np.random.default_rng(seed)
        keys = [s.group if by_group else None for s in self.structures]
        val = []
        for g in sorted(set(keys), key=str):
            idx = np.array([i for i, k in enumerate(keys) if k == g])
            rng.shuffle(idx)
            n_val = int(round(validation * len(idx)))
            if validation > 0 and len(idx) >= 2:
                n_val = max(n_val, 1)          # every group is seen in validation
            val += list(idx[:n_val])
        val = sorted(val)
        train = [i for i in range(len(self)) if i not in set(val)]
        return self[train], self[val]

    # -- readers ---------------------------------------------------------------------------
    @classmethod
    def from_atoms_list(cls, images, energy_key="energy", forces_key="forces",
                        stress_key="stress", weight_key="weight", group_key="config_type",
                        name=None):
        """Labels from ``atoms.info`` / ``atoms.arrays`` under the given keys, else from an
        attached (single-point) calculator."""
        structures = []
        for k, atoms in enumerate(images):
            calc = atoms.calc
            results = getattr(calc, "results", {}) if calc is not None else {}
            energy = atoms.info.get(energy_key, results.get("energy"))
            forces = atoms.arrays.get(forces_key, results.get("forces"))
            stress = atoms.info.get(stress_key, results.get("stress"))
            clean = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            structures.append(Structure(clean, energy, forces, stress,
                                        weight=atoms.info.get(weight_key, 1.0),
                                        group=atoms.info.get(group_key), name=f"{name or ''}#{k}"))
        out = cls(structures, name)
        if images and not any(s.energy is not None or s.forces is not None for s in structures):
            first = images[0]
            out.label_hint = (f"looked for atoms.info[{energy_key!r}], atoms.arrays[{forces_key!r}], "
                              f"atoms.info[{stress_key!r}] and a calculator's results; the first "
                              f"frame has info keys {sorted(first.info)} and arrays keys "
                              f"{sorted(first.arrays)}: name the labels with --energy-key, "
                              f"--forces-key, --stress-key (from Python: energy_key=..., ...)")
        return out

    @classmethod
    def from_extxyz(cls, path, **keys):
        """Read an extended-XYZ file (all frames); see ``from_atoms_list`` for the label keys."""
        import ase.io
        path = os.fspath(path)
        try:
            images = ase.io.read(path, index=":", format="extxyz")
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise ValueError(f"{path}: not a readable extxyz file ({exc})") from None
        return cls.from_atoms_list(images, name=os.path.basename(path), **keys)

    @classmethod
    def from_ase_db(cls, path, selection=None, **keys):
        """Read an ASE database (rows matching ``selection``), labels as in ``from_atoms_list``."""
        import ase.db
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        images = []
        with ase.db.connect(path) as db:
            for row in db.select(selection):
                atoms = row.toatoms(add_additional_information=True)
                atoms.info.update(atoms.info.pop("key_value_pairs", {}))
                atoms.info.update(atoms.info.pop("data", {}) or {})
                for key in ("forces",):
                    if keys.get("forces_key", "forces") in atoms.info:
                        atoms.arrays[keys.get("forces_key", "forces")] = np.array(
                            atoms.info.pop(keys.get("forces_key", "forces")))
                images.append(atoms)
        return cls.from_atoms_list(images, name=os.path.basename(path), **keys)

    @classmethod
    def from_mlearn(cls, path, stress_order="auto"):
        """Read an mlearn JSON file (Zuo et al. 2020): pymatgen structures, total energies,
        forces, and VASP virial stresses in kbar (converted to ASE's eV/A^3 and sign).

        ``stress_order``: the order of the shear components after xx yy zz, "xy yz zx" (VASP's)
        or "xy zx yz".  The published files use both (Li, Si the first; Mo, Cu, Ni the second),
        so the default "auto" reads it off the file's sheared cells; a file without any takes
        its element's order if it is one of the published files (by its sha256: Mo's test set
        has no sheared cell), VASP's otherwise (docs/conventions.md)."""
        path = os.fspath(path)
        with open(path, "rb") as fh:
            raw = fh.read()                     # parsed, and hashed if the order needs it
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(entries, list):
            raise ValueError(f"{path}: an mlearn file holds a JSON list of structures")
        if stress_order == "auto":
            stress_order = (_mlearn_stress_order(entries, path) or _published_stress_order(raw)
                            or "xy yz zx")
        if stress_order not in MLEARN_STRESS_ORDERS:
            raise ValueError(f"stress_order must be 'auto' or one of {list(MLEARN_STRESS_ORDERS)}, "
                             f"got {stress_order!r}")
        yz, xz, xy = _voigt_slots(stress_order)
        structures = []
        for k, e in enumerate(entries):
            try:
                st = e["structure"]
                cell = np.array(st["lattice"]["matrix"], dtype=float)
                pos = np.array([site["xyz"] for site in st["sites"]], dtype=float)
                symbols = [site["species"][0]["element"] for site in st["sites"]]
                out = e["outputs"]
                v = out.get("virial_stress")
                stress = None if v is None else -np.array(
                    [v[0], v[1], v[2], v[yz], v[xz], v[xy]], dtype=float) / KBAR_PER_EV_A3
                atoms = Atoms(symbols, positions=pos, cell=cell, pbc=True)
                structures.append(Structure(atoms, out.get("energy"), out.get("forces"), stress,
                                            group=e.get("group"), name=f"{os.path.basename(path)}#{k}"))
            except (KeyError, TypeError, IndexError) as exc:
                raise ValueError(f"{path}: entry {k} is not an mlearn structure "
                                 f"(missing {exc})") from None
            except ValueError as exc:                  # a bad number or label in the entry
                raise ValueError(f"{path}: entry {k}: {exc}") from None
        return cls(structures, name=os.path.basename(os.path.dirname(path)) or path)
