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

