"""The InP data spec and its split by group (issue 17, item 1)."""
import collections

import numpy as np
import pytest
from ase import Atoms

import snnp
from snnp.cli import load_data
from snnp.datasets import INP_SPLIT, find_inp, split_by_group

from conftest import data_path


def synthetic(counts):
    """Structures in groups {group: (formula, n)}: one atom per structure is enough here."""
    out = []
    for group, (element, n) in counts.items():
        for k in range(n):
            atoms = Atoms(element, cell=[3 + 0.01 * k] * 3, pbc=True)
            atoms.positions = np.arange(3 * len(atoms)).reshape(-1, 3) * 0.5
            out.append(snnp.Structure(atoms, energy=-1.0 - k, group=group, name=f"{group}{k}"))
    return snnp.Dataset(out)


def test_split_by_group_covers_each_stratum_in_every_part():
    data = synthetic({"A": ("Cu", 40), "B": ("Cu", 7), "C": ("Cu", 3), "tiny": ("Cu", 2),
                      "solo": ("Au", 1)})
    train, val, test = split_by_group(data, validation=0.1, test=0.15, seed=0)
    names = [[s.name for s in part] for part in (train, val, test)]
    assert sum(map(len, names)) == len(data) == len(set(sum(names, [])))      # disjoint, cover
    count = lambda part: collections.Counter(s.group for s in part)
    assert count(test) == {"A": 6, "B": 1, "C": 1}         # round(0.15 n), at least one
    assert count(val) == {"A": 4, "B": 1, "C": 1}
    assert count(train)["tiny"] == 2 and count(train)["solo"] == 1      # too few to split
    again = split_by_group(data, validation=0.1, test=0.15, seed=0)
    assert [s.name for s in again[2]] == names[2]           # seeded: the same split
    assert [s.name for s in split_by_group(data, seed=1)[2]] != names[2]
    with pytest.raises(ValueError, match="sum below 1"):
        split_by_group(data, validation=0.5, test=0.5)


def test_split_stratifies_by_composition_within_a_group():
    data = synthetic({"EOS": ("In", 1)}) + synthetic({"EOS": ("InP", 30)})
    train, val, test = split_by_group(data)
    assert [s.atoms.get_chemical_formula() for s in train].count("In") == 1
    assert all(s.atoms.get_chemical_formula() == "InP" for s in val + test)


def test_find_inp_names_the_places_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNNP_INP", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere.*Set SNNP_INP"):
        find_inp()


def test_inp_dataset_and_its_split(tmp_path, monkeypatch):
    source = data_path("InP", "InP.extxyz.xz")
    monkeypatch.setenv("SNNP_INP", str(source))
    whole = snnp.datasets.inp("all")                        # parses the file, then caches it
    assert len(whole) == 1894 and whole.n_atoms == 118214 and whole.species == ["In", "P"]
    assert len(whole.groups) == 19
    def parse_again(source):
        raise AssertionError(f"{source} parsed again: the cache was not used")
    monkeypatch.setattr(snnp.datasets, "_read_inp", parse_again)
    parts = [load_data(f"inp:{p}") for p in ("training", "validation", "test")]   # the cache
    assert [len(p) for p in parts] == [1419, 189, 286]
    assert sum(p.n_atoms for p in parts) == 118214
    assert set(parts[1].groups) == set(parts[2].groups) == set(whole.groups) - {"Bulk"}
    assert "In4" in [s.atoms.get_chemical_formula() for s in parts[0]]
    assert load_data("inp").sha256() == parts[0].sha256()   # the CLI's default split: training
    assert INP_SPLIT == {"validation": 0.1, "test": 0.15, "seed": 0}
    # labels in ASE's conventions: compressed EOS cells push outwards (negative stress)
    eos = [s for s in whole if s.group == "EOS"]
    small = min(eos, key=lambda s: s.atoms.get_volume() / len(s.atoms))
    assert small.stress[:3].mean() < 0 and np.isfinite(small.forces).all()
