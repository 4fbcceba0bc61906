"""The device stages' platform libraries as OpenMM plugins: each exports ``registerKernelFactories`` for OpenMM's
loader, Python loads them through ``openmm.Platform.loadPluginLibrary``, and a library that is missing or does
not load where its platform exists is reported with one RuntimeWarning (the stages then run on the host).

The loader checks run in a fresh Python process each, since a process registers a platform's kernels once."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import openmm
import pytest

from openmm_reparam.engines import device

OPENCL_LIBRARY = os.path.join(device._library_dir(), device.PLATFORM_LIBRARIES["OpenCL"][0])


def _opencl_platform_loaded() -> bool:
    try:
        openmm.Platform.getPlatformByName("OpenCL")
    except openmm.OpenMMException:
        return False
    return True


needs_opencl_library = pytest.mark.skipif(not os.path.exists(OPENCL_LIBRARY),
                                          reason="the OpenCL platform library of the plugin was not built")
needs_opencl_platform = pytest.mark.skipif(not _opencl_platform_loaded(),
                                           reason="OpenMM's OpenCL platform is not loaded (no OpenCL runtime)")

#: Registers the OpenCL platform twice with the plugin folder replaced by argv[1] (None: the package's own);
#: prints whether it registered, the RuntimeWarnings and whether the platform has the kernels.
REGISTER = """
import json, sys, warnings
import openmm
from openmm_reparam.engines import device
if sys.argv[1] != "None":
    device._library_dir = lambda: sys.argv[1]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    results = [device.register_platform("OpenCL"), device.register_platform("OpenCL")]
platform = openmm.Platform.getPlatformByName("OpenCL")
print(json.dumps({"registered": results, "kernels": platform.supportsKernels(list(device.KERNEL_NAMES)),
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]}))
"""


def register_in_fresh_process(folder) -> dict:
    done = subprocess.run([sys.executable, "-c", REGISTER, str(folder)], capture_output=True, text=True,
                          timeout=300, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_opencl_library
def test_opencl_library_exports_register_kernel_factories():
    tool = shutil.which("nm")
    command = [tool, "-D", "--defined-only", OPENCL_LIBRARY] if tool else ["readelf", "--dyn-syms", "-W",
                                                                            OPENCL_LIBRARY]
    symbols = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    assert "registerKernelFactories" in symbols
    assert not any(name.startswith("registerReparam") for name in symbols)  # no private entry point any more


@needs_opencl_library
@needs_opencl_platform
def test_plugin_loads_through_openmms_loader_without_warnings():
    result = register_in_fresh_process(None)
    assert result == {"registered": [True, True], "kernels": True, "warnings": []}


@needs_opencl_platform
def test_missing_library_warns_once(tmp_path):
    result = register_in_fresh_process(tmp_path)
    assert result["registered"] == [False, False] and not result["kernels"]
    assert len(result["warnings"]) == 1
    assert "libOpenMMReparamOpenCL.so was not built" in result["warnings"][0]
    assert str(tmp_path) in result["warnings"][0]


@needs_opencl_platform
def test_unloadable_library_warns_once_with_the_reason(tmp_path):
    (tmp_path / "libOpenMMReparamOpenCL.so").write_text("not a shared library\n")
    result = register_in_fresh_process(tmp_path)
    assert result["registered"] == [False, False] and not result["kernels"]
    assert len(result["warnings"]) == 1
    message = result["warnings"][0]
    assert "libOpenMMReparamOpenCL.so did not load" in message and "Error loading library" in message


def test_absent_platform_is_quietly_unregistered(recwarn):
    assert device.register_platform("NoSuchPlatform") is False
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def _device_counts():
    from openmm_reparam.engines import compiled
    counts = compiled.plugin().getDeviceStageCounts()
    return counts.kernelsCreated, counts.programsCompiled


@needs_opencl_library
@needs_opencl_platform
def test_stage_kernels_are_kept_per_context_and_compiled_once():
    """FIRE twice and precon with rebuilds of P on one Context: one kernel and one program per stage kind; a new
    Context gets its own."""
    from test_device_precon import stage_settings
    from test_device_stages import _device_ready, device_cases, opencl_context  # noqa: F401
    from openmm_reparam.core.bridge import EnergyBridge
    from openmm_reparam.engines.precon import precon_setup
    from openmm_reparam.engines.precon_compiled import compiled_precon_stage
    from openmm_reparam.run.recorder import RunRecorder
    from conftest import load_peptide, perturbed
    if not _device_ready():
        pytest.skip("no usable OpenCL device")
    _, system, positions = load_peptide("1plw", constraints=openmm.app.HBonds)
    start = perturbed(positions, 0.02)
    context = opencl_context(system, start, "double")
    before = _device_counts()
    first = openmm_reparam_minimize(context, "fire")
    after_first = _device_counts()
    assert after_first == (before[0] + 1, before[1] + 1) and first.stage("fire").engine == "opencl"
    context.setPositions(start)
    openmm_reparam_minimize(context, "fire")
    assert _device_counts() == after_first
    settings = stage_settings(rebuild_distance=0.05, max_steps=40, tolerance_factor=1e-4)
    bridge = EnergyBridge(context)
    precon, _ = precon_setup(bridge, settings)
    result = compiled_precon_stage(bridge, RunRecorder(None), 10.0, settings, precon, on_device=True)
    assert result.iterations == 40 and result.energy_evaluations > 41  # rebuilt P: one evaluation more each
    assert _device_counts() == (after_first[0] + 1, after_first[1] + 1)  # one precon kernel, compiled once
    del bridge, context
    other = opencl_context(system, start, "double")
    openmm_reparam_minimize(other, "fire")
    assert _device_counts() == (after_first[0] + 2, after_first[1] + 2)


def openmm_reparam_minimize(context, method):
    import openmm_reparam
    result = openmm_reparam.minimize(context, method=method, engine="device")
    assert result.final_energy < result.initial_energy
    return result
