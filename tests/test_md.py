"""Energy conservation in NVE molecular dynamics with the ASE calculator."""
import numpy as np
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import Stationary

try:                                   # ASE >= 3.27
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from ase.md.verlet import VelocityVerlet

import snnp
from conftest import potential


def test_nve_si1_216_atoms_1000K_drift_below_1e4_eV_per_atom():
    """The foundation issue: 1 fs, 5000 steps, 216-atom Si_1 at 1000 K, drift <= 1e-4 eV/atom."""
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(3)
    assert len(atoms) == 216
    atoms.calc = snnp.SplineMEAM.from_lammps(potential("Si_1")).calculator()
    thermalize_momenta(atoms, temperature_K=2000, rng=np.random.default_rng(5))
    Stationary(atoms)          # equipartition brings it to about 1000 K
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    energies, temperatures = [], []

    def record():
        energies.append(atoms.get_total_energy() / len(atoms))
        temperatures.append(atoms.get_temperature())

    dyn.attach(record, interval=10)
    dyn.run(5000)
    energies = np.array(energies)
    drift = abs(energies[-50:].mean() - energies[:50].mean())
    assert 800 < np.mean(temperatures[50:]) < 1200
    assert drift <= 1e-4, f"drift {drift:.3g} eV/atom"
    assert np.ptp(energies) < 2e-3           # bounded fluctuation, no blow-up
