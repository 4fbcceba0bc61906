"""Methods as plug-ins: a method defined here, registered from outside the package, runs through ``minimize``,
the command line and ``minimize_many`` (on a real Dask cluster); options are checked per method; ``auto`` is a
function of the registry."""
import contextlib
import io
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import pytest

import openmm_reparam
from openmm_reparam import Method, MinimizerOptions, RunState, StageResult, minimize, register_method
from openmm_reparam.run.registry import get_method, method_names, unregister_method

from conftest import energy_of, load_peptide, make_context, perturbed

DATA = os.path.join(os.path.dirname(__file__), "data")


@dataclass
class DescentOptions:
    """The toy method's own options."""
    descent_steps: int = 20
    descent_step: float = 0.002     # nm: the largest atom move of one step


class DescentMethod(Method):
    """Steepest descent with a fixed largest atom move on the constrained coordinates, then (as every polished method) the polish."""

    name = "descent_test"
    summary = "steepest descent (a test plug-in)"
    option_groups = {"descent": DescentOptions}

    def run(self, state: RunState) -> None:
        options, bridge = state.options.descent, state.bridge
        energy, x, gradient = bridge.evaluate_projected(bridge.current_positions())
        first, steps = energy, 0
        for _ in range(state.recorder.capped(options.descent_steps)):
            trial = x.copy()
            largest = np.sqrt((gradient ** 2).sum(axis=1)).max()
            trial[bridge.movable] -= options.descent_step * gradient / largest
            energy, x, gradient = bridge.evaluate_projected(trial)
            steps += 1
            full = np.zeros_like(x)
            full[bridge.movable] = gradient
            if state.recorder.record("descent", energy, x, full):
                break
        bridge.set_positions(x)
        state.add(StageResult("descent", steps, steps + 1, 0.0, first, energy, stop_reason="max_steps"))


@pytest.fixture
def descent():
    """The plug-in, registered for one test."""
    register_method(DescentMethod)
    yield
    unregister_method("descent_test")


def test_a_registered_method_runs_through_minimize(descent):
    _, system, positions = load_peptide("1plw")
    context = make_context(system, perturbed(positions, 0.02))
    before = energy_of(context)
    assert "descent_test" in openmm_reparam.METHODS and "descent_test" in method_names()
    result = minimize(context, method="descent_test", descent_steps=7, never_worse=False)
    assert result.method == "descent_test" and result.options["descent_steps"] == 7
    assert [s.name for s in result.stages] == ["descent", "polish"]
    descent_stage = result.stage("descent")
    assert descent_stage.iterations == 7 and descent_stage.final_energy < descent_stage.initial_energy
    assert result.converged and energy_of(context) < before
    assert [h.stage for h in result.history][:7] == ["descent"] * 7


def test_options_are_checked_per_method(descent):
    with pytest.raises(TypeError, match=r"'descent_steps' is not used by method 'adam'.*descent_test"):
        MinimizerOptions.from_kwargs(method="adam", descent_steps=3)
    with pytest.raises(TypeError, match=r"'steps' is not used by method 'precon'.*gnn, linear"):
        minimize(make_context(*_small()), method="precon", steps=5)
    with pytest.raises(TypeError, match="unknown minimizer option 'no_such_option'"):
        MinimizerOptions.from_kwargs(method="gnn", no_such_option=1)
    with pytest.raises(ValueError, match="descent_test"):
        register_method(DescentMethod)  # a second registration under the same name needs replace=True
    assert MinimizerOptions.from_kwargs(method="descent_test").descent.descent_step == DescentOptions.descent_step
    with pytest.raises(ValueError, match="method must be one of"):
        get_method("no_such_method")


def _small():
    _, system, positions = load_peptide("1plw")
    return system, perturbed(positions, 0.02)


def test_auto_resolves_through_the_registry_and_warns_of_options_the_choice_does_not_use():
    import openmm
    system, start = _small()
    with pytest.warns(RuntimeWarning, match="option 'adam_lr' has no effect in this run: auto chose method "
                                            "'precon' for this System, which does not use it") as caught:
        result = minimize(make_context(system, start), method="auto", adam_lr=2e-3, declash_steps=5)
    assert [str(w.message) for w in caught if w.category is RuntimeWarning and "no effect" in str(w.message)] \
        == [str(caught[0].message)]  # one, for adam_lr: declash_steps is precon's
    assert result.method == "precon" and result.requested_method == "auto"
    assert result.options["declash_steps"] == 5 and "adam_lr" not in result.options
    periodic = openmm.System()
    periodic.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in np.eye(3) * 2.0))
    periodic.addParticle(1.0)
    force = openmm.NonbondedForce()
    force.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    force.addParticle(0.0, 0.3, 0.5)
    periodic.addForce(force)
    assert get_method("auto").resolve(periodic).name == "lbfgs"  # one particle: nothing repays a set-up
    assert get_method("auto").resolve(system).name == "precon"


def test_a_registered_method_runs_through_the_command_line(descent, tmp_path):
    from openmm_reparam.app.cli import main
    out, report = tmp_path / "out.pdb", tmp_path / "report.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", str(out), "--method", "descent_test",
                       "--option", "descent_steps=4", "--platform", "CPU", "--report", str(report), "--quiet"])
    assert status == 0, stderr.getvalue()
    data = json.loads(report.read_text())
    stages = {s["name"]: s for s in data["stages"]}
    assert data["method_used"] == "descent_test" and stages["descent"]["iterations"] == 4
    assert out.stat().st_size > 0
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        status = main(["minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", str(out), "--method", "adam",
                       "--option", "descent_steps=4", "--platform", "CPU", "--quiet"])
    assert status == 2 and "descent_steps" in stderr.getvalue() and "descent_test" in stderr.getvalue()


def test_a_registered_method_runs_through_minimize_many(descent, tmp_path):
    """The method object travels with each job and is registered on the Dask worker (another process)."""
    pytest.importorskip("distributed")
    rows = openmm_reparam.minimize_many([os.path.join(DATA, "1PLW_model1.pdb")], tmp_path / "out", workers=1,
                                        method="descent_test", descent_steps=3, solvent="obc2", progress=False)
    assert [row["status"] for row in rows] == ["ok"], rows
    report = json.loads(open(rows[0]["report"]).read())
    assert report["method_used"] == "descent_test"
    assert {s["name"]: s["iterations"] for s in report["stages"]}["descent"] == 3
    assert math.isfinite(rows[0]["energy_after"]) and rows[0]["energy_after"] < rows[0]["energy_before"]
