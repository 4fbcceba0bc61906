"""The device stages' reductions on a System above 3,072 particles, where OpenMM launches fewer work groups than
the stages once assumed: OpenMM caps every kernel launch at ComputeContext::getNumThreadBlocks() groups (12 on
pocl with 2 compute units), and a reduction sized for more groups (one per 256 particles, up to 64) summed
partial results no group had written. Step by step against the host stages on the same kind of Context (OpenCL,
double precision), on a TIP4P-Ew box of 3,600 particles (rigid waters, virtual sites, PME). Skips without an
OpenCL runtime or without the plugin's OpenCL library (CI runs it on pocl)."""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import time

import numpy as np
import pytest

from openmm_reparam.core.bridge import EnergyBridge
from openmm_reparam.engines import compiled
from openmm_reparam.engines.fire import cpp_fire_settings
from openmm_reparam.engines.precon import precon_setup
from openmm_reparam.engines.precon_compiled import cpp_precon_matrix, cpp_precon_settings, iteration_settings
from openmm_reparam.methods.precon import PreconOptions

from conftest import tip4pew_water_box
from test_device_stages import _device_ready, cpp_settings, opencl_context
from test_device_stages import keep_the_locale  # noqa: F401  (fixture; autouse)
from test_fire import fire_settings

pytestmark = pytest.mark.skipif(not _device_ready(), reason="no OpenCL runtime or no OpenCL device library built")
STEPS = 15
TOLERANCE = 10.0


M_PERTURB = -6  # glibc's mallopt parameter: new heap blocks filled with the complement of a byte


@pytest.fixture(scope="module", autouse=True)
def garbage_in_new_buffers():
    """pocl keeps small buffers on the heap, where a new one holds whatever was there: zeros (a partial result no
    work group wrote then does no harm) or old data. glibc's M_PERTURB fills each new block with 0x47 bytes
    instead (1.7e35 as a double), so such a partial result always shows."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallopt(M_PERTURB, 0xB8)
    yield
    libc.mallopt(M_PERTURB, 0)


@pytest.fixture(scope="module")
def water_box():
    """(System, start): 900 TIP4P-Ew waters, 3,600 particles: 15 groups of 256 for the Adam and FIRE stages' sums,
    32 for the precon stage's (3 per movable atom)."""
    system, start = tip4pew_water_box(3.0)
    assert system.getNumParticles() > 3072
    return system, start


def test_adam_steps_match_the_host_stage(water_box):
    """Every step's energy within 1e-9 relative of the host Adam stage's on the same kind of Context (the
    gradient's norm, for the clipping, is one of the sums)."""
    system, start = water_box
    plugin = compiled.plugin()
    device = plugin.runDeviceAdamStage(opencl_context(system, start, "double"), cpp_settings(STEPS))
    host = plugin.runAdamStage(opencl_context(system, start, "double"), None, cpp_settings(STEPS), None)
    assert device.getHistorySize() == host.getHistorySize() == STEPS
    np.testing.assert_allclose(device._energies(), host._energies(), rtol=1e-9)


def test_fire_steps_match_the_host_stage(water_box):
    """Every step's energy within 1e-9 relative of the host FIRE stage's (F.F, F.v, v.v and the largest step
    are sums and a maximum over the work groups)."""
    system, start = water_box
    plugin = compiled.plugin()
    settings = cpp_fire_settings(fire_settings(), STEPS, 0.0)
    device = plugin.runDeviceFireStage(opencl_context(system, start, "double"), settings, TOLERANCE)
    host = plugin.runFireStage(opencl_context(system, start, "double"), settings, TOLERANCE, None)
    assert device.getHistorySize() == host.getHistorySize() == STEPS
    np.testing.assert_allclose(device._energies(), host._energies(), rtol=1e-9)


def test_precon_steps_match_the_host_stage(water_box):
    """Projected L-BFGS (P = mu I): every step's energy within 1e-9 relative of the host PreconStage's (its dot
    products, norms and largest step are reductions over 32 work groups' worth of coordinates)."""
    system, start = water_box
    settings = dataclasses.replace(PreconOptions().stage_settings(None), laplacian=False, rebuild_distance=np.inf,
                                   max_steps=STEPS)
    device_context, host_context = opencl_context(system, start, "double"), opencl_context(system, start, "double")
    precon, _ = precon_setup(EnergyBridge(device_context), settings)
    cpp = cpp_precon_settings(iteration_settings(settings, "precon", STEPS), time.perf_counter())
    matrix, coupled = cpp_precon_matrix(precon), np.flatnonzero(precon.coupled).astype(np.float64)
    device = compiled.plugin().runDevicePreconStage(device_context, cpp, matrix, coupled, TOLERANCE)
    stage = compiled.plugin().PreconStage(host_context, cpp, matrix, coupled, TOLERANCE)
    host = stage.run(STEPS, False, None)
    stage.leaveContext()
    assert device.getHistorySize() == host.getHistorySize() == STEPS
    np.testing.assert_allclose(device._energies(), host._energies(), rtol=1e-9)

