"""Force evaluations of the default (``auto``) where it has nothing to do or hands over to OpenMM's L-BFGS: no more
than OpenMM's ``LocalEnergyMinimizer``, counted by the benchmarks' zero ``openmm.PythonForce``, with the result's
energy, RMS force and positions still right. Real Contexts on the Reference platform (deterministic)."""
import numpy as np
import openmm
import pytest
from openmm import unit
from openmmtools import testsystems

from benchmarks.evaluations import EvaluationCounter
from conftest import energy_of, external_force_system, positions_of
from openmm_reparam import NonFiniteEnergyError, minimize
from openmm_reparam.core.bridge import EnergyBridge


def _counted(system: openmm.System, positions) -> tuple:
    """(Context on the Reference platform at ``positions``, its evaluation counter at 0)."""
    counter = EvaluationCounter(system)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    counter.calls = 0
    return context, counter


def _lem(system: openmm.System, positions) -> tuple:
    """(evaluations, energy, positions) of OpenMM's LocalEnergyMinimizer from ``positions``."""
    context, counter = _counted(openmm.XmlSerializer.clone(system), positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 0)
    return counter.calls, energy_of(context), positions_of(context)


def _no_forces() -> tuple:
    gas = testsystems.IdealGas()
    while gas.system.getNumForces():
        gas.system.removeForce(0)
    return gas.system, gas.positions.value_in_unit(unit.nanometer)


def _massless() -> tuple:
    """Three massless particles held by a bond: nothing can move."""
    system = openmm.System()
    for _ in range(3):
        system.addParticle(0.0)
    bond = openmm.HarmonicBondForce()
    bond.addBond(0, 1, 0.1, 1000.0)
    system.addForce(bond)
    return system, np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.4, 0.0]])


def _zero_forces() -> tuple:
    """A force that is zero everywhere (energy 2 kJ/mol): the start is a minimum."""
    return external_force_system("2", 4), np.random.default_rng(0).normal(0.0, 1.0, (4, 3))


@pytest.mark.parametrize("build", [_no_forces, _massless, _zero_forces], ids=["no-forces", "massless", "zero"])
def test_nothing_to_minimize_takes_one_evaluation_as_lem(build):
    system, start = build()
    lem_calls, lem_energy, _ = _lem(system, start)
    context, counter = _counted(system, start)
    result = minimize(context)
    assert counter.calls == lem_calls == 1
    assert result.converged and result.rms_force == 0.0 and result.max_force == 0.0
    assert result.final_energy == result.initial_energy == lem_energy == energy_of(context)
    assert np.array_equal(positions_of(context), np.asarray(start, dtype=float))
    assert [(s.name, s.iterations, s.stop_reason) for s in result.stages] == [("start", 0, "converged")]


def test_converged_start_with_constraints_stops_at_the_constrained_start_with_one_evaluation():
    """ConstraintCoupledHarmonicOscillator moved off its constraint: the constraint applied (as LEM does), the
    projected force is converged, nothing else runs; LEM's count, energy and positions."""
    oscillator = testsystems.ConstraintCoupledHarmonicOscillator()
    start = oscillator.positions.value_in_unit(unit.nanometer) + \
        np.random.default_rng(0).normal(0.0, 0.01, (2, 3))
    lem_calls, lem_energy, lem_positions = _lem(oscillator.system, start)
    context, counter = _counted(oscillator.system, start)
    constrained = openmm.Context(openmm.XmlSerializer.clone(oscillator.system), openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
    constrained.setPositions(start)
    constrained.applyConstraints(1e-5)
    assert np.abs(positions_of(constrained) - start).max() > 5e-5  # the start was off its constraint
    result = minimize(context)
    assert counter.calls == lem_calls == 1
    assert np.array_equal(positions_of(context), positions_of(constrained))
    assert np.array_equal(positions_of(context), lem_positions)
    assert result.converged and result.final_energy == pytest.approx(lem_energy, rel=1e-12, abs=1e-12)
    assert result.initial_energy == result.final_energy == pytest.approx(energy_of(context), rel=1e-12)
    assert result.rms_force == pytest.approx(EnergyBridge(context).force_norms()[0], rel=1e-12, abs=1e-12)
    assert result.stages[0].name == "start" and len(result.stages) == 1


def test_non_finite_start_with_constraints_leaves_the_context_as_given():
    """The default applies the constraints before measuring the start; where that start's energy is not finite
    the error names it and the Context keeps the positions it was given, not the constrained ones."""
    system = openmm.System()
    for _ in range(3):
        system.addParticle(1.0)
    system.addConstraint(0, 1, 0.1)
    force = openmm.CustomExternalForce("log(x)")  # NaN where x < 0
    for i in range(3):
        force.addParticle(i, [])
    system.addForce(force)
    start = np.array([[1.0, 0.0, 0.0], [1.2, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    context, _ = _counted(system, start)
    with pytest.raises(NonFiniteEnergyError, match="non-finite energy"):
        minimize(context)
    assert np.array_equal(positions_of(context), start)


class _Quiet(openmm.MinimizationReporter):
    """A user's reporter that never stops the run."""

    def report(self, iteration, x, grad, args):
        return False


@pytest.mark.parametrize("name", ["HarmonicOscillator", "Diatom", "LennardJonesCluster"])
def test_openmm_lbfgs_default_adds_only_the_start_check(name):
    """Small unconstrained Systems, perturbed, with a user's reporter (OpenMM's L-BFGS then reports to Python) and
    without one (the plugin's C++ reporter, where it is built): the final energy and RMS force come from OpenMM's
    last report, the state it left, so only the start's measurement is added to LEM's count. Either way the result
    is LEM's to the bit, with the energy and RMS force of a fresh evaluation."""
    test = getattr(testsystems, name)()
    start = test.positions.value_in_unit(unit.nanometer) + \
        np.random.default_rng(1).normal(0.0, 0.05, (test.system.getNumParticles(), 3))
    lem_calls, lem_energy, lem_positions = _lem(test.system, start)
    assert lem_calls > 1
    for reporter, added in ((_Quiet(), 1), (None, 1)):
        context, counter = _counted(openmm.XmlSerializer.clone(test.system), start)
        result = minimize(context, reporter=reporter)
        assert result.method == "lbfgs" and result.stages[0].iterations > 0
        assert counter.calls == lem_calls + added
        assert np.array_equal(positions_of(context), lem_positions) and result.final_energy == lem_energy
        fresh = EnergyBridge(context)
        assert result.final_energy == fresh.energy() and result.converged
        assert (result.rms_force, result.max_force) == pytest.approx(fresh.force_norms(), rel=1e-12, abs=1e-12)


def test_a_remembered_measurement_stands_only_for_its_own_positions():
    """EnergyBridge.remember: measure() returns it, without evaluating, while the Context holds exactly those
    positions; one coordinate moved by 1e-12 nm and the Context is evaluated again."""
    test = testsystems.LennardJonesCluster()
    context, counter = _counted(test.system, test.positions)
    bridge = EnergyBridge(context)
    here = bridge.current_positions()
    bridge.remember(here, 123.0, np.ones_like(here))
    assert bridge.energy() == 123.0 and bridge.force_norms()[0] == pytest.approx(np.sqrt(3.0))
    assert counter.calls == 0
    moved = here.copy()
    moved[0, 0] += 1e-12
    context.setPositions(moved)
    measured = bridge.energy()
    assert counter.calls == 1 and measured == pytest.approx(energy_of(context), rel=1e-12) and measured != 123.0
