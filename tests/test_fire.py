"""Tests of the ``fire`` stage (openmm_reparam/engines/fire.py and the plugin's runFireStage): the Python
reference and the compiled twin take the same steps (energies to 1e-6 over 60 steps, Reference platform, with
and without constraints), constraints stay held, FIRE + the L-BFGS polish converges in vacuum, OBC2 and a TIP3P
box on both engines, the stop rules, a non-finite energy mid-stage, and the settings' field lists match C++."""
from __future__ import annotations

import dataclasses

import numpy as np
import openmm
import pytest
from openmm import app, unit

from conftest import energy_of, load_peptide, make_context, perturbed, positions_of
from openmm_reparam.core.bridge import EnergyBridge
from openmm_reparam.engines import AdamStageSettings
from openmm_reparam.engines import compiled
from openmm_reparam.engines.fire import FireStageSettings, compiled_fire_stage, python_fire_stage
from openmm_reparam.methods.fire import FireOptions
from openmm_reparam.methods.lbfgs import polish
from openmm_reparam.run.options import PolishOptions
from openmm_reparam.run.recorder import RunRecorder

needs_cpp = pytest.mark.skipif(not compiled.cpp_available(), reason=compiled.unavailable_reason() or "no plugin")
STAGES = {"python": python_fire_stage, "cpp": compiled_fire_stage}
TOLERANCE = 10.0


def fire_settings(**overrides) -> FireStageSettings:
    """Method fire's defaults (FireOptions), with overrides."""
    return dataclasses.replace(FireOptions().stage_settings(None), **overrides)


@pytest.fixture(scope="module")
def chignolin():
    """5AWL: OBC2 without and with HBonds constraints, vacuum, and a start with 0.02 nm of seeded noise."""
    _, obc2, positions = load_peptide("5awl")
    topology, hbonds, _ = load_peptide("5awl", constraints=app.HBonds)
    vacuum = app.ForceField("amber14-all.xml").createSystem(topology, nonbondedMethod=app.NoCutoff)
    return {"obc2": obc2, "hbonds": hbonds, "vacuum": vacuum, "start": perturbed(positions, 0.02, seed=1)}


@pytest.fixture(scope="module")
def water_box():
    """TIP3P waters in a 2.2 nm box (about 1k atoms; PME, rigid, HBonds), 0.01 nm of seeded noise."""
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip3p", boxSize=openmm.Vec3(2.2, 2.2, 2.2) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.7 * unit.nanometer, constraints=app.HBonds)
    return system, perturbed(np.array(modeller.positions.value_in_unit(unit.nanometer)), 0.01, seed=3)


def run_stage(engine, system, start, settings, platform="Reference", reporter=None, max_iterations=0):
    """(StageResult, recorder, context, bridge) of one fire stage on a fresh Context."""
    context = make_context(system, start, platform)
    bridge = EnergyBridge(context)
    recorder = RunRecorder(reporter, max_iterations)
    return STAGES[engine](bridge, recorder, TOLERANCE, settings), recorder, context, bridge


def history(recorder) -> np.ndarray:
    return np.array([point.energy for point in recorder.history])


def max_constraint_error(system, positions) -> float:
    """Largest |r_ij − d| / d over the System's constraints."""
    errors = [0.0]
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        d = d.value_in_unit(unit.nanometer)
        errors.append(abs(np.linalg.norm(positions[i] - positions[j]) - d) / d)
    return max(errors)


# -- parity ------------------------------------------------------------------------------------------------
@needs_cpp
@pytest.mark.parametrize("kind,dt_max", [("vacuum", 7e-4), ("hbonds", 7e-4), ("hbonds", 3e-3)])
def test_compiled_stage_takes_the_python_steps(chignolin, kind, dt_max):
    """60 steps (the tolerance out of reach): same energy at every step, same counts, same final point. With
    dt_max = 3e-3 the time step outgrows stability and five P <= 0 resets (half step back) happen."""
    system = chignolin[kind]
    settings = fire_settings(max_steps=60, tolerance_factor=1e-6, dt_max=dt_max)
    python = run_stage("python", system, chignolin["start"], settings)
    cpp = run_stage("cpp", system, chignolin["start"], settings)
    energies = history(python[1])
    assert len(energies) == 60 and energies[-1] < energies[0] - 1000.0  # it really went downhill
    np.testing.assert_allclose(history(cpp[1]), energies, rtol=1e-6)
    for field in ("iterations", "energy_evaluations", "stop_reason"):
        assert getattr(cpp[0], field) == getattr(python[0], field)
    assert cpp[0].stop_reason == "max_steps"
    assert cpp[0].initial_energy == pytest.approx(python[0].initial_energy, rel=1e-12)
    assert cpp[0].final_energy == pytest.approx(python[0].final_energy, rel=1e-6)
    assert cpp[0].final_energy == pytest.approx(min(energies), rel=1e-6)  # left at the lowest point
    assert energy_of(cpp[2]) == pytest.approx(cpp[0].final_energy, rel=1e-9)
    np.testing.assert_allclose(positions_of(cpp[2]), positions_of(python[2]), atol=1e-6)


@needs_cpp
def test_parity_with_a_reporter_and_the_iteration_cap(chignolin):
    """Through the reporter path: the user's reporter sees every step as "fire" with its RMS force; the run's
    iteration cap stops both engines after the same steps."""

    class Collect(openmm.MinimizationReporter):
        def __init__(self):
            super().__init__()
            self.seen = []

        def report(self, iteration, x, grad, args):
            self.seen.append((iteration, args["stage"], args["system energy"], args["rms force"]))
            return False

    runs = {}
    for engine in STAGES:
        reporter = Collect()
        runs[engine] = run_stage(engine, chignolin["hbonds"], chignolin["start"], fire_settings(),
                                 reporter=reporter, max_iterations=25), reporter.seen
    (python, seen), (cpp, cpp_seen) = runs["python"], runs["cpp"]
    assert [s[0] for s in cpp_seen] == list(range(25)) and {s[1] for s in cpp_seen} == {"fire"}
    np.testing.assert_allclose([s[2] for s in cpp_seen], [s[2] for s in seen], rtol=1e-6)
    np.testing.assert_allclose([s[3] for s in cpp_seen], [s[3] for s in seen], rtol=1e-5)
    assert cpp[0].iterations == python[0].iterations == 25


# -- constraints and convergence ------------------------------------------------------------------------
@pytest.mark.parametrize("engine_name", ["python", pytest.param("cpp", marks=needs_cpp)])
def test_constraints_are_held_and_fixed_particles_stay(chignolin, engine_name):
    system, fixed = with_a_fixed_atom(chignolin["hbonds"])
    start = chignolin["start"]
    settings = fire_settings(max_steps=300)
    result, _, context, _ = run_stage(engine_name, system, start, settings)
    final = positions_of(context)
    assert max_constraint_error(system, final) <= 2e-5
    np.testing.assert_array_equal(final[fixed], start[fixed])  # massless: never moved
    assert result.final_energy < result.initial_energy


def with_a_fixed_atom(system: openmm.System):
    """(a copy of ``system`` whose first atom in no constraint is massless, that atom's index)."""
    constrained = {system.getConstraintParameters(k)[n] for k in range(system.getNumConstraints()) for n in (0, 1)}
    fixed = next(i for i in range(system.getNumParticles()) if i not in constrained)
    copy = openmm.XmlSerializer.clone(system)
    copy.setParticleMass(fixed, 0.0)
    return copy, fixed


@pytest.mark.parametrize("kind", ["vacuum", "obc2", "water"])
def test_fire_then_polish_converges(chignolin, water_box, engine, kind):
    """FIRE to half the tolerance, then OpenMM's L-BFGS polish: converged to 10 kJ/mol/nm (forces without their
    constraint components), constraints held."""
    system, start = water_box if kind == "water" else (chignolin[kind], chignolin["start"])
    result, recorder, context, bridge = run_stage(engine, system, start, fire_settings(), platform="CPU")
    assert result.stop_reason == "converged" and result.final_energy < result.initial_energy
    assert bridge.force_norms()[0] <= 0.5 * TOLERANCE * (1 + 1e-9)
    polish(bridge, recorder, TOLERANCE, PolishOptions())
    assert bridge.force_norms()[0] <= TOLERANCE
    assert energy_of(context) <= result.final_energy + 1e-6 * abs(result.final_energy)
    assert max_constraint_error(system, positions_of(context)) <= 2e-5


@pytest.mark.parametrize("kind", ["vacuum", "hbonds", "water"])
def test_minimize_with_method_fire_converges_with_constraints_held(chignolin, water_box, engine, kind):
    """The method as users call it, ``minimize(context, method="fire")``: its fire stage on the run's engine,
    then the polish; converged, constraints held, lower than the start."""
    from openmm_reparam import minimize
    system, start = water_box if kind == "water" else (chignolin[kind], chignolin["start"])
    context = make_context(system, start, "CPU")
    result = minimize(context, method="fire", engine=engine)
    assert result.method == "fire" and [s.name for s in result.stages][:1] == ["fire"]
    assert result.engine == engine and result.stage("fire").stop_reason == "converged"
    assert result.converged and result.final_energy < result.initial_energy
    assert max_constraint_error(system, positions_of(context)) <= 2e-5


# -- stop rules ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine_name", ["python", pytest.param("cpp", marks=needs_cpp)])
def test_deadline_and_reporter_stops(chignolin, engine_name):
    passed = fire_settings(deadline=0.0)
    result, recorder, context, _ = run_stage(engine_name, chignolin["obc2"], chignolin["start"], passed)
    assert (result.stop_reason, result.iterations, len(recorder.history)) == ("deadline", 0, 0)
    np.testing.assert_allclose(positions_of(context), chignolin["start"], atol=1e-12)

    class StopAtFive(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            return iteration == 4

    result, recorder, _, _ = run_stage(engine_name, chignolin["obc2"], chignolin["start"], fire_settings(),
                                       reporter=StopAtFive())
    assert (result.stop_reason, result.iterations) == ("reporter", 5) and recorder.stopped


def singular_pair() -> openmm.System:
    """Two particles: E = 1000 r² − 10 √(r − 0.05), NaN for r < 0.05, minimum near r = 0.053 nm: long steps
    from r = 0.5 nm overshoot into the NaN region."""
    system = openmm.System()
    system.addParticle(1.0)
    system.addParticle(1.0)
    bond = openmm.CustomBondForce("1000*r^2 - 10*sqrt(r - 0.05)")
    bond.addBond(0, 1, [])
    system.addForce(bond)
    return system


@pytest.mark.parametrize("engine_name", ["python", pytest.param("cpp", marks=needs_cpp)])
def test_non_finite_energy_mid_stage_backs_off_and_converges(engine_name):
    """A non-finite trial point is not recorded; the stage returns to the last point with a shorter step."""
    start = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    settings = fire_settings(dt=0.0152, dt_max=0.05, max_step=1.0, tolerance_factor=0.01)
    result, recorder, context, _ = run_stage(engine_name, singular_pair(), start, settings)
    assert result.energy_evaluations > result.iterations + 1  # at least one evaluation was not finite
    assert np.isfinite(history(recorder)).all()
    assert result.stop_reason == "converged"
    final = positions_of(context)
    assert np.linalg.norm(final[1] - final[0]) == pytest.approx(0.0523, abs=1e-3)


@pytest.mark.parametrize("engine_name", ["python", pytest.param("cpp", marks=needs_cpp)])
def test_non_finite_start_raises(engine_name):
    from openmm_reparam.core.errors import NonFiniteEnergyError
    start = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0]])  # r < 0.05: NaN
    with pytest.raises(NonFiniteEnergyError):
        run_stage(engine_name, singular_pair(), start, fire_settings())


@needs_cpp
def test_non_finite_handling_matches():
    start = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    settings = fire_settings(dt=0.0152, dt_max=0.05, max_step=1.0, tolerance_factor=0.01)
    python, cpp = (run_stage(e, singular_pair(), start, settings) for e in STAGES)
    np.testing.assert_allclose(history(cpp[1]), history(python[1]), rtol=1e-9)
    assert cpp[0].energy_evaluations == python[0].energy_evaluations


# -- the settings cross to C++ field by field ----------------------------------------------------------------
def python_names_in_cpp(settings_class) -> set:
    return {"timeLimit" if f.name == "deadline" else compiled.camel_case(f.name)
            for f in dataclasses.fields(settings_class)}


@needs_cpp
@pytest.mark.parametrize("settings_class,cpp_name", [(AdamStageSettings, "AdamStageSettings"),
                                                     (FireStageSettings, "FireStageSettings")])
def test_python_and_cpp_settings_have_the_same_fields(settings_class, cpp_name):
    cpp_fields = getattr(compiled.plugin(), cpp_name).fieldNames()
    assert len(cpp_fields) == len(set(cpp_fields)) == len(dataclasses.fields(settings_class))
    assert set(cpp_fields) == python_names_in_cpp(settings_class)


@needs_cpp
def test_fire_settings_cross_with_their_values_and_unset_ones_are_rejected():
    from openmm_reparam.engines.fire import cpp_fire_settings
    settings = fire_settings(deadline=100.0)
    cpp = cpp_fire_settings(settings, 7, now=90.0)
    assert (cpp.name, cpp.maxSteps, cpp.dtMax, cpp.nDelay, cpp.initialDelay, cpp.timeLimit) == \
        ("fire", 7, settings.dt_max, settings.n_delay, 1, 10.0)
    with pytest.raises(openmm.OpenMMException, match="FireStageSettings.fDec"):
        cpp_fire_settings(dataclasses.replace(settings, f_dec=1.5), 7, now=90.0)
    unset = compiled.plugin().FireStageSettings()
    with pytest.raises(openmm.OpenMMException, match="FireStageSettings.name"):
        unset.validate()
