"""The orchestrator: the default method, never_worse, the time budget, options and the engine choice."""
import copy

import numpy as np
import openmm
import pytest
from openmm import app, unit

import openmm_reparam
from openmm_reparam import MinimizerOptions, minimize
from openmm_reparam.methods.auto import MACROMOLECULE_ATOMS
from openmm_reparam.run.profile import SystemProfile
from openmm_reparam.testing import prepared_pdb

from conftest import (energy_of, lbfgs_energy, load_peptide, make_context, perturbed, positions_of,
                      tip4pew_water_box, typical_lbfgs_energy)


def _solvated(topology, positions, box_nm=None, padding_nm=None):
    """(System, start): rigid TIP3P, PME 0.7 nm, HBonds, 0.01 nm of seeded noise."""
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(topology, positions)
    size = dict(boxSize=openmm.Vec3(box_nm, box_nm, box_nm) * unit.nanometer) if box_nm else \
        dict(padding=padding_nm * unit.nanometer)
    modeller.addSolvent(forcefield, model="tip3p", **size)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.7 * unit.nanometer, constraints=app.HBonds)
    return system, perturbed(np.array(modeller.positions.value_in_unit(unit.nanometer)), 0.01, seed=3)


@pytest.fixture(scope="module")
def water_box():
    """A small rigid TIP3P box: a periodic System of small molecules."""
    return _solvated(app.Topology(), [], box_nm=1.6)


@pytest.fixture(scope="module")
def solvated_peptide():
    """Met-enkephalin (75 atoms, more than auto's MACROMOLECULE_ATOMS) in 0.4 nm of TIP3P: the everyday periodic
    case in miniature."""
    pdb = app.PDBFile(prepared_pdb("1plw"))
    return _solvated(pdb.topology, pdb.positions, padding_nm=0.4)


def _check_solvated_result(system, start, context, result, stages):
    assert [s.name for s in result.stages] == stages
    assert result.baseline_energy is None  # the default makes no comparison run
    assert result.converged and result.rms_force <= 10.0
    assert result.final_energy <= typical_lbfgs_energy(system, start) + 0.005 * abs(result.final_energy)
    final = positions_of(context)
    tolerance = context.getIntegrator().getConstraintTolerance()
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        d = d.value_in_unit(unit.nanometer)
        assert abs(np.linalg.norm(final[i] - final[j]) - d) <= 2 * tolerance * d


def test_default_on_a_solvated_peptide_is_adam_then_polish(solvated_peptide, engine):
    system, start = solvated_peptide
    assert SystemProfile.of(system).largest_molecule > MACROMOLECULE_ATOMS
    context = make_context(system, start)
    result = minimize(context, engine=engine)
    assert result.requested_method == "auto" and result.method == "adam"
    _check_solvated_result(system, start, context, result, ["adam", "polish"])


def test_default_on_a_water_box_is_precon(water_box, engine):
    """Only small molecules (waters) in a constrained box: precon, its polish idle."""
    system, start = water_box
    context = make_context(system, start)
    result = minimize(context, engine=engine)
    assert result.requested_method == "auto" and result.method == "precon"
    _check_solvated_result(system, start, context, result, ["declash", "precon_setup", "precon", "polish"])
    assert result.stage("polish").iterations == 0


class CountingReporter(openmm.MinimizationReporter):
    """Remembers the stage of every reported iteration."""

    def __init__(self):
        super().__init__()
        self.stages = []

    def report(self, iteration, x, grad, args):
        self.stages.append(args["stage"])
        return False


def test_default_in_implicit_solvent_is_declash_then_precon_then_polish():
    """A noisy model in OBC2 with HBonds: 20 OpenMM L-BFGS iterations, the preconditioned L-BFGS, the polish;
    converged, constraints held, and (as measured in the everyday suite) no higher than OpenMM's L-BFGS alone."""
    _, system, positions = load_peptide("1plw", constraints=app.HBonds)
    start = perturbed(positions, 0.02)
    context = make_context(system, start)
    counter = CountingReporter()
    result = minimize(context, reporter=counter)
    assert result.method == "precon" and result.requested_method == "auto"
    assert [s.name for s in result.stages] == ["declash", "precon_setup", "precon", "polish"]
    # OpenMM's minimizer repeats a capped pass for each tightening of its constraint penalty; with a reporter
    # the declash's iterations are counted and reported under its name
    declash = result.stage("declash").iterations
    assert 0 < declash <= 5 * 20 and counter.stages.count("declash") == declash and result.converged
    assert result.final_energy <= lbfgs_energy(system, start) + 1.0
    final = positions_of(context)
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        assert abs(np.linalg.norm(final[i] - final[j]) - d._value) <= 2e-5 * d._value


def test_a_minimized_start_pays_no_set_up(plw):
    """A start already converged: the default leaves it where it is after measuring it (one stage, "start", the
    positions unchanged); method precon, which has no such stop, sees its declash iterations reach half the
    tolerance and pays no preconditioner set-up."""
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.02))
    openmm.LocalEnergyMinimizer.minimize(context, 1.0, 0)
    start = positions_of(context)
    result = minimize(context)
    assert [s.name for s in result.stages] == ["start"] and result.converged
    assert np.array_equal(positions_of(context), start)
    context = make_context(system, start)
    result = minimize(context, method="precon")
    assert [s.name for s in result.stages] == ["declash", "polish"] and result.converged


def test_never_worse_selects_the_lower_result(plw):
    _, system, positions = plw
    start = perturbed(positions, 0.02, seed=5)
    for settings in (dict(method="adam", adam_steps=3, polish=False), dict(method="adam", adam_steps=400)):
        context = make_context(system, start)
        result = minimize(context, never_worse=True, **settings)
        assert result.stages[0].name == "baseline"
        assert result.final_energy == pytest.approx(energy_of(context), rel=1e-6)
        assert result.final_energy <= result.baseline_energy + 1e-6 * abs(result.baseline_energy)
        if result.selected == "baseline":
            assert result.final_energy == pytest.approx(result.baseline_energy, rel=1e-6)
        else:
            assert result.selected == "method"
    # three unpolished Adam steps cannot beat L-BFGS; 400 steps and the polish do
    first = minimize(make_context(system, start), never_worse=True, method="adam", adam_steps=3, polish=False)
    assert first.selected == "baseline"


def test_time_budget_is_honoured_within_one_step(plw, engine):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.02))
    budget = 1.0
    result = minimize(context, method="adam", engine=engine, adam_steps=10 ** 6, adam_patience=10 ** 6,
                      time_budget=budget, polish=False)
    stage = result.stage("adam")
    assert stage.stop_reason == "deadline"
    # The deadline is set after the run's set-up (initial energy, engine choice) and before the stage's first
    # step ends, so it is at most the first point's time + budget (history times count from the run's start).
    # Estimating it from the mean step time instead was off by more than a 2.5 ms step on a loaded machine.
    latest_deadline = result.history[0].time + budget
    late = [h for h in result.history if h.stage == "adam" and h.time > latest_deadline]
    assert len(late) <= 1  # only the step under way at the deadline ends after it
    assert stage.iterations > 10  # the stage ran until the deadline, not stopped at once


def test_cg_is_a_deprecated_name_of_linear(plw):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.02))
    with pytest.warns(FutureWarning, match="'cg' is deprecated"):
        result = minimize(context, method="cg", steps=5, fine_steps=5, n_modes=4, engine="python")
    assert result.method == "linear" and result.stage("reparam") is not None


def test_every_option_is_settable_through_minimize_and_validated(plw):
    defaults = MinimizerOptions().to_dict()
    assert {"spike_factor", "polish_rounds", "torch_threads", "progress_window"} <= set(defaults)
    options = MinimizerOptions.from_kwargs(**defaults)
    assert options.to_dict() == defaults
    assert MinimizerOptions.from_kwargs(lr=0.5).reparam.lr == 0.5
    assert MinimizerOptions.from_kwargs(fine_lr=0.25).coordinates.fine_lr == 0.25
    for name, bad in (("spike_factor", 0.0), ("polish_rounds", -1), ("torch_threads", 0),
                      ("progress_fraction", 2.0), ("collapse_distance", -1.0)):
        with pytest.raises(ValueError, match=name):
            MinimizerOptions.from_kwargs(**{name: bad})
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.02))
    result = minimize(context, method="adam", adam_steps=50, polish_rounds=1, spike_factor=10.0,
                      progress_window=10, progress_fraction=0.01)
    assert result.options["polish_rounds"] == 1 and result.options["spike_factor"] == 10.0


def test_progress_rule_ends_a_stalled_stage(plw, engine):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.02), "Reference")
    result = minimize(context, method="adam", engine=engine, adam_steps=5000, adam_patience=10 ** 6,
                      progress_window=20, progress_fraction=0.5, polish=False)
    stage = result.stage("adam")
    assert stage.stop_reason == "stalled" and stage.iterations < 5000
    energies = [h.energy for h in result.history]
    lowest = np.minimum.accumulate(energies)
    drops = lowest[:-20] - lowest[20:]
    assert drops[-1] < 0.5 * drops.max()  # the rule's own condition, on the recorded history


def test_torchforce_with_a_reporter_runs_on_the_python_engine(plw):
    torch = pytest.importorskip("torch")
    openmmtorch = pytest.importorskip("openmmtorch")
    _, system, positions = plw
    system = copy.deepcopy(system)

    class Pull(torch.nn.Module):
        def forward(self, x):
            return 10.0 * (x[:3] ** 2).sum()

    system.addForce(openmmtorch.TorchForce(torch.jit.script(Pull())))
    seen = []

    class Reporter(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            seen.append(args["stage"])
            return False

    context = make_context(system, perturbed(positions, 0.02))
    result = minimize(context, method="adam", adam_steps=30, reporter=Reporter())
    assert result.engine == "python" and "adam" in seen and result.converged
    if openmm_reparam.cpp_available():
        with pytest.raises(ValueError, match="TorchForce"):
            minimize(make_context(system, perturbed(positions, 0.02)), method="adam", engine="cpp",
                     reporter=Reporter())


def test_polish_meets_the_tolerance_on_rigid_tip4p_water():
    """OpenMM's L-BFGS ends by projecting onto the constraints, which on this box left the forces at 15-19
    kJ/mol/nm however often it was rerun; the projected finish brings them under the tolerance, on the
    constraints, with the virtual sites where their parents put them."""
    system, start = tip4pew_water_box(2.0)
    start = start + np.random.default_rng(0).normal(0, 0.002, start.shape)
    context = make_context(system, start)
    result = minimize(context, method="adam", adam_steps=50)
    assert result.converged and result.rms_force <= 10.0
    assert result.stages[-1].name == "polish" and {p.stage for p in result.history} >= {"adam", "polish"}
    final = positions_of(context)
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        assert abs(np.linalg.norm(final[i] - final[j]) - d._value) <= 1e-4 * d._value
    context.computeVirtualSites()
    np.testing.assert_allclose(positions_of(context), final, atol=1e-6)


def test_an_lbfgs_polish_round_that_ends_higher_is_undone():
    """openmmtools' SodiumChlorideCrystal, 0.01 nm of seeded noise: Adam stops near a minimum, and OpenMM's L-BFGS
    from there once put two ions into contact (+655,000 kJ/mol from -434, reporting no iteration). The polish
    takes such a round back and finishes with the projected L-BFGS: lower than the start, converged."""
    testsystems = pytest.importorskip("openmmtools.testsystems")
    crystal = testsystems.SodiumChlorideCrystal()
    x = np.array(crystal.positions.value_in_unit(unit.nanometer))
    start = x + np.random.default_rng(0).normal(0.0, 0.01, x.shape)
    context = make_context(crystal.system, start)
    reference = make_context(crystal.system, start)
    openmm.LocalEnergyMinimizer.minimize(reference, 10.0, 0)
    result = minimize(context, method="adam")
    assert result.final_energy < result.initial_energy and result.converged
    assert result.final_energy <= energy_of(reference) + 1.0
    assert energy_of(context) == pytest.approx(result.final_energy, rel=1e-6)


def test_adam_stops_at_the_force_tolerance_when_asked(water_box, engine):
    """adam_stop_at=0.9: the Adam stage ends ("converged") at the first step whose RMS force (projected off the
    constraints) is at most 0.9 x the tolerance, which then needs no polish; the same rule in both engines."""
    system, start = water_box
    context = make_context(system, start)
    result = minimize(context, method="adam", engine=engine, adam_stop_at=0.9)
    adam = result.stage("adam")
    assert adam.stop_reason == "converged" and adam.iterations < 2000
    assert result.stage("polish").iterations == 0 and result.converged and result.rms_force <= 9.0
    with pytest.raises(ValueError, match="adam_stop_at"):
        minimize(make_context(system, start), method="adam", adam_stop_at=-1.0)
