"""minimize(): every method on a real peptide, the drop-in contract, constraints, TorchForce, determinism."""
import copy
import numpy as np
import openmm
import pytest
from openmm import app, unit

import openmm_reparam
from openmm_reparam.run.registry import options_used
from openmm_reparam import MinimizationResult, ReparamMinimizer, minimize

from conftest import energy_of, lbfgs_energy, load_peptide, make_context, perturbed, positions_of

FAST = dict(steps=300, fine_steps=300, n_modes=12, hidden=16)


@pytest.fixture(scope="module")
def awl_start(awl):
    _, system, positions = awl
    start = perturbed(positions, 0.02, seed=1)
    return system, start, lbfgs_energy(system, start)


@pytest.mark.parametrize("method", ["gnn", "linear", "adam", "lbfgs"])
def test_each_method_lowers_energy_and_meets_tolerance(awl_start, method, engine):
    system, start, reference = awl_start
    context = make_context(system, start)
    before = energy_of(context)
    result = minimize(context, engine=engine, method=method, never_worse=False, **options_used(method, FAST))
    assert isinstance(result, MinimizationResult)
    after = energy_of(context)
    assert result.final_energy == pytest.approx(after, rel=1e-6)
    assert result.initial_energy == pytest.approx(before, rel=1e-6)
    assert after < before
    assert result.converged and result.rms_force <= 10.0
    forces = context.getState(getForces=True).getForces(asNumpy=True)._value
    assert result.rms_force == pytest.approx(np.linalg.norm(forces) / np.sqrt(len(forces)), rel=1e-5)
    assert result.max_force == pytest.approx(np.sqrt((forces ** 2).sum(axis=1)).max(), rel=1e-5)
    if method != "lbfgs":
        # never worse than OpenMM's minimizer from the same start (0.5 % of |E| slack), without the guard
        assert after <= reference + 0.005 * abs(reference)
        names = [s.name for s in result.stages]
        assert names[-1] == "polish" and ("reparam" in names) == (method in ("gnn", "linear"))
    assert result.history and all(np.isfinite(h.energy) for h in result.history)
    assert result.to_dict()["energy_evaluations"] == result.energy_evaluations


def test_never_worse_guard_keeps_the_lower_result(awl_start):
    system, start, reference = awl_start
    context = make_context(system, start)
    result = minimize(context, method="linear", steps=5, fine_steps=5, n_modes=4, never_worse=True)
    assert result.selected in ("method", "baseline")
    if result.selected == "baseline":
        assert result.final_energy == pytest.approx(result.baseline_energy, rel=1e-6)
    assert result.baseline_energy == pytest.approx(reference, rel=1e-3, abs=1.0)
    assert result.final_energy <= result.baseline_energy + 1e-6
    assert result.stages[0].name == "baseline"


def test_quantities_and_simulation_one_liner(plw):
    topology, system, positions = plw
    simulation = app.Simulation(topology, system, openmm.LangevinMiddleIntegrator(300, 1, 0.002),
                                openmm.Platform.getPlatformByName("CPU"))
    simulation.context.setPositions(perturbed(positions, 0.01) * unit.nanometer)
    result = openmm_reparam.minimize_simulation(simulation, tolerance=5 * unit.kilojoule_per_mole / unit.angstrom,
                                                method="adam", adam_steps=200)
    assert result.tolerance == pytest.approx(50.0)
    assert result.rms_force <= 50.0
    simulation.step(50)  # the script carries on with MD in the same Context
    assert np.isfinite(energy_of(simulation.context))


def test_unknown_option_and_method_are_clear_errors():
    with pytest.raises(TypeError, match="unknown minimizer option"):
        ReparamMinimizer(method="gnn", learning_rate=1)
    with pytest.raises(ValueError, match="method must be one of"):
        ReparamMinimizer(method="sgd")


def test_hbond_constraints_are_satisfied(plw, engine):
    _, system, positions = load_peptide("1plw", constraints=app.HBonds)
    context = make_context(system, perturbed(positions, 0.01))
    result = minimize(context, engine=engine, method="gnn", **FAST)
    assert result.converged
    tol = context.getIntegrator().getConstraintTolerance()
    final = positions_of(context)
    for i in range(system.getNumConstraints()):
        a, b, d = system.getConstraintParameters(i)
        r = np.linalg.norm(final[a] - final[b])
        assert abs(r - d.value_in_unit(unit.nanometer)) <= tol * d.value_in_unit(unit.nanometer) + 1e-6


def test_hbond_constraints_without_polish(plw):
    _, system, positions = load_peptide("1plw", constraints=app.HBonds)
    context = make_context(system, perturbed(positions, 0.01))
    before = energy_of(context)
    minimize(context, method="adam", polish=False, never_worse=False, adam_steps=200)
    assert energy_of(context) < before
    final = positions_of(context)
    for i in range(system.getNumConstraints()):
        a, b, d = system.getConstraintParameters(i)
        assert abs(np.linalg.norm(final[a] - final[b]) - d.value_in_unit(unit.nanometer)) < 1e-4


def test_massless_particles_are_never_moved(plw, engine):
    _, system, positions = plw
    system = copy.deepcopy(system)
    system.setParticleMass(0, 0.0)
    start = perturbed(positions, 0.01)
    context = make_context(system, start)
    minimize(context, engine=engine, method="gnn", **FAST)
    np.testing.assert_allclose(positions_of(context)[0], start[0], atol=1e-6)
    assert not np.allclose(positions_of(context)[1:], start[1:], atol=1e-4)


def test_torchforce_term_is_minimized_through_the_same_api(plw, engine):
    torch = pytest.importorskip("torch")
    openmmtorch = pytest.importorskip("openmmtorch")
    _, system, positions = plw
    system = copy.deepcopy(system)
    anchor = torch.tensor(positions[:10], dtype=torch.float32)

    class Tether(torch.nn.Module):
        """Pulls the first ten atoms towards their native positions (a learned-potential stand-in)."""
        def __init__(self):
            super().__init__()
            self.register_buffer("anchor", anchor)

        def forward(self, x):
            return 500.0 * ((x[:10] - self.anchor) ** 2).sum()

    force = openmmtorch.TorchForce(torch.jit.script(Tether()))
    force.setForceGroup(3)
    system.addForce(force)
    start = perturbed(positions, 0.02, seed=4)
    context = make_context(system, start)
    tether_before = context.getState(getEnergy=True, groups={3}).getPotentialEnergy()
    result = minimize(context, engine=engine, method="gnn", **FAST)
    tether_after = context.getState(getEnergy=True, groups={3}).getPotentialEnergy()
    assert result.converged and result.final_energy < result.initial_energy
    assert tether_after < tether_before


class _FailAt(openmm.MinimizationReporter):
    def __init__(self, at, error):
        super().__init__()
        self.at, self.error, self.energies = at, error, []

    def report(self, iteration, x, grad, args):
        self.energies.append(args["system energy"])
        if iteration >= self.at:
            raise self.error
        return False


def test_failure_mid_run_restores_original_positions(plw, engine):
    _, system, positions = plw
    start = perturbed(positions, 0.02)
    context = make_context(system, start)
    with pytest.raises(RuntimeError, match="injected"):
        minimize(context, engine=engine, method="gnn", never_worse=False, reporter=_FailAt(20, RuntimeError("injected")), **FAST)
    np.testing.assert_allclose(positions_of(context), start, atol=1e-6)


def test_interrupt_keeps_best_positions(plw, engine):
    _, system, positions = plw
    start = perturbed(positions, 0.02)
    context = make_context(system, start)
    before = energy_of(context)
    reporter = _FailAt(40, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        minimize(context, engine=engine, method="adam", never_worse=False, reporter=reporter,
                 **options_used("adam", FAST))
    after = energy_of(context)
    assert after < before
    assert after <= min(reporter.energies) + 1e-3 * abs(after)


def test_reporter_sees_every_stage_and_can_stop(plw, engine):
    _, system, positions = plw

    class Stopper(openmm.MinimizationReporter):
        def __init__(self):
            super().__init__()
            self.stages, self.iterations = [], []

        def report(self, iteration, x, grad, args):
            self.stages.append(args["stage"])
            self.iterations.append(iteration)
            assert len(x) == 3 * len(positions) and len(grad) == 3 * len(positions)
            return iteration >= 30

    reporter = Stopper()
    context = make_context(system, perturbed(positions, 0.02))
    result = minimize(context, engine=engine, method="gnn", reporter=reporter, never_worse=False, **FAST)
    assert reporter.iterations == list(range(31))
    assert set(reporter.stages) == {"reparam"} and result.interrupted


def test_reporter_sees_polish_iterations(plw):
    _, system, positions = plw
    seen = []

    class Recorder(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            seen.append((iteration, args["stage"]))
            return False

    context = make_context(system, perturbed(positions, 0.02))
    minimize(context, method="adam", reporter=Recorder(), never_worse=True, adam_steps=50)
    stages = [s for _, s in seen]
    assert stages[0] == "baseline" and "adam" in stages and stages[-1] == "polish"
    assert [i for i, _ in seen] == list(range(len(seen)))


def test_max_iterations_caps_all_stages(plw, engine):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.02))
    result = minimize(context, engine=engine, maxIterations=25, method="gnn", never_worse=False, **FAST)
    assert result.iterations - result.stage("fit").iterations <= 25


def test_nan_start_is_a_clear_error_and_context_unchanged(plw):
    _, system, positions = plw
    context = make_context(system, positions)
    bad = positions.copy()
    bad[3] = bad[4]  # two atoms on top of each other
    context.setPositions(bad * unit.nanometer)
    before = positions_of(context)
    with pytest.raises(openmm_reparam.NonFiniteEnergyError, match="starting structure"):
        minimize(context)
    np.testing.assert_array_equal(positions_of(context), before)


@pytest.mark.parametrize("method", ["gnn", "linear"])
def test_same_seed_same_result(plw, method, engine):
    _, system, positions = plw
    start = perturbed(positions, 0.02, seed=7)
    results = []
    for _ in range(2):
        context = make_context(system, start, "Reference")
        r = minimize(context, engine=engine, method=method, seed=11, steps=60, fine_steps=40, n_modes=8, hidden=8,
                     never_worse=False)
        results.append((r.final_energy, positions_of(context), [h.energy for h in r.history]))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def test_openmm_lbfgs_running_into_nan_is_stopped_and_undone(engine):
    """E = 1000 r² − 10 √(r − 0.05) is NaN for r < 0.05 nm: from r = 0.5 nm OpenMM's first L-BFGS step lands there,
    and without an iteration cap it then iterates NaN coordinates forever. The stage stops at the first NaN and
    leaves finite positions no higher than the start; the polish of ``auto`` goes on to the minimum."""
    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    bond = openmm.CustomBondForce("1000*r^2 - 10*sqrt(r - 0.05)")
    bond.addBond(0, 1, [])
    system.addForce(bond)
    start = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    context = make_context(system, start, "Reference")
    result = minimize(context, method="lbfgs", engine=engine)
    assert result.stages[0].stop_reason == "non-finite" and np.isfinite(positions_of(context)).all()
    assert energy_of(context) == pytest.approx(result.final_energy) and result.final_energy <= result.initial_energy
    context.setPositions(start * unit.nanometer)
    result = minimize(context, engine=engine)
    assert result.converged and np.isfinite(positions_of(context)).all()
    assert 0.05 < np.linalg.norm(positions_of(context)[1] - positions_of(context)[0]) < 0.06
