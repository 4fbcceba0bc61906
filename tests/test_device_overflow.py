"""The device stages from a severe clash, where OpenMM's fixed-point force sums overflow: OpenCL and CUDA add the
forces as 64-bit integers scaled by 2^32, so a component beyond 2^31 kJ/mol/nm wraps around silently (two CA
atoms of met-enkephalin 0.01 nm apart: 1e21 kJ/mol/nm). The device stages then take that evaluation's energy and
forces from the CPU platform, as OpenMM's own minimizer does (plugin_cpp/platforms/common CpuForceFallback.h),
count them in the outcome (``cpuForceEvaluations``, ``StageResult.cpu_force_evaluations``) and warn. On real
OpenCL Contexts (pocl in CI); skips without an OpenCL runtime or without the plugin's OpenCL library."""
from __future__ import annotations

import numpy as np
import openmm
import pytest

import openmm_reparam
from openmm_reparam.engines import compiled
from openmm_reparam.engines.fire import cpp_fire_settings

from conftest import energy_of, load_peptide, make_context, positions_of
from test_device_stages import LABEL, _device_ready, cpp_settings, opencl_context
from test_device_stages import keep_the_locale  # noqa: F401  (fixture; autouse)
from test_fire import fire_settings

pytestmark = pytest.mark.skipif(not _device_ready(), reason="no OpenCL runtime or no OpenCL device library built")
TOLERANCE = 10.0
FIXED_POINT_LIMIT = 2.0 ** 31  # kJ/mol/nm: where OpenMM's 64-bit fixed-point force sums wrap around


@pytest.fixture(scope="module")
def clash():
    """(System, start): met-enkephalin with the CA of Tyr1 put 0.01 nm from the CA of Met5 (0.82 nm apart
    before), amber14 + OBC2; the force on them is 1e21 kJ/mol/nm."""
    _, system, positions = load_peptide("1plw")
    start = positions.copy()
    start[1] = start[58] + [0.01, 0.0, 0.0]
    return system, start


def forces_of(context: openmm.Context) -> np.ndarray:
    forces = context.getState(getForces=True).getForces(asNumpy=True)
    return np.asarray(forces.value_in_unit(openmm.unit.kilojoule_per_mole / openmm.unit.nanometer))


def test_the_start_overflows_the_device(clash):
    """What the stages guard against: the device's forces at the start are wrapped (at most 2^31 on the two
    atoms), the CPU platform's are 1e21."""
    system, start = clash
    device = forces_of(opencl_context(system, start, "mixed"))
    true = forces_of(make_context(system, start, "CPU"))
    assert np.abs(true).max() > 1e20
    assert np.abs(device).max() <= FIXED_POINT_LIMIT


@pytest.mark.parametrize("stage", ["adam", "fire"])
def test_clash_steps_follow_the_cpu_platforms_forces(clash, stage):
    """Mixed precision: the device stage's first steps from the clash are the host stage's on the CPU platform
    (start energy within 1e-9, the next energies within 1e-6 relative; measured 1e-12 and 1e-10), with the
    overflowed evaluations counted, and the energy down by 13 orders of magnitude after 40 steps. Without the
    fallback the wrapped forces point elsewhere and the second energy is off by orders of magnitude."""
    system, start = clash
    plugin = compiled.plugin()
    device_context, cpu_context = opencl_context(system, start, "mixed"), make_context(system, start, "CPU")
    if stage == "adam":
        device = plugin.runDeviceAdamStage(device_context, cpp_settings(40))
        host = plugin.runAdamStage(cpu_context, None, cpp_settings(40), None)
        device_energies, host_energies = device._energies(), host._energies()
    else:
        settings = cpp_fire_settings(fire_settings(), 40, 0.0)
        device = plugin.runDeviceFireStage(device_context, settings, TOLERANCE)
        host = plugin.runFireStage(cpu_context, settings, TOLERANCE, None)
        device_energies = (device.initialEnergy,) + device._energies()
        host_energies = (host.initialEnergy,) + host._energies()
    assert host.cpuForceEvaluations == 0
    assert device.cpuForceEvaluations >= 3
    assert abs(device_energies[0] - host_energies[0]) <= 1e-9 * host_energies[0]
    assert device_energies[0] > 1e18
    np.testing.assert_allclose(device_energies[1:3], host_energies[1:3], rtol=1e-6)
    assert energy_of(device_context) < 1e-12 * device_energies[0]  # 4e18 -> 1e5 (Adam) or 2e3 (FIRE) kJ/mol


@pytest.mark.parametrize("method", ["adam", "fire"])
def test_method_from_a_clash_ends_low_and_says_it_fell_back(clash, method):
    """Single precision (the CPU platform's forces scaled down to 2^40 kJ/mol/nm for the float sums): method adam
    or fire on OpenCL ends finite, no higher than OpenMM's LocalEnergyMinimizer from the same start (on the CPU
    platform, where it stops at +7e5 kJ/mol; on pocl OpenMM 8.6.1's minimizer segfaults, docs/guide/devices.rst),
    at a true minimum by the CPU platform's double-precision forces (RMS force at most the tolerance), and says it
    fell back: the first stage counts its CPU evaluations and a RuntimeWarning names them. Its energy is not
    compared with the CPU engine's run: single-precision paths from 4e18 kJ/mol differ from run to run (the
    device's float sums are unordered) and settle in neighbouring minima 0.01-1.5% apart."""
    system, start = clash
    context = opencl_context(system, start, "single")
    with pytest.warns(RuntimeWarning, match="fixed-point force range"):
        result = openmm_reparam.minimize(context, method=method)
    lem = make_context(system, start, "CPU")
    openmm.LocalEnergyMinimizer.minimize(lem, TOLERANCE, 0)
    on_cpu = openmm_reparam.minimize(make_context(system, start, "CPU"), method=method)
    first = result.stages[0]
    assert result.engine == LABEL and first.name == method
    assert first.cpu_force_evaluations > 0
    assert on_cpu.stages[0].cpu_force_evaluations == 0
    assert np.isfinite(result.final_energy) and np.all(np.isfinite(positions_of(context)))
    assert result.final_energy <= energy_of(lem)
    assert result.converged
    check = make_context(system, positions_of(context), "CPU")
    assert energy_of(check) <= energy_of(lem)
    assert np.sqrt(np.mean(np.sum(forces_of(check) ** 2, axis=1))) <= TOLERANCE
    assert abs(energy_of(context) - result.final_energy) <= 1e-3 * abs(result.final_energy)
