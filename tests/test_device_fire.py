"""The device FIRE stage (plugin_cpp/platforms/common CommonDeviceFireKernel, runDeviceFireStage) on real OpenCL
Contexts (OpenCL, or OPENMM_REPARAM_TEST_PLATFORM: see test_device_stages): the host stage's steps to rounding on the same Context, the CPU engine's stage energies in every
precision, constraints held, virtual sites, ``result.engine``. Skips without an OpenCL runtime or without the
plugin's OpenCL library (CI runs it on pocl and fails if it skips)."""
from __future__ import annotations

import numpy as np
import openmm
import pytest

import openmm_reparam
from openmm_reparam.engines import compiled
from openmm_reparam.engines.device import device_fire_available
from openmm_reparam.engines.fire import cpp_fire_settings

from conftest import energy_of, load_peptide, make_context, perturbed, positions_of
from test_device_stages import LABEL, _device_ready, assert_constraints_hold, constraint_error, opencl_context
from test_device_stages import device_cases, keep_the_locale  # noqa: F401  (fixtures; autouse)
from test_fire import fire_settings

pytestmark = pytest.mark.skipif(not _device_ready(), reason="no OpenCL runtime or no OpenCL device library built")
TOLERANCE = 10.0


def settings(max_steps=3000):
    return cpp_fire_settings(fire_settings(), max_steps, 0.0)


@pytest.mark.parametrize("case", ["free", "hbonds", "tip4pew"])
def test_steps_match_the_host_stage(device_cases, case):
    """Same Context kind (OpenCL, double precision): every step's energy within 1e-9 relative (measured 2e-11
    kJ/mol), the same stop, the same point left in the Context."""
    system, start = device_cases[case]
    device, host = opencl_context(system, start, "double"), opencl_context(system, start, "double")
    first = compiled.plugin().runDeviceFireStage(device, settings(), TOLERANCE)
    second = compiled.plugin().runFireStage(host, settings(), TOLERANCE, None)
    assert first.stopReason == second.stopReason == "converged"
    assert first.iterations == second.iterations and first.energyEvaluations == second.energyEvaluations
    np.testing.assert_allclose(first._energies(), second._energies(), rtol=1e-9)
    assert abs(first.finalRmsForce - second.finalRmsForce) <= 1e-6 * second.finalRmsForce
    np.testing.assert_allclose(positions_of(device), positions_of(host), atol=1e-8)
    assert abs(energy_of(device) - first.finalEnergy) <= 1e-6 * abs(first.finalEnergy)
    if system.getNumConstraints():
        assert_constraints_hold(system, positions_of(device), 2e-5)


@pytest.mark.parametrize("precision", ["double", "mixed", "single"])
@pytest.mark.parametrize("case", ["free", "hbonds", "tip4pew"])
def test_method_fire_runs_on_the_device_like_the_cpu_engine(device_cases, case, precision):
    """method fire: the FIRE stage on the device ends within 1e-3 relative of the CPU engine's (measured: within
    7e-6 in all nine device_cases, the same iteration counts). The final energies after the polish are not compared:
    on pocl OpenCL the polish is the projected L-BFGS, which stops once the RMS force meets the tolerance, while
    OpenMM's L-BFGS on CPU keeps descending (met-enkephalin: -774.9 against -804.8 kJ/mol after equal stages)."""
    system, start = device_cases[case]
    context = opencl_context(system, start, precision)
    assert device_fire_available(context, compiled.plugin())
    on_device = openmm_reparam.minimize(context, method="fire")
    on_cpu = openmm_reparam.minimize(make_context(system, start, "CPU"), method="fire")
    assert on_device.engine == LABEL and on_cpu.engine == "cpp"
    fire, reference = on_device.stages[0], on_cpu.stages[0]
    assert fire.name == "fire" and fire.stop_reason == reference.stop_reason == "converged"
    assert abs(fire.final_energy - reference.final_energy) <= 1e-3 * abs(reference.final_energy), \
        (fire.final_energy, reference.final_energy)
    assert on_device.converged


def test_virtual_sites_follow_and_a_reporter_keeps_the_host_stage(device_cases):
    system, start = device_cases["tip4pew"]
    context = opencl_context(system, start)
    outcome = compiled.plugin().runDeviceFireStage(context, settings(200), TOLERANCE)
    assert outcome.finalEnergy < outcome.initialEnergy
    x = positions_of(context)
    context.computeVirtualSites()
    np.testing.assert_allclose(positions_of(context), x, atol=1e-5)

    class Count(openmm.MinimizationReporter):
        calls = 0

        def report(self, iteration, x, grad, args):
            Count.calls += 1
            return False

    result = openmm_reparam.minimize(opencl_context(system, start), method="fire", reporter=Count())
    assert result.engine == "cpp" and Count.calls > 0


@pytest.mark.parametrize("constraints", ["HAngles", "AllBonds"])
def test_large_constraint_groups_match_the_host_stage(constraints):
    """One group of 89 (HAngles) or 76 (AllBonds) constraints, projected by conjugate gradients on the device:
    the same steps as runFireStage (measured 3e-11 kJ/mol apart at the end, 158 and 159 iterations)."""
    _, system, positions = load_peptide("1plw", constraints=getattr(openmm.app, constraints))
    start = perturbed(positions, 0.02)
    device, host = opencl_context(system, start, "double"), opencl_context(system, start, "double")
    first = compiled.plugin().runDeviceFireStage(device, settings(), TOLERANCE)
    second = compiled.plugin().runFireStage(host, settings(), TOLERANCE, None)
    assert first.iterations == second.iterations and first.stopReason == second.stopReason == "converged"
    np.testing.assert_allclose(first._energies(), second._energies(), rtol=1e-9)
    host_error = constraint_error(system, positions_of(host))  # OpenMM's CCMA: about 2x the tolerance here
    assert constraint_error(system, positions_of(device)) <= max(2e-5, 1.01 * host_error)
