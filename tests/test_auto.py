"""The default (``auto``) on a peer's test systems (openmmtools, a test dependency): what it picks for each class
of System, and that the picks minimize to the tolerance at an energy no higher than OpenMM's L-BFGS."""
import numpy as np
import openmm
import pytest
from openmm import unit

from openmm_reparam import minimize
from openmm_reparam.methods.auto import resolve_auto
from openmm_reparam.run.profile import SystemProfile

testsystems = pytest.importorskip("openmmtools.testsystems")

#: One openmmtools class per class of System, and the method the external suite measured best for it
#: (benchmarks/RESULTS.md#external-suite and benchmarks/RESULTS.md#auto-rules; the rules in
#: openmm_reparam/methods/auto.py).
CHOICES = [
    ("HarmonicOscillator", "lbfgs"),           # a toy: nothing repays a set-up
    ("TolueneVacuum", "lbfgs"),                # a 15-atom molecule
    ("AlanineDipeptideImplicit", "lbfgs"),     # 22 atoms in implicit solvent
    ("HostGuestImplicit", "precon"),           # a 156-atom complex in implicit solvent
    ("WaterCluster", "precon"),                # 60 constrained atoms in vacuum
    ("LennardJonesFluid", "lbfgs"),            # periodic, no constraints
    ("UnconstrainedDipolarFluid", "lbfgs"),    # periodic, bonded, no constraints
    ("SodiumChlorideCrystal", "lbfgs"),        # two ions in a box
    ("CustomGBForceSystem", "lbfgs"),          # free ions in implicit solvent in a box
    ("ConstrainedDipolarFluid", "precon"),     # a constrained box of dimers
    ("MethanolBox", "precon"),                 # a constrained molecular liquid
    ("WaterBox", "precon"),                    # rigid water
    ("DischargedWaterBox", "precon"),          # rigid water without charges (Adam ran 6.9x LEM there)
    ("AlanineDipeptideExplicit", "precon"),    # a 22-atom solute in water
    ("HostGuestExplicit", "adam"),             # a 126-atom host and its guest in water
    ("AMOEBAIonBox", "lbfgs"),                 # AMOEBA
]


def _context(system: openmm.System, positions, platform: str = "CPU") -> openmm.Context:
    properties = {"Threads": "2"} if platform == "CPU" else {}
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform),
                             properties)
    context.setPositions(positions)
    return context


def _energy(context: openmm.Context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def _lem_energy(system: openmm.System, positions, tolerance: float = 10.0, platform: str = "CPU") -> float:
    context = _context(system, positions, platform)
    openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0)
    return _energy(context)


@pytest.mark.parametrize("name,expected", CHOICES)
def test_auto_choice_for_each_class_of_system(name, expected):
    system = getattr(testsystems, name)().system
    assert resolve_auto(system) == expected


def test_nothing_to_minimize_goes_to_openmm_lbfgs_and_stays_put():
    system = testsystems.IdealGas().system
    while system.getNumForces():
        system.removeForce(0)
    profile = SystemProfile.of(system)
    assert not profile.has_forces and resolve_auto(system) == "lbfgs"
    positions = testsystems.IdealGas().positions
    context = _context(system, positions)
    result = minimize(context)
    assert result.converged and result.final_energy == 0.0
    assert np.allclose(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer),
                       positions.value_in_unit(unit.nanometer))


def test_profile_reads_size_constraints_box_and_force_types():
    profile = SystemProfile.of(testsystems.FourSiteWaterBox().system)
    assert profile.periodic and profile.constrained and profile.molecular and not profile.implicit_solvent
    assert profile.n_movable == 3 * profile.n_particles // 4  # one massless virtual site per water
    ions = SystemProfile.of(testsystems.CustomGBForceSystem().system)
    assert ions.implicit_solvent and not ions.molecular and ions.n_movable == 140


def test_default_minimizes_a_flexible_periodic_water_box_to_the_tolerance():
    """Flexible water (periodic, no constraints): OpenMM's L-BFGS, converged, at its energy. On the Reference
    platform (deterministic), because on CPU with 2 threads LEM itself lands 60 kJ/mol apart from run to run."""
    water = testsystems.FlexibleWaterBox(box_edge=1.5 * unit.nanometer, cutoff=0.7 * unit.nanometer)
    context = _context(water.system, water.positions, "Reference")
    start = _energy(context)
    result = minimize(context)
    assert result.method == "lbfgs" and result.converged and result.rms_force <= 10.0
    assert result.final_energy < start - 500.0
    lem = _lem_energy(water.system, water.positions, platform="Reference")
    assert result.final_energy <= lem + 1e-6 * abs(lem)
    assert result.final_energy == pytest.approx(_energy(context), abs=1e-3)


def test_default_minimizes_a_22_atom_molecule_to_the_tolerance():
    """Alanine dipeptide in vacuum (HBonds), from a perturbed start: converged, constraints held, no higher than
    OpenMM's L-BFGS."""
    molecule = testsystems.AlanineDipeptideVacuum()
    x = molecule.positions.value_in_unit(unit.nanometer)
    start = x + np.random.default_rng(0).normal(0.0, 0.01, x.shape)
    context = _context(molecule.system, start)
    result = minimize(context)
    assert result.method == "lbfgs" and result.converged and result.rms_force <= 10.0
    assert result.final_energy <= _lem_energy(molecule.system, start) + 1.0
    final = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    for k in range(molecule.system.getNumConstraints()):
        i, j, d = molecule.system.getConstraintParameters(k)
        d = d.value_in_unit(unit.nanometer)
        assert abs(np.linalg.norm(final[i] - final[j]) - d) <= 1e-4 * d


def test_default_on_custom_gb_ions_reaches_openmm_lbfgs_energy_or_lower():
    """openmmtools' CustomGBForceSystem (140 ions, GB in a box): OpenMM's L-BFGS (Adam used to stop 18,000-40,000
    kJ/mol above it; the GNN, 12-27x slower, ended on either side of it), converged, at its energy or lower. On the
    Reference platform: with 2 CPU threads LEM itself lands up to 50,000 kJ/mol apart from run to run."""
    ions = testsystems.CustomGBForceSystem()
    context = _context(ions.system, ions.positions, "Reference")
    result = minimize(context)
    assert result.method == "lbfgs" and result.converged and result.rms_force <= 10.0
    lem = _lem_energy(ions.system, ions.positions, platform="Reference")
    assert result.final_energy <= lem + 1e-5 * abs(result.final_energy)
