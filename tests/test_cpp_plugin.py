"""Tests of the compiled engine (plugin_cpp/): one Adam stage in C++ (``CompiledEngine``) against the reference
``PythonEngine`` (same energies to 1e-6, same stop rules), its reporter and errors, and ``ReparamIntegrator``
(parity, CompoundIntegrator + MD, XmlSerializer, collapse guard, options). Skipped when the plugin is not built."""
from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np
import openmm
import pytest
import torch
from openmm import app, unit

from conftest import load_peptide
from openmm_reparam.core.bridge import EnergyBridge
from openmm_reparam.core.errors import NonFiniteEnergyError
from openmm_reparam.engines import AdamStageSettings, PythonEngine, select_runners
from openmm_reparam.engines import compiled
from openmm_reparam.run.options import MinimizerOptions
from openmm_reparam.run.recorder import RunRecorder
from openmm_reparam.reparam.generators import GNNGenerator, LinearModeGenerator

pytestmark = pytest.mark.skipif(not compiled.cpp_available(), reason=compiled.unavailable_reason()
                                or "C++ plugin not built")

KJ = unit.kilojoule_per_mole
DEFAULTS = MinimizerOptions()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small tensors: extra torch threads only fight the OpenMM platform threads (much slower on 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def chignolin():
    """5AWL (10 residues, 166 atoms with hydrogens), amber14 + OBC2, NoCutoff; one System without and one
    with HBonds constraints. From the stored prepared structure: PDBFixer places added hydrogens at random and
    minimizes them on the CPU platform, so preparing it here gave each test run a different start."""
    _, free, positions = load_peptide("5awl")
    _, constrained, _ = load_peptide("5awl", constraints=app.HBonds)
    return {"free": free, "constrained": constrained, "positions": positions}


def _modes(n_atoms: int, k: int = 8, seed: int = 0) -> np.ndarray:
    """Orthonormal (N, k) modes (parity does not depend on their physics, only on both engines using them)."""
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(n_atoms, k)))[0]


def _generator(kind: str, positions: np.ndarray, seed: int = 0):
    modes = _modes(len(positions))
    if kind == "linear":
        return LinearModeGenerator(modes, positions)
    generator = GNNGenerator(modes, positions, hidden=8, layers=2, seed=seed)
    generator.fit(positions, steps=30, lr=1e-2)  # parity needs no good fit: the residual makes the start exact
    return generator


def _settings(name: str = "reparam", **overrides) -> AdamStageSettings:
    """Stage settings from the options table (as the orchestrator builds them), with test overrides."""
    o = DEFAULTS
    values = dict(name=name, lr=o.lr, max_steps=50, patience=10 ** 6, clip_norm=o.clip_norm, rel_tol=o.rel_tol,
                  collapse_distance=o.collapse_distance, spike_factor=o.spike_factor,
                  constraint_stiffness=o.constraint_stiffness, progress_window=0, progress_fraction=0.0,
                  force_tolerance=0.0, torch_threads=1)
    values.update(overrides)
    return AdamStageSettings(**values)


def _context(system, positions, platform="Reference", integrator=None):
    context = openmm.Context(system, integrator or openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    return context


def _energy(context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(KJ)


def _positions(context) -> np.ndarray:
    return context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)


def _run(engine, system, positions, generator, settings, reporter=None, max_iterations=0, recorder=None):
    """(StageResult, recorder, context) of one stage of ``engine`` on a fresh Reference Context."""
    context = _context(system, positions)
    bridge = EnergyBridge(context, settings.constraint_stiffness)
    recorder = recorder or RunRecorder(reporter, max_iterations)
    return engine.adam_stage(bridge, recorder, generator, settings), recorder, context


def _energies(recorder) -> np.ndarray:
    return np.array([point.energy for point in recorder.history])


def _assert_same_stage(python, cpp):
    """Both engines' (StageResult, recorder, context) agree: trajectory, stop rule, best point."""
    (expected, expected_recorder, expected_context), (got, got_recorder, got_context) = python, cpp
    np.testing.assert_allclose(_energies(got_recorder), _energies(expected_recorder), rtol=1e-6)
    assert [p.stage for p in got_recorder.history] == [p.stage for p in expected_recorder.history]
    assert [p.iteration for p in got_recorder.history] == list(range(len(got_recorder.history)))
    assert (got.name, got.iterations, got.energy_evaluations, got.stop_reason, got.collapsed) == \
        (expected.name, expected.iterations, expected.energy_evaluations, expected.stop_reason, expected.collapsed)
    assert got.initial_energy == pytest.approx(expected.initial_energy, rel=1e-9)
    if expected.final_energy is None:
        assert got.final_energy is None
    else:
        assert got.final_energy == pytest.approx(expected.final_energy, rel=1e-6)
    np.testing.assert_allclose(_positions(got_context), _positions(expected_context), atol=1e-8)
    if got.final_energy is not None:  # what an interrupted run would fall back on
        assert got_recorder.best_positions is not None
        assert got_recorder.best_energy <= got.final_energy + 1e-9 * abs(got.final_energy)


# -- parity with the Python engine ----------------------------------------------------------------------
@pytest.mark.parametrize("kind,constraints", [("gnn", "free"), ("linear", "free"), ("gnn", "constrained"),
                                              ("linear", "constrained")])
def test_generator_stage_matches_python_engine(chignolin, kind, constraints):
    system, positions = chignolin[constraints], chignolin["positions"]
    generator = _generator(kind, positions)
    settings = _settings(lr=1e-3 if kind == "gnn" else 1e-2)
    python_generator, cpp_generator = copy.deepcopy(generator), copy.deepcopy(generator)
    python = _run(PythonEngine(), system, positions, python_generator, settings)
    cpp = _run(compiled.CompiledEngine(), system, positions, cpp_generator, settings)
    _assert_same_stage(python, cpp)
    assert cpp[0].iterations == 50 and cpp[0].stop_reason == "max_steps"
    energies = _energies(python[1])
    assert energies[-1] < energies[0] - 1.0  # the trajectory really moved downhill
    for a, b in zip(python_generator.ordered_parameters(), cpp_generator.ordered_parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-6, atol=1e-9)
    assert _energy(cpp[2]) == pytest.approx(cpp[0].final_energy, rel=1e-9)  # the Context holds the best point


def test_coordinate_stage_matches_python_engine_with_constraints(chignolin):
    """The coordinate stage (Adam on positions kept on the constraints after each evaluation)."""
    system, positions = chignolin["constrained"], chignolin["positions"]
    settings = _settings("fine", max_steps=40)
    python = _run(PythonEngine(), system, positions, None, settings)
    cpp = _run(compiled.CompiledEngine(), system, positions, None, settings)
    _assert_same_stage(python, cpp)
    assert cpp[0].iterations == 40 and _energies(cpp[1])[-1] < _energies(cpp[1])[0]


@pytest.mark.parametrize("rule,overrides", [
    ("patience", dict(patience=3, rel_tol=0.01, max_steps=300)),  # stops near step 40: keep max_steps far
    ("stalled", dict(progress_window=10, progress_fraction=0.5, max_steps=300)),
])
def test_early_stopping_rules_match_python_engine(chignolin, rule, overrides):
    system, positions = chignolin["free"], chignolin["positions"]
    generator = _generator("gnn", positions)
    settings = _settings(**overrides)
    python = _run(PythonEngine(), system, positions, copy.deepcopy(generator), settings)
    cpp = _run(compiled.CompiledEngine(), system, positions, copy.deepcopy(generator), settings)
    assert python[0].stop_reason == rule
    _assert_same_stage(python, cpp)
    assert 3 < cpp[0].iterations < settings.max_steps


def _singular_pair():
    """Two particles pulled together by -10/r, 0.53 nm apart: Adam's steps (about lr each) walk them into the
    singularity unless the collapse guard stops it."""
    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    force = openmm.CustomBondForce("-10/r")
    force.addBond(0, 1)
    system.addForce(force)
    return system, np.array([[0.0, 0.0, 0.0], [0.53, 0.0, 0.0]])


@pytest.mark.parametrize("generator", [None, "linear"])
def test_collapse_matches_python_engine(generator):
    """Both engines stop at the same suspect step with a contact closer than collapse_distance, do not record
    it, and leave the last good point."""
    system, positions = _singular_pair()
    make = (lambda: None) if generator is None else (lambda: LinearModeGenerator(np.eye(2), positions))
    settings = _settings(lr=0.05, max_steps=100)
    python = _run(PythonEngine(), system, positions, make(), settings)
    cpp = _run(compiled.CompiledEngine(), system, positions, make(), settings)
    assert python[0].stop_reason == "collapse" and python[0].collapsed
    _assert_same_stage(python, cpp)
    assert len(cpp[1].history) == cpp[0].iterations - 1  # the collapsing step is not recorded
    x = _positions(cpp[2])
    assert np.linalg.norm(x[1] - x[0]) > settings.collapse_distance

    unguarded = _run(compiled.CompiledEngine(), system, positions, make(),
                     dataclasses.replace(settings, collapse_distance=0.0, max_steps=cpp[0].iterations))
    assert unguarded[0].stop_reason == "max_steps"
    assert _energies(unguarded[1])[-1] < -10 / settings.collapse_distance  # the hazard is real


@pytest.fixture(scope="module")
def solvated():
    """Met-enkephalin (75 atoms) in a small TIP3P box with ions, PME, HBonds and rigid water (as test_solute)."""
    from conftest import solvated_enkephalin
    return solvated_enkephalin()


@pytest.mark.parametrize("kind", ["gnn", "linear"])
def test_solute_generator_stage_matches_python_engine(solvated, kind):
    """The generator over the solute, waters and ions as plain coordinates kept on their constraints."""
    from openmm_reparam.core.atoms import solvent_mask
    from openmm_reparam.reparam.solute import SoluteGenerator
    system, start = solvated
    solute = ~solvent_mask(system)
    generator = SoluteGenerator(_generator(kind, start[solute]), solute, start)
    settings = _settings(lr=1e-3, max_steps=15)
    python_generator, cpp_generator = copy.deepcopy(generator), copy.deepcopy(generator)
    python = _run(PythonEngine(), system, start, python_generator, settings)
    cpp = _run(compiled.CompiledEngine(), system, start, cpp_generator, settings)
    _assert_same_stage(python, cpp)
    assert _energies(cpp[1])[-1] < _energies(cpp[1])[0]
    for a, b in zip(python_generator.ordered_parameters(), cpp_generator.ordered_parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-6, atol=1e-9)
    moved = cpp_generator.solvent_coordinates.detach().numpy() - start[~solute]
    assert np.abs(moved).max() > 1e-4  # the water moved, as coordinates


def test_minimize_through_both_engines_is_the_same_run(chignolin):
    """The orchestrator with engine="cpp" and engine="python": same stages, same history."""
    from openmm_reparam import minimize
    system, positions = chignolin["constrained"], chignolin["positions"]
    results = {}
    for engine in ("python", "cpp"):
        context = _context(system, positions)
        results[engine] = minimize(context, method="gnn", engine=engine, n_modes=10, hidden=8, fit_steps=50,
                                   steps=30, fine_steps=20, polish=False, never_worse=False)
    python, cpp = results["python"], results["cpp"]
    assert cpp.engine == "cpp" and python.engine == "python"
    assert [(s.name, s.iterations, s.stop_reason) for s in cpp.stages] == \
        [(s.name, s.iterations, s.stop_reason) for s in python.stages]
    np.testing.assert_allclose([h.energy for h in cpp.history], [h.energy for h in python.history], rtol=1e-6)
    assert [(h.stage, h.iteration) for h in cpp.history] == [(h.stage, h.iteration) for h in python.history]
    assert cpp.final_energy == pytest.approx(python.final_energy, rel=1e-6)


def test_auto_selects_the_compiled_engine():
    context = _context(*_singular_pair())
    assert isinstance(select_runners("auto", context).coordinates, compiled.CompiledEngine)
    python = select_runners("auto", context, runs_torch_autograd=True, has_reporter=True)
    assert isinstance(python.coordinates, PythonEngine) and python.engine == "python"


# -- reporter, cap, deadline, errors ------------------------------------------------------------------------
class _Reporter(openmm.MinimizationReporter):
    """Keeps every call; asks to stop after ``stop_after`` calls (never with None)."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.calls, self.stop_after = [], stop_after

    def report(self, iteration, x, grad, args):
        self.calls.append((iteration, dict(args), np.array(x), np.array(grad)))
        return self.stop_after is not None and len(self.calls) >= self.stop_after


def test_reporter_sees_every_step_with_the_stage_name(chignolin):
    system, positions = chignolin["constrained"], chignolin["positions"]
    settings = _settings("fine", max_steps=12)
    expected, got = _Reporter(), _Reporter()
    python = _run(PythonEngine(), system, positions, None, settings, reporter=expected)
    cpp = _run(compiled.CompiledEngine(), system, positions, None, settings, reporter=got)
    _assert_same_stage(python, cpp)
    assert [i for i, _, _, _ in got.calls] == list(range(12))
    keys = {"system energy", "restraint energy", "restraint strength", "max constraint error", "stage"}
    assert all(set(args) == keys and args["stage"] == "fine" for _, args, _, _ in got.calls)
    for (_, a, xa, ga), (_, b, xb, gb) in zip(expected.calls, got.calls):
        assert b["system energy"] == pytest.approx(a["system energy"], rel=1e-6)
        assert xb.shape == xa.shape == (3 * system.getNumParticles(),)
        np.testing.assert_allclose(xb, xa, atol=1e-8)
        np.testing.assert_allclose(gb, ga, rtol=1e-5, atol=1e-3)


def test_reporter_stop_and_iteration_cap(chignolin):
    system, positions = chignolin["free"], chignolin["positions"]
    generator = _generator("linear", positions)
    settings = _settings(lr=1e-2, max_steps=100)
    stage, recorder, _ = _run(compiled.CompiledEngine(), system, positions, generator, settings,
                              reporter=_Reporter(stop_after=5))
    assert (stage.iterations, stage.stop_reason, len(recorder.history), recorder.stopped) == (5, "reporter", 5, True)
    again, _, _ = _run(compiled.CompiledEngine(), system, positions, None, _settings("fine"), recorder=recorder)
    assert (again.iterations, again.stop_reason) == (0, "reporter")  # a stopped run takes no more steps

    recorder = RunRecorder(max_iterations=30)
    first, _, _ = _run(compiled.CompiledEngine(), system, positions, _generator("linear", positions),
                       _settings(lr=1e-2, max_steps=20), recorder=recorder)
    second, _, _ = _run(compiled.CompiledEngine(), system, positions, None, _settings("fine", max_steps=20),
                        recorder=recorder)
    assert (first.iterations, second.iterations, second.stop_reason) == (20, 10, "max_steps")
    assert [p.iteration for p in recorder.history] == list(range(30))
    assert [p.stage for p in recorder.history] == ["reparam"] * 20 + ["fine"] * 10
    assert all(b.time >= a.time for a, b in zip(recorder.history, recorder.history[1:]))


def test_reporter_exception_is_reraised(chignolin):
    system, positions = chignolin["free"], chignolin["positions"]

    class Failing(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            if iteration == 2:
                raise ValueError("reporter failed")
            return False

    with pytest.raises(ValueError, match="reporter failed"):
        _run(compiled.CompiledEngine(), system, positions, None, _settings("fine"), reporter=Failing())


def test_deadline_already_passed_takes_no_step(chignolin):
    system, positions = chignolin["free"], chignolin["positions"]
    stage, recorder, context = _run(compiled.CompiledEngine(), system, positions, None,
                                    _settings("fine", deadline=time.perf_counter()))
    assert (stage.iterations, stage.stop_reason, stage.final_energy, recorder.history) == (0, "deadline", None, [])
    np.testing.assert_array_equal(_positions(context), positions)


def test_non_finite_energy_raises_non_finite_energy_error():
    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    force = openmm.CustomBondForce("1/(r-1)")  # infinite at r = 1 nm
    force.addBond(0, 1)
    system.addForce(force)
    positions = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(NonFiniteEnergyError, match="non-finite"):
        _run(compiled.CompiledEngine(), system, positions, None, _settings("fine"))
    with pytest.raises(NonFiniteEnergyError):
        _run(compiled.CompiledEngine(), system, positions, LinearModeGenerator(np.eye(2), positions), _settings())


def test_cpp_settings_have_no_defaults():
    with pytest.raises(openmm.OpenMMException, match="unset"):
        compiled.plugin().AdamStageSettings().validate()
    with pytest.raises(openmm.OpenMMException, match="progressFraction"):
        compiled.cpp_stage_settings(_settings(progress_fraction=2.0), 10, time.perf_counter())


def test_generator_conversion_is_exact(chignolin):
    positions = chignolin["positions"]
    for kind in ("gnn", "linear"):
        generator = _generator(kind, positions)
        cpp = compiled.to_cpp_generator(generator)
        x = np.array(cpp._computePositions()).reshape(-1, 3)
        np.testing.assert_array_equal(x, generator().detach().numpy())
        np.testing.assert_allclose(x, positions, atol=1e-9)  # generators start exactly at the positions
    with pytest.raises(Exception, match="modes"):
        compiled.plugin().ReparamGenerator("gnn").validate()


# -- ReparamIntegrator ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gnn", "linear"])
def test_integrator_steps_match_python_engine(chignolin, kind):
    from openmm_reparam import ReparamIntegrator
    system, positions = chignolin["free"], chignolin["positions"]
    generator = _generator(kind, positions)
    lr = 1e-3 if kind == "gnn" else 1e-2
    _, recorder, _ = _run(PythonEngine(), system, positions, copy.deepcopy(generator), _settings(lr=lr, max_steps=20))
    expected = _energies(recorder)
    integrator = ReparamIntegrator.from_generator(copy.deepcopy(generator), lr=lr)
    assert isinstance(integrator, openmm.Integrator)
    context = _context(system, positions, integrator=integrator)
    energies = []
    for _ in range(20):
        integrator.step(1)
        energies.append(integrator.getLastEnergy())
    np.testing.assert_allclose(energies, expected, rtol=1e-6)
    assert integrator.getNumStepsTaken() == 20 and context.getStepCount() == 20
    assert integrator.getBestEnergy() == pytest.approx(min(energies), rel=1e-5)
    integrator.applyBestPositions()
    assert _energy(context) == pytest.approx(integrator.getBestEnergy(), rel=1e-9)
    trained = integrator.trained_generator()
    assert not np.allclose(trained.ordered_parameters()[0].detach().numpy(),
                           generator.ordered_parameters()[0].detach().numpy())


def test_compound_integrator_minimize_then_langevin_md(chignolin):
    from openmm_reparam import ReparamIntegrator
    system, positions = chignolin["constrained"], chignolin["positions"]
    reparam = ReparamIntegrator(system, positions, method="gnn", seed=1, n_modes=10, hidden=8, fit_steps=100,
                                lr=2e-3, platform=openmm.Platform.getPlatformByName("CPU"))
    settings = reparam.getSettings()
    assert (settings.lr, settings.clipNorm, settings.collapseDistance, settings.torchThreads) == \
        (2e-3, DEFAULTS.clip_norm, DEFAULTS.collapse_distance, DEFAULTS.torch_threads)
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
    assert reparam.getNumStepsTaken() == 150 and not reparam.getCollapsed()
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


def test_integrator_xml_serialization_round_trip(chignolin):
    from openmm_reparam import ReparamIntegrator
    system, positions = chignolin["free"], chignolin["positions"]
    integrator = ReparamIntegrator.from_generator(_generator("linear", positions), lr=1e-2, clip_norm=500.0,
                                                  collapse_distance=0.05)
    context = _context(system, positions, integrator=integrator)
    integrator.step(5)
    xml = openmm.XmlSerializer.serialize(integrator)
    assert "ReparamIntegrator" in xml
    restored = openmm.XmlSerializer.deserialize(xml)
    assert isinstance(restored, openmm.Integrator)
    assert 'clipNorm="500"' in xml and 'collapseDistance=".05"' in xml and 'lr=".01"' in xml
    other = _context(system, positions, integrator=restored)
    # Same weights: the restored integrator's first step evaluates where the original generator is now.
    restored.step(1)
    integrator.step(1)
    assert _energy(other) == pytest.approx(_energy(context), rel=1e-12)


def test_integrator_on_a_solvated_peptide_moves_water_as_coordinates(solvated):
    from openmm_reparam import ReparamIntegrator
    from openmm_reparam.core.atoms import solvent_mask
    system, start = solvated
    cpu = openmm.Platform.getPlatformByName("CPU")
    integrator = ReparamIntegrator(system, start, method="linear", n_modes=6, platform=cpu)
    assert integrator.getGenerator().hasSolvent()
    context = openmm.Context(system, integrator, cpu, {"Threads": "1"})
    context.setPositions(start)
    context.applyConstraints(1e-6)
    before = _energy(context)
    integrator.step(20)
    integrator.applyBestPositions()
    assert integrator.getBestEnergy() < before and _energy(context) == pytest.approx(integrator.getBestEnergy(),
                                                                                      rel=1e-4, abs=1e-2)
    water = solvent_mask(system)
    assert np.abs(_positions(context)[water] - start[water]).max() > 1e-4
    trained = integrator.trained_generator()
    assert np.abs(trained.solvent_coordinates.detach().numpy() - start[water]).max() > 1e-4  # weights copied back


def test_integrator_collapse_guard_stops_stepping():
    """The integrator stops at the collapsing step, puts the last good point back, and ignores further steps."""
    from openmm_reparam import ReparamIntegrator
    system, positions = _singular_pair()
    integrator = ReparamIntegrator.from_generator(LinearModeGenerator(np.eye(2), positions), lr=0.05)
    context = _context(system, positions, integrator=integrator)
    integrator.step(100)
    assert integrator.getCollapsed()
    taken = integrator.getNumStepsTaken()
    assert 3 < taken < 100 and context.getStepCount() == taken
    x = _positions(context)
    assert np.linalg.norm(x[1] - x[0]) > DEFAULTS.collapse_distance
    assert _energy(context) == pytest.approx(integrator.getBestEnergy(), rel=1e-9)
    integrator.step(10)
    assert integrator.getNumStepsTaken() == taken

    unguarded = ReparamIntegrator.from_generator(LinearModeGenerator(np.eye(2), positions), lr=0.05,
                                                 collapse_distance=0.0)
    context = _context(system, positions, integrator=unguarded)
    unguarded.step(taken)
    assert not unguarded.getCollapsed() and unguarded.getLastEnergy() < -10 / DEFAULTS.collapse_distance


def test_integrator_rejects_run_options(chignolin):
    from openmm_reparam import ReparamIntegrator
    system, positions = chignolin["free"], chignolin["positions"]
    for bad in (dict(steps=10), dict(polish=False), dict(never_worse=True), dict(fine_lr=1e-3),
                dict(patience=5), dict(time_budget=1.0), dict(engine="cpp"), dict(no_such_option=1)):
        with pytest.raises(TypeError, match=next(iter(bad))):
            ReparamIntegrator(system, positions, method="linear", **bad)
    with pytest.raises(TypeError, match="n_modes"):
        ReparamIntegrator.from_generator(_generator("linear", positions), n_modes=5)
    with pytest.raises(ValueError, match="lr"):
        ReparamIntegrator.from_generator(_generator("linear", positions), lr=-1.0)
