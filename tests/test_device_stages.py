"""The device-resident Adam stage (plugin_cpp/platforms: common kernels, OpenCL factory) on real OpenCL
Contexts: parity with the CPU engine, constraints held, virtual sites, the Context's velocities kept, and
``result.engine``. Skips without an OpenCL runtime or without the plugin's OpenCL library."""
from __future__ import annotations

import numpy as np
import openmm
import pytest
from openmm import unit

import openmm_reparam
from openmm_reparam.engines import compiled
from openmm_reparam.engines.device import device_adam_available, register_platform

from conftest import energy_of, load_peptide, make_context, perturbed, positions_of, tip4pew_water_box
from test_device_platform import OPENCL


def _device_ready() -> bool:
    return OPENCL and compiled.cpp_available() and register_platform("OpenCL")


pytestmark = pytest.mark.skipif(not _device_ready(), reason="no OpenCL runtime or no OpenCL device library built")


def opencl_context(system, positions, precision="single"):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("OpenCL"),
                             {"Precision": precision})
    context.setPositions(np.asarray(positions) * unit.nanometer)
    return context


def cpp_settings(max_steps=300, **overrides):
    values = dict(name="adam", lr=3e-3, clip_norm=1e3, rel_tol=1e-4, collapse_distance=0.07, spike_factor=1e3,
                  constraint_stiffness=1e5, torch_threads=1, max_steps=max_steps, patience=200, progress_window=0,
                  progress_fraction=0.0, time_limit=-1.0)
    values.update(overrides)
    return compiled.fill_cpp_settings(compiled.plugin().AdamStageSettings(), values)


@pytest.fixture(scope="module")
def enkephalin():
    _, system, positions = load_peptide("1plw")
    return system, perturbed(positions, 0.02)


def test_adam_runs_on_the_device_and_matches_the_cpu_engine(enkephalin):
    """From a start near a minimum (0.005 nm noise) both land in it: energies within 1e-3 relative in double
    precision (in mixed it stopped at -796.9 and in single at -790.6 against the CPU engine's -803.7 kJ/mol, so the
    engine uses the device only in double precision, :mod:`openmm_reparam.engines.device`). From the
    rugged 0.02 nm start they need not (measured: device -782.7, CPU engine -780.0, Reference engine -783.2 kJ/mol:
    the host engine's own spread across platforms), which the next test bounds instead."""
    system = enkephalin[0]
    start = perturbed(load_peptide("1plw")[2], 0.005)
    device = opencl_context(system, start, "double")
    assert device_adam_available(device, compiled.plugin())
    on_device = openmm_reparam.minimize(device, method="adam")
    on_cpu = openmm_reparam.minimize(make_context(system, start, "CPU"), method="adam")
    assert on_device.engine == "opencl" and on_cpu.engine == "cpp"
    assert on_device.converged and on_cpu.converged
    assert abs(on_device.final_energy - on_cpu.final_energy) <= 1e-3 * abs(on_cpu.final_energy), \
        (on_device.final_energy, on_cpu.final_energy)


def test_rugged_start_lands_within_the_host_engines_spread(enkephalin):
    system, start = enkephalin
    device = openmm_reparam.minimize(opencl_context(system, start, "double"), method="adam").final_energy
    hosts = [openmm_reparam.minimize(make_context(system, start, name), method="adam").final_energy
             for name in ("CPU", "Reference")]
    margin = 1e-3 * abs(min(hosts))
    assert min(hosts) - margin <= device <= max(hosts) + margin, (device, hosts)


def test_device_stage_lowers_the_energy_like_the_host_stage(enkephalin):
    system, start = enkephalin
    device, host = opencl_context(system, start, "double"), make_context(system, start, "Reference")
    first = compiled.plugin().runDeviceAdamStage(device, cpp_settings(2000))
    second = compiled.plugin().runAdamStage(host, None, cpp_settings(2000), None)
    assert first.bestEnergy < first.initialEnergy and second.bestEnergy < second.initialEnergy
    assert abs(first.initialEnergy - second.initialEnergy) <= 1e-6 * abs(second.initialEnergy)
    assert abs(first.bestEnergy - second.bestEnergy) <= 0.01 * abs(second.bestEnergy)
    assert abs(energy_of(device) - first.bestEnergy) <= 1e-6 * abs(first.bestEnergy)  # left at the best point


def test_constraints_hold_and_velocities_are_kept():
    _, system, positions = load_peptide("1plw", constraints=openmm.app.HBonds)
    context = opencl_context(system, perturbed(positions, 0.02))
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    velocities = context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    outcome = compiled.plugin().runDeviceAdamStage(context, cpp_settings(200))
    assert outcome.iterations > 0 and outcome.bestEnergy < outcome.initialEnergy
    x = positions_of(context)
    for i in range(system.getNumConstraints()):
        a, b, distance = system.getConstraintParameters(i)
        assert abs(np.linalg.norm(x[a] - x[b]) - distance.value_in_unit(unit.nanometer)) < 1e-4 * distance._value + 1e-6
    after = context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    np.testing.assert_allclose(after, velocities, atol=1e-5)


def test_virtual_sites_follow_their_atoms():
    system, start = tip4pew_water_box(1.4)
    context = opencl_context(system, start)
    outcome = compiled.plugin().runDeviceAdamStage(context, cpp_settings(100))
    assert outcome.bestEnergy < outcome.initialEnergy
    x = positions_of(context)
    context.computeVirtualSites()
    np.testing.assert_allclose(positions_of(context), x, atol=1e-5)
    sites = [i for i in range(system.getNumParticles()) if system.isVirtualSite(i)]
    assert sites and np.all(np.isfinite(x[sites]))


def test_a_reporter_constraints_or_single_precision_keep_the_host_stage(enkephalin):
    system, start = enkephalin

    class Count(openmm.MinimizationReporter):
        calls = 0

        def report(self, iteration, x, grad, args):
            Count.calls += 1
            return False

    result = openmm_reparam.minimize(opencl_context(system, start, "double"), method="adam", reporter=Count())
    assert result.engine == "cpp" and Count.calls > 0
    assert not device_adam_available(opencl_context(system, start, "single"), compiled.plugin())
    _, constrained, positions = load_peptide("1plw", constraints=openmm.app.HBonds)
    assert not device_adam_available(opencl_context(constrained, positions), compiled.plugin())
