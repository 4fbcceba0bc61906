"""The device-resident Adam stage (plugin_cpp/platforms: common kernels, a kernel factory per platform) on real
device Contexts: parity with the host stage and the CPU engine (with and without constraints), constraints held,
virtual sites, periodic images, the Context's velocities kept, and ``result.engine``.

The platform is OpenCL (in CI: pocl on the CPU), or the one named by ``OPENMM_REPARAM_TEST_PLATFORM`` (CUDA in
``benchmarks/device_check.sh``). Skips without that platform or without the plugin's library for it."""
from __future__ import annotations

import locale
import os

import numpy as np
import openmm
import pytest
from openmm import unit

import openmm_reparam
from openmm_reparam.engines import compiled
from openmm_reparam.engines.device import device_adam_available, register_platform

from conftest import energy_of, load_peptide, make_context, perturbed, positions_of, tip4pew_water_box
from test_device_platform import OPENCL


#: The device platform under test and what ``result.engine`` calls it.
PLATFORM = os.environ.get("OPENMM_REPARAM_TEST_PLATFORM", "OpenCL")
LABEL = PLATFORM.lower()


def _platform_works() -> bool:
    if PLATFORM == "OpenCL":
        return OPENCL
    try:
        system = openmm.System()
        system.addParticle(1.0)
        openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(PLATFORM))
    except openmm.OpenMMException:
        return False
    return True


def _device_ready() -> bool:
    return _platform_works() and compiled.cpp_available() and register_platform(PLATFORM)


pytestmark = pytest.mark.skipif(not _device_ready(), reason=f"no {PLATFORM} platform or no device library for it")


@pytest.fixture(autouse=True)
def keep_the_locale():
    """OpenMM's OpenCL platform sets LC_CTYPE to "C" when it creates a Context with PME (pocl 3.1, OpenMM 8.6.1:
    C.UTF-8 before, C after), which turns Python's default text encoding into ASCII for the rest of the process
    (later tests then fail to write non-ASCII text): put it back after each test."""
    saved = locale.setlocale(locale.LC_CTYPE)
    yield
    locale.setlocale(locale.LC_CTYPE, saved)


def opencl_context(system, positions, precision="single"):
    """A Context on the device platform under test (OpenCL unless OPENMM_REPARAM_TEST_PLATFORM says otherwise)."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(PLATFORM),
                             {"Precision": precision})
    context.setPositions(np.asarray(positions) * unit.nanometer)
    return context


def cpp_settings(max_steps=300, **overrides):
    values = dict(name="adam", lr=3e-3, clip_norm=1e3, rel_tol=1e-4, collapse_distance=0.07, spike_factor=1e3,
                  constraint_stiffness=1e5, torch_threads=1, max_steps=max_steps, patience=200, progress_window=0,
                  progress_fraction=0.0, force_tolerance=0.0, time_limit=-1.0)
    values.update(overrides)
    return compiled.fill_cpp_settings(compiled.plugin().AdamStageSettings(), values)


@pytest.fixture(scope="module")
def enkephalin():
    _, system, positions = load_peptide("1plw")
    return system, perturbed(positions, 0.02)


def lem_minimum(system, positions):
    context = make_context(system, positions, "CPU")
    openmm.LocalEnergyMinimizer.minimize(context, 0.1, 0)
    return positions_of(context)


@pytest.fixture(scope="module")
def well_conditioned():
    """Starts 0.002 nm (RMS noise) from an OpenMM L-BFGS minimum, where the host and device trajectories cannot
    fall into different minima: met-enkephalin without and with HBonds, a TIP4P-Ew box."""
    cases = {}
    for name, constraints in (("free", None), ("hbonds", openmm.app.HBonds)):
        _, system, positions = load_peptide("1plw", constraints=constraints)
        cases[name] = (system, perturbed(lem_minimum(system, positions), 0.002))
    system, positions = tip4pew_water_box(1.4)
    cases["tip4pew"] = (system, perturbed(lem_minimum(system, positions), 0.002))
    return cases


@pytest.mark.parametrize("precision", ["double", "mixed", "single"])
@pytest.mark.parametrize("case", ["free", "hbonds", "tip4pew"])
def test_adam_on_the_device_matches_the_cpu_engine(well_conditioned, case, precision):
    """method adam (the device stage, then the polish) within 1e-3 relative of the CPU engine in every precision
    (measured: within 3e-6 in all nine cases). From a rugged start the paths may end in different minima: the
    next test bounds that case."""
    system, start = well_conditioned[case]
    context = opencl_context(system, start, precision)
    assert device_adam_available(context, compiled.plugin())
    on_device = openmm_reparam.minimize(context, method="adam")
    on_cpu = openmm_reparam.minimize(make_context(system, start, "CPU"), method="adam")
    assert on_device.engine == LABEL and on_cpu.engine == "cpp"
    assert on_device.converged and on_cpu.converged
    assert abs(on_device.final_energy - on_cpu.final_energy) <= 1e-3 * abs(on_cpu.final_energy), \
        (on_device.final_energy, on_cpu.final_energy)
    if system.getNumConstraints():
        assert_constraints_hold(system, positions_of(context), 2e-5)


def test_rugged_start_lands_within_the_host_engines_spread(enkephalin):
    """From the 0.02 nm start Adam's path is chaotic: device and host stage on the same Context agree to 1e-7
    kJ/mol at step 100 and differ by 1.4 kJ/mol at step 300, and the host engine alone ends at -784.7 on OpenCL
    and -803.7 kJ/mol on CPU from a 0.005 nm start (different minima). The bound is that spread (3%)."""
    system, start = enkephalin
    device = openmm_reparam.minimize(opencl_context(system, start, "double"), method="adam")
    host = openmm_reparam.minimize(make_context(system, start, "CPU"), method="adam")
    assert device.engine == LABEL and device.final_energy < device.initial_energy
    assert abs(device.final_energy - host.final_energy) <= 0.03 * abs(host.final_energy), \
        (device.final_energy, host.final_energy)


def test_device_stage_lowers_the_energy_like_the_host_stage(enkephalin):
    system, start = enkephalin
    device, host = opencl_context(system, start, "double"), make_context(system, start, "Reference")
    first = compiled.plugin().runDeviceAdamStage(device, cpp_settings(2000))
    second = compiled.plugin().runAdamStage(host, None, cpp_settings(2000), None)
    assert first.bestEnergy < first.initialEnergy and second.bestEnergy < second.initialEnergy
    assert abs(first.initialEnergy - second.initialEnergy) <= 1e-6 * abs(second.initialEnergy)
    assert abs(first.bestEnergy - second.bestEnergy) <= 0.03 * abs(second.bestEnergy)  # chaotic paths
    assert abs(energy_of(device) - first.bestEnergy) <= 1e-6 * abs(first.bestEnergy)  # left at the best point


@pytest.fixture(scope="module")
def device_cases():
    """Met-enkephalin without and with HBonds from a 0.02 nm start, and a TIP4P-Ew box (rigid, virtual sites): the
    cases the device stages' tests share."""
    out = {}
    for name, constraints in (("free", None), ("hbonds", openmm.app.HBonds)):
        _, system, positions = load_peptide("1plw", constraints=constraints)
        out[name] = (system, perturbed(positions, 0.02))
    out["tip4pew"] = tip4pew_water_box(1.4)
    return out


@pytest.fixture(scope="module")
def hbonds():
    _, system, positions = load_peptide("1plw", constraints=openmm.app.HBonds)
    return system, positions


@pytest.mark.parametrize("case", ["free", "hbonds", "tip4pew"])
def test_steps_match_the_host_stage_step_by_step(hbonds, enkephalin, case):
    """The device step is the host's: on the same OpenCL Context in double precision the first 100 energies
    agree to rounding (measured 7e-6 kJ/mol with HBonds; OpenMM's mass-weighted velocity-constraint projection,
    used before, ended at -780 against the host's -805 kJ/mol)."""
    if case == "tip4pew":
        system, start = tip4pew_water_box(1.4)
    else:
        system, start = enkephalin if case == "free" else (hbonds[0], perturbed(hbonds[1], 0.02))
    device, host = opencl_context(system, start, "double"), opencl_context(system, start, "double")
    first = compiled.plugin().runDeviceAdamStage(device, cpp_settings(100, patience=1000))
    second = compiled.plugin().runAdamStage(host, None, cpp_settings(100, patience=1000), None)
    assert first.iterations == second.iterations == 100
    np.testing.assert_allclose(first._energies(), second._energies(), rtol=1e-7, atol=1e-5)
    np.testing.assert_allclose(positions_of(device), positions_of(host), atol=1e-6)


def constraint_error(system, x) -> float:
    """The largest relative constraint error |r - d| / d."""
    errors = [0.0]
    for i in range(system.getNumConstraints()):
        a, b, distance = system.getConstraintParameters(i)
        d = distance.value_in_unit(unit.nanometer)
        errors.append(abs(np.linalg.norm(x[a] - x[b]) - d) / d)
    return max(errors)


def assert_constraints_hold(system, x, tolerance):
    assert constraint_error(system, x) <= tolerance


def test_constraints_hold_and_velocities_are_kept(hbonds):
    system, positions = hbonds
    context = opencl_context(system, perturbed(positions, 0.02))
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    velocities = context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    outcome = compiled.plugin().runDeviceAdamStage(context, cpp_settings(200))
    assert outcome.iterations > 0 and outcome.bestEnergy < outcome.initialEnergy
    assert_constraints_hold(system, positions_of(context), context.getIntegrator().getConstraintTolerance())
    after = context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    np.testing.assert_array_equal(after, velocities)


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
    assert_constraints_hold(system, x, 2e-5)


def test_a_molecule_outside_the_box_stays_in_its_image():
    """A water placed one box vector away is minimized as in place and returned in its own image. (OpenMM wraps
    molecules into the box when it reorders atoms, which it does during a stage only when forced, since no
    integrator step counts; the stage takes the spring and the best point as periodic images in case it does.)"""
    system, start = tip4pew_water_box(1.4)
    shifted = np.array(start, copy=True)
    box = system.getDefaultPeriodicBoxVectors()[0].value_in_unit(unit.nanometer)[0]
    shifted[0:4, 0] += box  # the first water (O, H, H, M) one box length along x
    first = opencl_context(system, start, "double")
    second = opencl_context(system, shifted, "double")
    a = compiled.plugin().runDeviceAdamStage(first, cpp_settings(150))
    b = compiled.plugin().runDeviceAdamStage(second, cpp_settings(150))
    assert abs(a.bestEnergy - b.bestEnergy) <= 1e-4 * abs(a.bestEnergy), (a.bestEnergy, b.bestEnergy)
    moved = positions_of(second)
    assert np.abs(moved[0:4] - shifted[0:4]).max() < 0.3  # moved by the minimization, not by a box vector
    np.testing.assert_allclose(moved[0:4, 0] - box, positions_of(first)[0:4, 0], atol=1e-4)


@pytest.mark.parametrize("constraints", ["HAngles", "AllBonds"])
def test_large_constraint_groups_run_on_the_device(constraints):
    """HAngles and AllBonds join met-enkephalin's constraints into one group (89 and 76): projected by conjugate
    gradients on the device, as the host does. Step by step against the host stage (measured 3e-9 kJ/mol over
    100 steps), and method adam from near a minimum against the CPU engine (measured 7e-6 relative)."""
    _, system, positions = load_peptide("1plw", constraints=getattr(openmm.app, constraints))
    start = perturbed(positions, 0.02)
    device, host = opencl_context(system, start, "double"), opencl_context(system, start, "double")
    first = compiled.plugin().runDeviceAdamStage(device, cpp_settings(100, patience=1000))
    second = compiled.plugin().runAdamStage(host, None, cpp_settings(100, patience=1000), None)
    np.testing.assert_allclose(first._energies(), second._energies(), rtol=1e-8, atol=1e-6)
    # OpenMM's CCMA holds these coupled constraints to about twice the tolerance (measured 2.3e-5 at 1e-5), on
    # the host stage's Context as well: the device's error is bounded by the host's
    tolerance = device.getIntegrator().getConstraintTolerance()
    assert constraint_error(system, positions_of(device)) <= max(tolerance, 1.01 * constraint_error(system, positions_of(host)))
    near = perturbed(lem_minimum(system, positions), 0.002)
    on_device = openmm_reparam.minimize(opencl_context(system, near, "double"), method="adam")
    on_cpu = openmm_reparam.minimize(make_context(system, near, "CPU"), method="adam")
    assert on_device.engine == LABEL and on_device.converged
    assert abs(on_device.final_energy - on_cpu.final_energy) <= 1e-3 * abs(on_cpu.final_energy)


def test_a_reporter_keeps_the_host_stage(enkephalin):
    system, start = enkephalin

    class Count(openmm.MinimizationReporter):
        calls = 0

        def report(self, iteration, x, grad, args):
            Count.calls += 1
            return False

    result = openmm_reparam.minimize(opencl_context(system, start, "double"), method="adam", reporter=Count())
    assert result.engine == "cpp" and Count.calls > 0
    _, constrained, positions = load_peptide("1plw", constraints=openmm.app.HBonds)
    assert device_adam_available(opencl_context(constrained, positions, "single"), compiled.plugin())


@pytest.mark.parametrize("case", ["free", "hbonds"])
@pytest.mark.parametrize("tolerance", [300.0, 100.0])
def test_force_tolerance_stops_where_the_host_stage_stops(device_cases, case, tolerance):
    """forceTolerance (adam_stop_at > 0): the RMS projected force over the movable particles comes back with the
    step's other scalars, and the device stage stops at the host stage's step, at its best point (measured: 32-86
    steps, energies equal to 1e-10 relative)."""
    system, start = device_cases[case]
    device, host = opencl_context(system, start, "double"), opencl_context(system, start, "double")
    settings = cpp_settings(2000, patience=1000, force_tolerance=tolerance)
    first = compiled.plugin().runDeviceAdamStage(device, settings)
    second = compiled.plugin().runAdamStage(host, None, settings, None)
    assert first.stopReason == second.stopReason == "converged"
    assert first.iterations == second.iterations < 2000
    assert first.bestEnergy == pytest.approx(second.bestEnergy, rel=1e-9)
    assert energy_of(device) == pytest.approx(energy_of(host), rel=1e-9)
    context = opencl_context(system, start, "double")
    result = openmm_reparam.minimize(context, method="adam", adam_stop_at=tolerance / 10.0)
    adam = {stage.name: stage for stage in result.stages}["adam"]
    assert result.engine == LABEL and adam.stop_reason == "converged"
