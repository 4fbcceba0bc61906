"""Device-resident stages: the Adam stage on the coordinates with positions, forces and moments on the Context's
device (OpenCL, CUDA, HIP), in the plugin's platform libraries (``plugin_cpp/platforms``, one kernel source on
OpenMM's common compute API, a kernel factory per platform as openmm-torch registers its own).

The platform libraries are loaded on first use, each only when its OpenMM platform is there (loading the
OpenCL one needs an OpenCL runtime), and register their kernels with that platform. The compiled engine then
runs a coordinate Adam stage on the device when the Context's platform has the kernel and no reporter is given
(a reporter needs the positions on the host every step), the System has no constraints and the Context
computes in double precision. ``OPENMM_REPARAM_DEVICE=0`` turns it off, ``OPENMM_REPARAM_DEVICE=all`` drops
the precision rule (for measuring on a GPU).

Why double precision only: on met-enkephalin from a near-minimum start (OpenCL/pocl, Adam then the polish) the
device stage reached -803.3 kJ/mol in double precision against the CPU engine's -803.7 (within 1e-3), but
-796.9 in mixed and -790.6 in single precision, where its Adam stops higher on the float forces.

Why not with constraints yet: the device stage projects the forces with OpenMM's velocity constraints, a
mass-weighted projection, where the host stage projects orthogonally; on met-enkephalin with HBonds (OpenCL,
double precision) the device Adam stopped at -780 kJ/mol against the host's -805, so Systems with constraints
keep the host stage. Without constraints both land within the host's own spread (-780 to -783 kJ/mol on CPU,
Reference and OpenCL in single, mixed and double precision). ``runDeviceAdamStage`` itself handles
constraints (they hold on return) and virtual sites.
"""
from __future__ import annotations

import ctypes
import os
from typing import Dict

import openmm

#: OpenMM platform name -> (library in openmm_reparam/_cpp, its registration function, the name in results)
PLATFORM_LIBRARIES = {"OpenCL": ("libOpenMMReparamOpenCL.so", "registerReparamOpenCLKernels", "opencl"),
                      "CUDA": ("libOpenMMReparamCUDA.so", "registerReparamCUDAKernels", "cuda")}
_registered: Dict[str, bool] = {}


def _library_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_cpp")


def register_platform(name: str) -> bool:
    """Load the platform library for OpenMM platform ``name`` and register its kernels (once); whether it is
    registered. False when the library was not built or the platform is not there."""
    if name in _registered:
        return _registered[name]
    _registered[name] = False
    if name not in PLATFORM_LIBRARIES:
        return False
    library, function, _ = PLATFORM_LIBRARIES[name]
    path = os.path.join(_library_dir(), library)
    try:
        openmm.Platform.getPlatformByName(name)
    except openmm.OpenMMException:
        return False
    if not os.path.exists(path):
        return False
    try:
        handle = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    _registered[name] = bool(getattr(handle, function)())
    return _registered[name]


def device_name(context: openmm.Context) -> str:
    """What ``result.engine`` calls the device stages of ``context``'s platform ("opencl", "cuda")."""
    name = context.getPlatform().getName()
    return PLATFORM_LIBRARIES[name][2] if name in PLATFORM_LIBRARIES else name.lower()


def _precision(context: openmm.Context) -> str:
    platform = context.getPlatform()
    try:
        return platform.getPropertyValue(context, "Precision").lower()
    except openmm.OpenMMException:
        return ""


def device_adam_available(context: openmm.Context, plugin) -> bool:
    """Whether a coordinate Adam stage on ``context`` can run on its device (``plugin``: the SWIG module)."""
    switch = os.environ.get("OPENMM_REPARAM_DEVICE", "1").lower()
    if switch in ("0", "false", "off") or context.getSystem().getNumConstraints() > 0:
        return False
    if switch != "all" and _precision(context) != "double":
        return False
    name = context.getPlatform().getName()
    if not hasattr(plugin, "runDeviceAdamStage") or not register_platform(name):
        return False
    return bool(plugin.deviceAdamAvailable(context))
