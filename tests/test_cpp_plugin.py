"""Tests of the compiled plugin (plugin_cpp/): parity with the Python engine, ReparamIntegrator in a
CompoundIntegrator with MD, the C++ staged run, reporters. Skipped when the plugin is not built."""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import openmm
import pytest
import torch
from openmm import app, unit

from openmm_reparam.engines import compiled as cpp_engine
from openmm_reparam.core.bridge import ContextEnergy
from openmm_reparam.reparam.generators import GNNGenerator, LinearModeGenerator
from openmm_reparam.stages import RunRecorder, adam_stage

pytestmark = pytest.mark.skipif(not cpp_engine.cpp_available(), reason=cpp_engine.unavailable_reason()
                                or "C++ plugin not built")

DATA = os.path.join(os.path.dirname(__file__), "data")
KJ = unit.kilojoule_per_mole


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small tensors: extra torch threads only fight the OpenMM platform threads (much slower on 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def chignolin():
    """5AWL (10 residues, 138 atoms) with hydrogens, amber14 + OBC2, NoCutoff; one System without and one
    with HBonds constraints."""
    from pdbfixer import PDBFixer
    fixer = PDBFixer(filename=os.path.join(DATA, "5AWL.pdb"))
    fixer.removeHeterogens(keepWater=False)
    fixer.findMissingResidues()
    fixer.missingResidues = {}
    fixer.findMissingAtoms()
    fixer.addMissingAtoms()
    fixer.addMissingHydrogens(7.0)
    ff = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    free = ff.createSystem(fixer.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    constrained = ff.createSystem(fixer.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    positions = np.array(fixer.positions.value_in_unit(unit.nanometer), dtype=np.float64)
    return {"free": free, "constrained": constrained, "positions": positions}


def _modes(n_atoms: int, k: int = 8, seed: int = 0) -> np.ndarray:
    """Orthonormal (N, k) modes (parity does not depend on their physics, only on both engines using them)."""
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(n_atoms, k)))[0]


def _generator(kind: str, positions: np.ndarray, seed: int = 0):
    modes = _modes(len(positions))
    if kind == "cg":
        return LinearModeGenerator(modes, positions)
    generator = GNNGenerator(modes, positions, hidden=8, layers=2, seed=seed)
    generator.fit(positions, steps=30, lr=1e-2)  # parity needs no good fit: the residual makes the start exact
    return generator


def _context(system, positions, platform="Reference", integrator=None):
    context = openmm.Context(system, integrator or openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    return context


def _energy(context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(KJ)


def _python_trajectory(system, positions, generator, steps, lr):
    """Energies of the Python engine's reparam stage (the reference the C++ engine must reproduce)."""
    context = _context(system, positions)
    bridge = ContextEnergy(context)
    recorder = RunRecorder()
    stage = adam_stage("reparam", bridge, recorder, generator.ordered_parameters(), generator, lr=lr,
                       max_steps=steps, patience=10 ** 6, clip_norm=1e3, rel_tol=1e-5)
    assert stage.iterations == steps
    return np.array([point.energy for point in recorder.history])


@pytest.mark.parametrize("kind,constraints", [("gnn", "free"), ("cg", "free"), ("gnn", "constrained")])
def test_cpp_engine_matches_python_energy_trajectory(chignolin, kind, constraints):
    system, positions = chignolin[constraints], chignolin["positions"]
    generator = _generator(kind, positions)
    lr = 1e-3 if kind == "gnn" else 1e-2
    python_generator, cpp_generator = copy.deepcopy(generator), copy.deepcopy(generator)
    expected = _python_trajectory(system, positions, python_generator, 50, lr)

    context = _context(system, positions)
    stages, history = cpp_engine.run_stages(context, cpp_generator, tolerance=10.0, options=dict(
        steps=50, lr=lr, patience=10 ** 6, fine_steps=0, polish=False))
    energies = np.array([p.energy for p in history])
    assert [s.name for s in stages] == ["reparam", "fine"]
    assert stages[0].iterations == 50 and stages[0].energy_evaluations == 50
    assert len(energies) == 50
    np.testing.assert_allclose(energies, expected, rtol=1e-6)
    assert expected[-1] < expected[0] - 1.0  # the trajectory really moved downhill
    # Same trained weights too, and the Context holds the best positions found.
    for a, b in zip(python_generator.ordered_parameters(), cpp_generator.ordered_parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-6, atol=1e-9)
    assert stages[0].final_energy in energies and stages[0].final_energy <= energies[0]
    assert stages[0].final_energy == pytest.approx(min(energies), rel=1e-5)  # best up to rel_tol
    if constraints == "free":
        assert _energy(context) == pytest.approx(stages[0].final_energy, rel=1e-9)


def test_cpp_coordinate_stage_matches_python_with_constraints(chignolin):
    """The fine stage (Adam on coordinates, reset onto the constraints after each evaluation) in both engines."""
    system, positions = chignolin["constrained"], chignolin["positions"]
    context = _context(system, positions)
    bridge = ContextEnergy(context)
    recorder = RunRecorder()
    coordinates = torch.nn.Parameter(torch.as_tensor(bridge.current_positions(), dtype=torch.float64))

    def onto_constraints():  # as minimizer.ReparamMinimizer._run does
        coordinates.data.copy_(torch.from_numpy(bridge.last_positions))

    adam_stage("fine", bridge, recorder, [coordinates], lambda: coordinates, lr=1e-3, max_steps=40,
               patience=10 ** 6, clip_norm=1e3, rel_tol=1e-5, after_evaluation=onto_constraints)
    expected = np.array([p.energy for p in recorder.history])

    context = _context(system, positions)
    stages, history = cpp_engine.run_stages(context, None, tolerance=10.0, options=dict(
        fine_steps=40, fine_patience=10 ** 6, polish=False))
    assert [s.name for s in stages] == ["fine"] and stages[0].iterations == 40
    np.testing.assert_allclose([p.energy for p in history], expected, rtol=1e-6)
    assert expected[-1] < expected[0]


@pytest.mark.parametrize("kind", ["gnn", "cg"])
def test_integrator_steps_match_python_engine(chignolin, kind):
    from openmm_reparam.integrator import ReparamIntegrator
    system, positions = chignolin["free"], chignolin["positions"]
    generator = _generator(kind, positions)
    lr = 1e-3 if kind == "gnn" else 1e-2
    expected = _python_trajectory(system, positions, copy.deepcopy(generator), 20, lr)
    integrator = ReparamIntegrator.from_generator(copy.deepcopy(generator), lr=lr)
    assert isinstance(integrator, openmm.Integrator)
    context = _context(system, positions, integrator=integrator)
    energies = []
    for _ in range(20):
        integrator.step(1)
        energies.append(integrator.getLastEnergy())
    np.testing.assert_allclose(energies, expected, rtol=1e-6)
    assert integrator.getNumStepsTaken() == 20
    assert context.getStepCount() == 20
    assert integrator.getBestEnergy() == pytest.approx(min(energies))
    integrator.applyBestPositions()
    assert _energy(context) == pytest.approx(min(energies), rel=1e-9)
    trained = integrator.trained_generator()
    assert not np.allclose(trained.ordered_parameters()[0].detach().numpy(),
                           generator.ordered_parameters()[0].detach().numpy())


def test_compound_integrator_minimize_then_langevin_md(chignolin):
    from openmm_reparam.integrator import ReparamIntegrator
    system, positions = chignolin["constrained"], chignolin["positions"]
    reparam = ReparamIntegrator(system, positions, method="gnn", seed=1, n_modes=10, hidden=8, fit_steps=100,
                                lr=2e-3, platform=openmm.Platform.getPlatformByName("CPU"))
    langevin = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 10 / unit.picosecond, 0.002 * unit.picoseconds)
    langevin.setRandomNumberSeed(7)
    compound = openmm.CompoundIntegrator()
    compound.addIntegrator(reparam)
    compound.addIntegrator(langevin)
    context = _context(system, positions, "CPU", compound)
    context.applyConstraints(1e-6)
    start = _energy(context)
    compound.step(50)  # through OpenMM's CompoundIntegrator.step ...
    reparam.step(100)  # ... and directly
    assert reparam.getNumStepsTaken() == 150
    reparam.applyBestPositions()
    minimized = _energy(context)
    assert math.isfinite(minimized) and minimized < start - 50.0
    assert reparam.getBestEnergy() == pytest.approx(minimized, rel=1e-6, abs=1e-6)

    compound.setCurrentIntegrator(1)
    context.applyConstraints(1e-6)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 3)
    n_dof = 3 * system.getNumParticles() - system.getNumConstraints() - 3
    temperatures, energies = [], []
    for _ in range(30):
        compound.step(20)
        state = context.getState(getEnergy=True)
        kinetic = state.getKineticEnergy().value_in_unit(KJ)
        temperatures.append(2 * kinetic / (n_dof * unit.MOLAR_GAS_CONSTANT_R.value_in_unit(KJ / unit.kelvin)))
        energies.append(state.getPotentialEnergy().value_in_unit(KJ))
    assert np.isfinite(energies).all()
    assert 200.0 < np.mean(temperatures[10:]) < 400.0
    assert max(energies) < start  # MD stays far below the unminimized start
    assert context.getStepCount() == 150 + 600


def test_cpp_staged_run_polishes_to_tolerance_and_reports(chignolin):
    system, positions = chignolin["free"], chignolin["positions"]
    context = _context(system, positions, "CPU")
    start = _energy(context)
    generator = _generator("gnn", positions)
    seen = []

    class Reporter(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            seen.append((iteration, args["stage"], args["system energy"], len(x)))
            return False

    stages, history = cpp_engine.run_stages(context, generator, tolerance=10.0, reporter=Reporter(),
                                            options=dict(steps=40, fine_steps=30, patience=10 ** 6,
                                                         fine_patience=10 ** 6))
    assert [s.name for s in stages] == ["reparam", "fine", "polish"]
    assert [s.iterations for s in stages[:2]] == [40, 30]
    assert [h.iteration for h in history] == list(range(len(history)))
    assert all(b.time >= a.time for a, b in zip(history, history[1:]))
    assert [(i, s) for i, s, _, _ in seen] == [(h.iteration, h.stage) for h in history]
    assert all(n == 3 * system.getNumParticles() for _, _, _, n in seen)
    final = _energy(context)
    assert final == pytest.approx(stages[-1].final_energy, abs=1e-3)  # CPU platform: energy-only vs energy+forces paths
    assert final < stages[1].final_energy <= stages[0].final_energy < start
    forces = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(KJ / unit.nanometer)
    assert np.sqrt((forces ** 2).sum() / len(forces)) <= 10.0  # L-BFGS converged


def test_cpp_run_stops_on_reporter_request_and_iteration_cap(chignolin):
    system, positions = chignolin["free"], chignolin["positions"]

    class StopAfterFive(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            return iteration >= 4

    context = _context(system, positions)
    stages, history = cpp_engine.run_stages(context, _generator("cg", positions), tolerance=10.0,
                                            reporter=StopAfterFive(), options=dict(steps=100, patience=10 ** 6))
    assert len(history) == 5 and [s.iterations for s in stages] == [5, 0, 0]

    context = _context(system, positions)
    stages, history = cpp_engine.run_stages(context, _generator("cg", positions), tolerance=1e-3,
                                            max_iterations=30, options=dict(steps=20, fine_steps=5,
                                                                            patience=10 ** 6))
    assert [s.iterations for s in stages] == [20, 5, 5]
    assert len(history) == 30


def test_cpp_run_rejects_non_finite_energy():
    from openmm_reparam.bridge import NonFiniteEnergyError
    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    force = openmm.CustomBondForce("1/(r-1)")  # infinite at r = 1 nm
    force.addBond(0, 1)
    system.addForce(force)
    positions = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    context = _context(system, positions)
    generator = LinearModeGenerator(np.array([[1.0], [0.0]]), positions)
    with pytest.raises(NonFiniteEnergyError):
        cpp_engine.run_stages(context, generator, tolerance=10.0, options=dict(steps=5))


def test_generator_conversion_is_exact(chignolin):
    positions = chignolin["positions"]
    for kind in ("gnn", "cg"):
        generator = _generator(kind, positions)
        cpp = cpp_engine.to_cpp_generator(generator)
        x = np.array(cpp._computePositions()).reshape(-1, 3)
        np.testing.assert_array_equal(x, generator().detach().numpy())
        np.testing.assert_allclose(x, positions, atol=1e-9)  # generators start exactly at the positions
    with pytest.raises(Exception, match="modes"):
        cpp_engine.plugin().ReparamGenerator("gnn").validate()


def test_integrator_xml_serialization_round_trip(chignolin):
    from openmm_reparam.integrator import ReparamIntegrator
    system, positions = chignolin["free"], chignolin["positions"]
    integrator = ReparamIntegrator.from_generator(_generator("cg", positions), lr=1e-2, clip_norm=500.0)
    context = _context(system, positions, integrator=integrator)
    integrator.step(5)
    xml = openmm.XmlSerializer.serialize(integrator)
    assert "ReparamIntegrator" in xml
    restored = openmm.XmlSerializer.deserialize(xml)
    assert isinstance(restored, openmm.Integrator)
    other = _context(system, positions, integrator=restored)
    # Same weights: the restored integrator's first step evaluates where the original generator is now.
    restored.step(1)
    integrator.step(1)
    assert _energy(other) == pytest.approx(_energy(context), rel=1e-12)
