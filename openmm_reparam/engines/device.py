"""Device-resident stages: the Adam stage on the coordinates or on a generator's parameters (the linear generator
X = X0 + V z and the GNN, as device kernels), the FIRE stage and the precon (preconditioned or projected
L-BFGS) stage, with positions, forces, moments, velocities or the L-BFGS memory and the constraint projection on
the Context's device (OpenCL or CUDA), in the plugin's platform libraries (``plugin_cpp/platforms``, one
kernel source on OpenMM's common compute API, a kernel factory per platform as openmm-torch registers its own;
no factory is built for HIP).

The platform libraries are loaded on first use, each only when its OpenMM platform is there (loading the
OpenCL one needs an OpenCL runtime), and register their kernels with that platform. The compiled engine then
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

import ctypes
import os
import warnings
from typing import Any, Dict

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
        _registered[name] = bool(getattr(handle, function)())
    except (OSError, AttributeError):  # a library that does not load, or an older one without the function
        return False
    return _registered[name]


def device_name(context: openmm.Context) -> str:
    """What ``result.engine`` calls the device stages of ``context``'s platform ("opencl", "cuda")."""
    name = context.getPlatform().getName()
    return PLATFORM_LIBRARIES[name][2] if name in PLATFORM_LIBRARIES else name.lower()


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
