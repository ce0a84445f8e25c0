"""Check that a refactoring leaves every number snnp computes bit for bit unchanged.

    python scripts/check_bitwise.py --write before.npz     # on the code before the change
    python scripts/check_bitwise.py --compare before.npz   # on the code after it

It evaluates

- every zoo model (``snnp.zoo()``, ``snnp.load(name)``) on three structures of its element: a
  rattled bulk crystal, a rattled 2x2x2 supercell with a vacancy, and a rattled surface slab
  (periodic in-plane, vacuum along z): energy, per-atom energies, forces, stress, per-atom
  stresses, plus the model's ``get_params()`` vector and its model-file round trip
  (``to_dict`` -> ``from_dict``, then the energy and forces again);
- every test model of ``tests/models_for_tests.py`` (1 to 3 species, every rung, with and
  without the ZBL core) on its own structure, the same properties, and its descriptors;
- ``snnp.training.loss_and_gradient`` (value and gradient) and ``snnp.training.errors``
  on a small EMT copper dataset (``snnp.datasets.emt_copper(scale=0.1)``) for the three
  rungs of ``snnp.presets(["Cu"])`` with seeded random parameters, and for the test models
  of copper;

and stores every array in an .npz.  ``--compare`` recomputes everything and requires each
array to be ``np.array_equal`` (bitwise for floats: same shape, every value identical) to the
stored one, reports the number of arrays and of values compared, and exits 1 on any
difference (naming the arrays that differ).  Run with ``OMP_NUM_THREADS=1`` both times (sums
over threads may otherwise be ordered differently).
"""
import argparse
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import snnp  # noqa: E402
from ase.build import bulk, surface  # noqa: E402

PROPERTIES = ("energy", "energies", "forces", "stress", "stresses")


def zoo_structures(element):
    """Rattled bulk, a vacancy in a rattled supercell, a rattled surface slab."""
    crystal = bulk(element, cubic=True)
    out = {}
    a = crystal.copy()
    a.rattle(0.05, seed=1)
    out["bulk"] = a
    b = crystal.repeat(2)
    del b[3]
    b.rattle(0.04, seed=2)
    out["vacancy_supercell"] = b
    c = surface(crystal, (0, 0, 1), 3, vacuum=6.0, periodic=True)
    c.pbc = (True, True, False)
    c.rattle(0.03, seed=3)
    out["surface"] = c
    return out


def evaluate(model, atoms, prefix, store):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.compute(atoms, PROPERTIES)
    for p in PROPERTIES:
        store[f"{prefix}/{p}"] = np.asarray(res[p])


def collect():
    from models_for_tests import MODELS
    from snnp.training import Batch, Loss, errors, loss_and_gradient

    store = {}
    for name in snnp.zoo():
        model = snnp.load(name)
        element = name.split("/")[0]
        store[f"zoo/{name}/params"] = model.get_params()
        for sname, atoms in zoo_structures(element).items():
            evaluate(model, atoms, f"zoo/{name}/{sname}", store)
        again = type(model).from_dict(model.to_dict())
        res = again.compute(zoo_structures(element)["bulk"], ("energy", "forces"))
        store[f"zoo/{name}/roundtrip/energy"] = np.asarray(res["energy"])
        store[f"zoo/{name}/roundtrip/forces"] = res["forces"]

    for name, (make_model, make_atoms) in MODELS.items():
        model = make_model()
        atoms = make_atoms()
        store[f"test/{name}/params"] = model.get_params()
        evaluate(model, atoms, f"test/{name}", store)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            store[f"test/{name}/descriptors"] = model.descriptors(atoms)

    data = snnp.datasets.emt_copper(seed=0, scale=0.1)
    loss = snnp.Loss(energy=1.0, forces=0.01, stress=1e-4, curvature=1e-8, l2=1e-7)
    rng = np.random.default_rng(7)
    models = {f"preset/{k}": m for k, m in snnp.presets(["Cu"], cutoff=4.5, r_min=1.8).items()
              if k in ("smeam", "smeam_nn", "snnp_small")}
    for name, m in models.items():
        p = m.get_params()
        m.set_params(p + 0.01 * rng.standard_normal(p.shape))
    for name in ("synthetic_1", "smeam_nn_1", "snnp_1", "smeam_nn_core_1"):
        models[f"test/{name}"] = MODELS[name][0]()
    for name, m in models.items():
        batch = Batch(data.structures, m)
        L, grad = loss_and_gradient(m, batch, loss)
        store[f"train/{name}/loss"] = np.asarray(L)
        store[f"train/{name}/gradient"] = grad
        store[f"train/{name}/params"] = m.get_params()
        err = errors(m, batch)
        flat = []
        def walk(obj):
            if isinstance(obj, dict):
                for k in sorted(obj, key=str):
                    walk(obj[k])
            elif isinstance(obj, (list, tuple)):
                for v in obj:
                    walk(v)
            elif isinstance(obj, (int, float, np.floating, np.integer)):
                flat.append(float(obj))
        walk(err)
        store[f"train/{name}/errors"] = np.array(flat)
    return store


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="FILE", help="compute and save to FILE (.npz)")
    group.add_argument("--compare", metavar="FILE", help="compute and compare with FILE")
    args = parser.parse_args(argv)
    store = collect()
    if args.write:
        np.savez(args.write, **store)
        n = sum(np.asarray(v).size for v in store.values())
        print(f"wrote {len(store)} arrays, {n} values to {args.write}")
        return 0
    with np.load(args.compare) as ref:
        ref = {k: ref[k] for k in ref.files}
    missing = sorted(set(ref) ^ set(store))
    differ = [k for k in sorted(ref) if k in store and not np.array_equal(ref[k], store[k])]
    n = sum(ref[k].size for k in ref if k in store)
    print(f"compared {len(ref) - len(set(ref) - set(store))} arrays, {n} values with "
          f"np.array_equal: {len(differ)} differ, {len(missing)} missing on one side")
    for k in differ[:20]:
        print("  differs:", k)
    for k in missing[:20]:
        print("  missing:", k)
    assert n >= 515, n
    if differ or missing:
        return 1
    print("all bitwise equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
