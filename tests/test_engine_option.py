"""The ``engine`` option on real Contexts: each value runs every stage kind where it says (each StageResult names
it, ``result.engine`` sums them up), "python" and "cpp" take the same steps, and a choice the Context or the build
cannot honour ("device" on the CPU platform or with a reporter, "cpp" without the plugin) is a one-line error
before anything moves. The device runs use OpenCL (pocl in CI) and skip without an OpenCL runtime or without the
plugin's OpenCL library."""
from __future__ import annotations

import numpy as np
import openmm
import pytest

import openmm_reparam
from openmm_reparam.core.errors import EngineUnavailableError
from openmm_reparam.engines import compiled
from openmm_reparam.run.options import MinimizerOptions

from conftest import load_peptide, make_context, perturbed, positions_of
from test_cli import CHIGNOLIN, run as run_cli
from test_device_stages import LABEL, _device_ready, opencl_context
from test_device_stages import keep_the_locale  # noqa: F401  (fixture; autouse)

needs_cpp = pytest.mark.skipif(not compiled.cpp_available(), reason="the C++ plugin is not built")
needs_device = pytest.mark.skipif(not _device_ready(), reason="no OpenCL runtime or no OpenCL device library built")

#: Each method and the stages it runs (set-up stages "", OpenMM's L-BFGS "openmm", the others the engine's).
METHODS = {"adam": ["adam"], "fire": ["fire"], "precon": ["declash", "precon"], "linear": ["reparam", "fine"]}
SET_UP = {"precon_setup", "slow_modes", "fit"}
FAST = dict(steps=30, fine_steps=30, adam_steps=30, fire_steps=40, precon_steps=40, polish=False)


@pytest.fixture(scope="module")
def peptide():
    """Chignolin (166 atoms, OBC2, HBonds) 0.02 nm from its prepared structure."""
    _, system, positions = load_peptide("5awl", constraints=openmm.app.HBonds)
    return system, perturbed(positions, 0.02, seed=2)


def _run(context, method, engine, **extra):
    options = {k: v for k, v in FAST.items() if k in MinimizerOptions.known(method)}
    return openmm_reparam.minimize(context, method=method, engine=engine, seed=1, **options, **extra)


def assert_ran_on(result, method, where):
    """Every iterating stage of ``method`` names ``where``; set-up stages name nothing; the run says ``where``."""
    stages = {stage.name: stage for stage in result.stages}
    for name in METHODS[method]:
        assert stages[name].engine == where and stages[name].iterations > 0, stages[name]
    assert all(stage.engine == "" for stage in result.stages if stage.name in SET_UP)
    assert result.engine == where


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("engine", ["python", pytest.param("cpp", marks=needs_cpp)])
def test_each_stage_names_the_host_engine_it_ran_on(peptide, method, engine):
    result = _run(make_context(*peptide, "CPU"), method, engine)
    assert_ran_on(result, method, engine)


@needs_cpp
@pytest.mark.parametrize("method", ["adam", "fire", "precon"])
def test_python_and_cpp_take_the_same_steps(peptide, method):
    """The Python engine is the reference: the compiled stages' energies follow it step by step (the parity
    tests of each stage kind bound it more tightly on their own cases)."""
    runs = {engine: _run(make_context(*peptide, "Reference"), method, engine) for engine in ("python", "cpp")}
    python, cpp = runs["python"], runs["cpp"]
    assert [(s.name, s.iterations) for s in cpp.stages] == [(s.name, s.iterations) for s in python.stages]
    np.testing.assert_allclose([h.energy for h in cpp.history], [h.energy for h in python.history], rtol=1e-6)


def test_lbfgs_stages_name_openmm_and_the_run_names_the_choice(peptide):
    result = openmm_reparam.minimize(make_context(*peptide, "CPU"), method="lbfgs", engine="python")
    assert [(s.name, s.engine) for s in result.stages] == [("lbfgs", "openmm")] and result.engine == "python"


def test_a_polish_by_openmm_and_the_projected_finish_names_both(peptide):
    """OpenMM's L-BFGS rounds, then the projected L-BFGS on the engine chosen: one polish stage, both named."""
    result = openmm_reparam.minimize(make_context(*peptide, "CPU"), method="adam", engine="python", adam_steps=20,
                                     polish_rounds=1, polish_iterations=5)
    polish = result.stage("polish")
    assert polish.engine == "openmm+python" and result.engine == "python"


def test_device_on_the_cpu_platform_is_a_one_line_error_before_the_run(peptide):
    context = make_context(*peptide, "CPU")
    before = positions_of(context)
    with pytest.raises(EngineUnavailableError) as raised:
        openmm_reparam.minimize(context, method="adam", engine="device")
    message = str(raised.value)
    assert "\n" not in message and "engine='device'" in message and "CPU platform" in message
    np.testing.assert_array_equal(positions_of(context), before)


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of"):
        openmm_reparam.ReparamMinimizer(method="adam", engine="gpu")


def test_the_command_line_takes_the_option_and_reports_the_refusal_in_one_line(tmp_path):
    out = tmp_path / "out.pdb"
    status, _, stderr = run_cli("minimize", CHIGNOLIN, "-o", out, "--method", "adam", "--platform", "CPU",
                                "--option", "engine=device")
    assert status == 2 and stderr.startswith("openmm-reparam: error: ") and stderr.count("\n") == 1, stderr
    assert "engine='device'" in stderr and not out.exists()


@pytest.mark.skipif(compiled.cpp_available(), reason="the C++ plugin is built here")
@pytest.mark.parametrize("engine", ["cpp", "device"])
def test_cpp_or_device_without_the_plugin_is_a_one_line_error(peptide, engine):
    with pytest.raises(EngineUnavailableError, match="needs the compiled plugin") as raised:
        openmm_reparam.minimize(make_context(*peptide, "CPU"), method="adam", engine=engine)
    assert "\n" not in str(raised.value)


@needs_device
@pytest.mark.parametrize("method", sorted(METHODS))
def test_device_runs_each_stage_kind_on_the_device(peptide, method):
    assert_ran_on(_run(opencl_context(*peptide, "single"), method, "device"), method, LABEL)


@needs_device
def test_auto_and_cpp_on_an_opencl_context(peptide):
    """auto: the device without a reporter, the host (compiled) with one; cpp: the host either way."""
    seen = []

    class Counting(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            seen.append(iteration)
            return False

    assert_ran_on(_run(opencl_context(*peptide), "fire", "auto"), "fire", LABEL)
    assert_ran_on(_run(opencl_context(*peptide), "fire", "auto", reporter=Counting()), "fire", "cpp")
    assert seen
    assert_ran_on(_run(opencl_context(*peptide), "fire", "cpp"), "fire", "cpp")


@needs_device
def test_device_with_a_reporter_is_a_one_line_error(peptide):
    context = opencl_context(*peptide)
    before = positions_of(context)
    with pytest.raises(EngineUnavailableError, match="cannot call a reporter") as raised:
        openmm_reparam.minimize(context, method="fire", engine="device", reporter=openmm.MinimizationReporter())
    assert "\n" not in str(raised.value)
    np.testing.assert_array_equal(positions_of(context), before)
