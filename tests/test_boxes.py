"""Polarizable and flexible boxes: the Drude springs in precon's K, the μ floor on periodic Systems without
constraints, the default repeating itself exactly on a small Drude (SWM4-NDP) box (on a Context whose forces repeat
exactly) and converging there and on a small AMOEBA water box, with the forces of every particle with mass (Drude
particles too) below the tolerance, as OpenMM measures them."""
import numpy as np
import openmm
import pytest
from openmm import unit

from openmm_reparam import minimize
from openmm_reparam.core.bridge import EnergyBridge
from openmm_reparam.methods.auto import resolve_auto
from openmm_reparam.methods.precon import BOX_MU_FLOOR, MU_FLOOR, PreconOptions
from openmm_reparam.reparam.bonded import ONE_4PI_EPS0, bonded_force_constants
from openmm_reparam.testing import amoeba_water_box, drude_water_box, make_context

TOLERANCE = 10.0


@pytest.fixture(scope="module")
def drude_box():
    return drude_water_box(edge_nm=1.2)


def _energy(context: openmm.Context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def _rms_force_of_particles_with_mass(context: openmm.Context) -> float:
    """RMS force over every particle with mass, straight from OpenMM's State (no constraints in these checks'
    Systems act on the Drude particles; rigid waters' constraint components are removed by the package, so
    this is measured only where the System has no constraints)."""
    system = context.getSystem()
    forces = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(
        unit.kilojoule_per_mole / unit.nanometer)
    mass = np.array([system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())])
    return float(np.sqrt((forces[mass > 0] ** 2).sum() / (mass > 0).sum()))


def test_drude_springs_couple_each_drude_particle_to_its_parent(drude_box):
    system, positions = drude_box
    drude = next(f for f in system.getForces() if type(f).__name__ == "DrudeForce")
    k = bonded_force_constants(system, positions)
    for p in range(drude.getNumParticles()):
        particle, parent, *_, charge, alpha, _, _ = drude.getParticleParameters(p)
        expected = ONE_4PI_EPS0 * charge.value_in_unit(unit.elementary_charge) ** 2 / alpha.value_in_unit(
            unit.nanometer ** 3)
        assert k[particle, parent] == pytest.approx(expected, rel=1e-12) and k[parent, particle] == k[particle, parent]
    assert expected > 1e5  # kJ/mol/nm^2: as stiff as a covalent bond


def test_mu_floor_is_raised_only_on_periodic_systems_without_constraints(drude_box):
    flexible, _ = amoeba_water_box()
    rigid, _ = drude_box
    assert PreconOptions().stage_settings(None, flexible).mu_floor == BOX_MU_FLOOR
    assert PreconOptions().stage_settings(None, rigid).mu_floor == MU_FLOOR  # rigid SWM4-NDP water
    assert PreconOptions(precon_mu_floor=0.5).stage_settings(None, flexible).mu_floor == 0.5
    in_gb = openmm.XmlSerializer.clone(flexible)
    in_gb.addForce(openmm.GBSAOBCForce())  # implicit solvent in a box: not a liquid, the general floor
    assert PreconOptions().stage_settings(None, in_gb).mu_floor == MU_FLOOR
    with pytest.raises(ValueError, match="precon_mu_floor must be > 0"):
        PreconOptions(precon_mu_floor=0.0)


def test_the_default_moves_the_drude_particles_and_lowers_a_drude_box(drude_box):
    system, start = drude_box
    context = make_context(system, start)
    before = _energy(context)
    start_rms = EnergyBridge(context).force_norms()[0]
    result = minimize(context, TOLERANCE)
    assert result.method == "precon"
    assert _energy(context) < before - 100.0
    assert result.rms_force < 0.05 * start_rms and result.rms_force <= 5 * TOLERANCE
    # OpenMM's measure counts the Drude particles (they have mass): the package's measure moves them too
    drude = next(f for f in system.getForces() if type(f).__name__ == "DrudeForce")
    shells = [drude.getParticleParameters(p)[0] for p in range(drude.getNumParticles())]
    assert EnergyBridge(context).movable[shells].all()
    moved = np.linalg.norm(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(
        unit.nanometer)[shells] - np.asarray(start)[shells], axis=1)
    assert (moved > 0).all()


def _deterministic_context(system: openmm.System, positions) -> openmm.Context:
    """A CPU Context whose forces are bit-reproducible: one thread, and DeterministicForces, without which OpenMM's
    CPU PME spreads charges in the order its own threads (one per core, whatever "Threads" says) take them."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": "1", "DeterministicForces": "true"})
    context.setPositions(np.asarray(positions) * unit.nanometer)
    return context


@pytest.fixture(scope="module", params=["cpp", "python"])
def drude_runs(request, drude_box):
    """Two default runs per engine from the same start, each on a fresh deterministic Context: (results, final
    positions)."""
    if request.param == "cpp":
        from openmm_reparam import cpp_available
        if not cpp_available():
            pytest.skip("the compiled plugin is not built")
    system, start = drude_box
    results, positions = [], []
    for _ in range(2):
        context = _deterministic_context(system, start)
        results.append(minimize(context, TOLERANCE, engine=request.param))
        positions.append(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    return results, positions


def test_default_is_deterministic_on_a_drude_water_box(drude_runs):
    results, positions = drude_runs
    assert np.array_equal(positions[0], positions[1])
    assert [(s.name, s.energy_evaluations, s.final_energy) for s in results[0].stages] == \
        [(s.name, s.energy_evaluations, s.final_energy) for s in results[1].stages]


def test_default_converges_on_a_drude_water_box(drude_runs):
    result = drude_runs[0][0]
    assert result.method == "precon"
    assert result.converged and result.rms_force <= TOLERANCE, [(s.name, s.energy_evaluations, s.stop_reason,
                                                                 s.final_energy) for s in result.stages]


def test_default_converges_on_an_amoeba_water_box():
    system, start = amoeba_water_box(edge_nm=1.0)
    context = make_context(system, start)
    before = _energy(context)
    result = minimize(context, TOLERANCE)
    assert result.converged
    assert _rms_force_of_particles_with_mass(context) <= TOLERANCE
    assert _energy(context) < before - 10.0


def test_auto_keeps_precon_on_drude_water_and_lbfgs_on_amoeba(drude_box):
    # measured (benchmarks/RESULTS.md#auto-rules): on a 1.4 nm SWM4-NDP box precon converged below OpenMM's
    # L-BFGS, which stopped at RMS 53 kJ/mol/nm; on AMOEBA water OpenMM's L-BFGS converges and nothing beat it
    assert resolve_auto(drude_box[0]) == "precon"
    assert resolve_auto(amoeba_water_box(edge_nm=1.0)[0]) == "lbfgs"
