"""Build a crystal and run NVE molecular dynamics with a spline-MEAM through the ASE calculator.

The potential is made here, from nothing but published constants: the Sutton-Chen EAM for Cu
(Sutton & Chen, Phil. Mag. Lett. 61, 139 (1990); n=9, m=6, eps=12.382 meV, c=39.432,
a=3.61 A) tabulated on splines.  EAM is the spline-MEAM with no angular term (f = g = 0);
the radial splines are tapered to value 0 and slope 0 at the cutoff.  Pass --potential to run
any LAMMPS meam/spline file instead (for example ../shared/data/meam_spline/Si_1.meam.spline).

    python examples/md_spline_meam.py [--steps 500] [--potential FILE --element Si]
"""
import argparse
import time

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

import snnp

try:                                   # ASE >= 3.27
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta


def sutton_chen_cu(cutoff=5.0, knots=24):
    """Sutton-Chen Cu as a spline-MEAM (EAM limit), with a smooth taper to the cutoff."""
    eps, c, a, n, m = 12.382e-3, 39.432, 3.61, 9, 6
    r = np.linspace(1.5, cutoff, knots)

    def taper(x):                      # 1 below cutoff - 1 A, then smoothly to 0 (C1)
        t = np.clip((x - (cutoff - 1.0)) / 1.0, 0.0, 1.0)
        return 1.0 - t * t * (3.0 - 2.0 * t)

    phi = eps * (a / r) ** n * taper(r)
    rho = (a / r) ** m * taper(r)
    d_phi0 = -n * eps * (a / r[0]) ** n / r[0]
    d_rho0 = -m * (a / r[0]) ** m / r[0]
    density = np.linspace(0.0, 300.0, 31)      # fcc Cu sits near 150
    U = -eps * c * np.sqrt(density)
    dU_end = -eps * c * 0.5 / np.sqrt(density[-1])
    return snnp.SplineMEAM(
        ["Cu"],
        phi={(0, 0): snnp.Spline(r[0], r[-1], phi, d_phi0, 0.0)},
        rho=[snnp.Spline(r[0], r[-1], rho, d_rho0, 0.0)],
        U=[snnp.Spline(density[0], density[-1], U, 2 * U[1] / density[1], dU_end)],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=600.0)
    parser.add_argument("--potential", help="a LAMMPS meam/spline file (default: Sutton-Chen Cu)")
    parser.add_argument("--element", default=None, help="element of an old-format file")
    args = parser.parse_args()

    snnp.show_config()
    if args.potential:
        model = snnp.SplineMEAM.from_lammps(args.potential,
                                            species=[args.element] if args.element else None)
        element = model.species[0]
        atoms = bulk(element, "diamond" if element in ("Si", "Ge", "C") else None, cubic=True)
    else:
        model, element = sutton_chen_cu(), "Cu"
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms = atoms.repeat(4)
    print(f"\n{model}\n{len(atoms)} {element} atoms, NVE at {args.temperature:.0f} K, 1 fs steps")
    atoms.calc = model.calculator()
    thermalize_momenta(atoms, temperature_K=2 * args.temperature, rng=np.random.default_rng(1))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    e0 = atoms.get_total_energy() / len(atoms)
    print(f"{'step':>6} {'E_pot/atom':>12} {'T [K]':>8} {'E_tot drift/atom':>17}")

    def report():
        etot = atoms.get_total_energy() / len(atoms)
        print(f"{dyn.nsteps:6d} {atoms.get_potential_energy() / len(atoms):12.6f} "
              f"{atoms.get_temperature():8.1f} {etot - e0:17.2e}")

    dyn.attach(report, interval=max(1, args.steps // 10))
    start = time.perf_counter()
    dyn.run(args.steps)
    elapsed = time.perf_counter() - start
    print(f"\n{elapsed / args.steps / len(atoms) * 1e6:.2f} us/atom/step "
          f"(ASE VelocityVerlet + snnp, {snnp.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
