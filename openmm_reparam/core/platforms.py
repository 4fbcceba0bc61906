"""Which platforms OpenMM's own L-BFGS (``LocalEnergyMinimizer``) can run on, and the platform a run picks when
none is named.

OpenMM's ``LocalEnergyMinimizer`` crashes the process (segmentation fault) on the OpenCL platform when its
device is a CPU runtime: checked with pocl 3.1 (Debian's ``pocl-opencl-icd``) on OpenMM 8.6.1, even on a
two-particle System. A crash cannot be caught, so the rule is decided without calling it: the Context's
platform is "OpenCL" and its OpenCL platform or device is a CPU runtime, by name (``OpenCLPlatformName``
"Portable Computing Language" (pocl), or a device name of pocl's CPU devices, ``pthread-...``/``cpu-...``, or one
containing "CPU"). Everything else (CUDA, HIP, OpenCL on a GPU, CPU, Reference) is assumed to run it.
"""
from __future__ import annotations

import functools
import sys
from typing import Optional, Tuple

import openmm

CPU_RUNTIME_PLATFORMS = ("portable computing language", "pocl")
CPU_DEVICE_PREFIXES = ("pthread-", "cpu-")


class UnsupportedPlatformError(RuntimeError):
    """An OpenMM routine that this package would call cannot run on the Context's platform."""


def is_cpu_opencl(platform_name: str, opencl_platform: str, device: str) -> bool:
    """Whether an OpenCL platform/device pair is a CPU runtime (the module's rule)."""
    if platform_name != "OpenCL":
        return False
    opencl_platform, device = opencl_platform.lower(), device.lower()
    return (any(name in opencl_platform for name in CPU_RUNTIME_PLATFORMS)
            or device.startswith(CPU_DEVICE_PREFIXES) or " cpu" in f" {device}")


def _property(platform: openmm.Platform, context: openmm.Context, name: str) -> str:
    try:
        return platform.getPropertyValue(context, name)
    except openmm.OpenMMException:
        return ""


def openmm_lbfgs_blocker(context: openmm.Context) -> Optional[str]:
    """Why OpenMM's ``LocalEnergyMinimizer`` cannot run on ``context`` (None: it can)."""
    platform = context.getPlatform()
    if platform.getName() != "OpenCL":
        return None
    opencl = _property(platform, context, "OpenCLPlatformName")
    device = _property(platform, context, "DeviceName")
    if not is_cpu_opencl(platform.getName(), opencl, device):
        return None
    return (f"OpenMM's LocalEnergyMinimizer crashes (segmentation fault) on the OpenCL platform with a CPU "
            f"runtime ({opencl or 'unknown OpenCL platform'}, device {device or 'unknown'}); use the CPU platform "
            "for it")


def require_openmm_lbfgs(context: openmm.Context, what: str) -> None:
    """Raise :class:`UnsupportedPlatformError` before ``what`` would call OpenMM's L-BFGS where it crashes."""
    reason = openmm_lbfgs_blocker(context)
    if reason is not None:
        raise UnsupportedPlatformError(f"{what} runs OpenMM's L-BFGS, which cannot run here: {reason}")


@functools.lru_cache(maxsize=1)
def fastest_safe_platform() -> Tuple[openmm.Platform, str]:
    """The platform OpenMM would pick for a plain System (the fastest), unless that is OpenCL on a CPU runtime,
    then the CPU platform. Returns (platform, note): the note says why the fastest was passed over ("" if not).
    Probes the OpenCL device with a one-particle Context (once per process)."""
    platforms = [openmm.Platform.getPlatform(i) for i in range(openmm.Platform.getNumPlatforms())]
    fastest = max(platforms, key=lambda p: p.getSpeed())
    if fastest.getName() != "OpenCL":
        return fastest, ""
    system = openmm.System()
    system.addParticle(1.0)
    try:
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), fastest)
    except openmm.OpenMMException:  # no usable device: OpenMM itself moves on to the next platform
        return fastest, ""
    reason = openmm_lbfgs_blocker(context)
    del context
    if reason is None:
        return fastest, ""
    return (openmm.Platform.getPlatformByName("CPU"),
            "the fastest platform, OpenCL, runs on a CPU runtime here, where OpenMM's L-BFGS crashes: using the CPU "
            "platform (name another with --platform)")


def announce(note: str) -> None:
    """Print a platform note on stderr once per process."""
    if note and note not in _ANNOUNCED:
        _ANNOUNCED.add(note)
        print(f"openmm_reparam: {note}", file=sys.stderr)


_ANNOUNCED: set = set()
