"""Device-resident stages: the Adam stage on the coordinates or on a generator's parameters (the linear generator
X = X0 + V z and the GNN, as device kernels), the FIRE stage and the precon (preconditioned or projected
L-BFGS) stage, with positions, forces, moments, velocities or the L-BFGS memory and the constraint projection on
the Context's device (OpenCL or CUDA), in the plugin's platform libraries (``plugin_cpp/platforms``, one
kernel source on OpenMM's common compute API, a kernel factory per platform as openmm-torch registers its own;
no factory is built for HIP).

The platform libraries are OpenMM plugins: each exports ``registerKernelFactories``, which registers its kernels
with its platform when that platform is loaded (and does nothing otherwise), so a C++ program loads one with
``Platform::loadPluginLibrary`` (or keeps it in a folder it hands to ``loadPluginsFromDirectory``) and gets the
device stages with no Python. Here they are loaded on first use, each only when its OpenMM platform is there
(loading the OpenCL one needs an OpenCL runtime); a library that is missing or does not load where its platform
is there is reported once with a RuntimeWarning, and its stages run on the host. The compiled engine then
runs a coordinate or generator Adam stage, :mod:`.fire` a FIRE stage and :mod:`.precon_compiled` a precon
(or projected L-BFGS) stage, on the device, in any precision, where the run's ``engine`` option asks for it
(:mod:`.runners`: ``"device"``, or ``"auto"`` when the Context's platform has the kernel and no reporter is
given, since a reporter needs the positions on the host every step).

Constraints: the device stages project the forces (and FIRE's velocities) orthogonally onto the constraints'
tangent space, exactly as the host stages (``DeviceConstraintProjection``: one dense solve per connected group of
at most 12 constraints, conjugate gradients for larger groups such as HAngles and AllBonds make), and the Adam
stage adds the same spring; on met-enkephalin (OpenCL/pocl, double precision) their energies follow the host
stages' on the same Context step for step (benchmarks/RESULTS.md#device).

Precision: from starts near an L-BFGS minimum method adam ends at the CPU engine's energy in double, mixed and
single precision; the larger gaps seen from rugged starts are Adam's chaotic path amplifying rounding, not a
precision error (benchmarks/RESULTS.md#device). No precision rule is kept.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Dict

import openmm

#: OpenMM platform name -> (plugin library in openmm_reparam/_cpp, the name in results)
PLATFORM_LIBRARIES = {"OpenCL": ("libOpenMMReparamOpenCL.so", "opencl"),
                      "CUDA": ("libOpenMMReparamCUDA.so", "cuda")}
#: The kernels a platform library registers (DeviceAdamStage.h, DeviceFireStage.h, DevicePreconStage.h)
KERNEL_NAMES = ("ReparamDeviceAdamStage", "ReparamDeviceFireStage", "ReparamDevicePreconStage")
_registered: Dict[str, bool] = {}


def _library_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_cpp")


def _has_kernels(platform: openmm.Platform) -> bool:
    return bool(platform.supportsKernels(list(KERNEL_NAMES)))


def _unavailable(name: str, library: str, reason: str) -> bool:
    warnings.warn(f"openmm-reparam: no device stages on the {name} platform: {library} {reason}; "
                  "those stages run on the host", RuntimeWarning, stacklevel=3)
    return False


def register_platform(name: str) -> bool:
    """Load the plugin library for OpenMM platform ``name`` through OpenMM's loader (once), which registers its
    kernels; whether they are registered. False when the platform is not there, and (with a RuntimeWarning,
    once) when the library is missing, does not load or registers nothing although the platform is there."""
    if name in _registered:
        return _registered[name]
    _registered[name] = False
    if name not in PLATFORM_LIBRARIES:
        return False
    try:
        platform = openmm.Platform.getPlatformByName(name)
    except openmm.OpenMMException:
        return False
    library = PLATFORM_LIBRARIES[name][0]
    if not _has_kernels(platform):  # a program may have loaded the plugin already
        path = os.path.join(_library_dir(), library)
        if not os.path.exists(path):
            return _unavailable(name, library, f"was not built (no {path})")
        try:
            openmm.Platform.loadPluginLibrary(path)
        except openmm.OpenMMException as error:
            return _unavailable(name, library, f"did not load ({error})")
        if not _has_kernels(platform):
            return _unavailable(name, library, "loaded but registered no kernels (an older build?)")
    _registered[name] = True
    return True


def device_name(context: openmm.Context) -> str:
    """What ``result.engine`` calls the device stages of ``context``'s platform ("opencl", "cuda")."""
    name = context.getPlatform().getName()
    return PLATFORM_LIBRARIES[name][1] if name in PLATFORM_LIBRARIES else name.lower()


def _device_stage_available(context: openmm.Context, plugin, stage: str) -> bool:
    name = context.getPlatform().getName()
    if not hasattr(plugin, f"runDevice{stage}Stage") or not register_platform(name):
        return False
    return bool(getattr(plugin, f"device{stage}Available")(context))


def device_adam_available(context: openmm.Context, plugin) -> bool:
    """Whether a coordinate Adam stage on ``context`` can run on its device (``plugin``: the SWIG module)."""
    return _device_stage_available(context, plugin, "Adam")


def device_fire_available(context: openmm.Context, plugin) -> bool:
    """Whether a FIRE stage on ``context`` can run on its device (``plugin``: the SWIG module)."""
    return _device_stage_available(context, plugin, "Fire")


def device_precon_available(context: openmm.Context, plugin) -> bool:
    """Whether a (preconditioned or projected) L-BFGS stage on ``context`` can run on its device."""
    return _device_stage_available(context, plugin, "Precon")


def cpu_force_evaluations(stage: str, outcome: Any) -> int:
    """How many evaluations of a device stage's ``outcome`` overflowed the device's fixed-point force sums and
    were computed again on the CPU platform (``cpuForceEvaluations``, plugin_cpp/platforms/common
    CpuForceFallback.h); warns when there were any, since those steps ran at the CPU platform's speed."""
    count = int(outcome.cpuForceEvaluations)
    if count:
        warnings.warn(f"openmm-reparam: stage {stage!r}: the forces of {count} evaluation(s) were beyond the "
                      "device's fixed-point force range (a severe clash); they were computed again on the CPU "
                      "platform, as OpenMM's LocalEnergyMinimizer does", RuntimeWarning, stacklevel=3)
    return count
