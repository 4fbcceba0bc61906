"""Stage runners: where each kind of stage of a run iterates, chosen once per run from the ``engine`` option
(:class:`~openmm_reparam.run.options.RunOptions`) by :func:`select_runners`.

    "python"   the reference: every stage in Python (torch autograd, NumPy and SciPy), on any platform
    "cpp"      the compiled plugin on the host (``openmm_reparam._cpp``), the Context's platform evaluating
    "device"   the device stages on the Context's OpenCL or CUDA device (:mod:`.device`)
    "auto"     per stage kind: the device where the Context's platform has that stage and no reporter needs
               the positions on the host every step, else the compiled plugin where it is built, else Python

The kinds: Adam over the coordinates and Adam over a generator's parameters (an engine's ``adam_stage``), FIRE
and the preconditioned or projected L-BFGS (functions of the stage's settings), OpenMM's own L-BFGS
(:class:`.openmm_lbfgs.OpenMMLBFGS`, the same for every choice). The methods call the runner of a kind and never
look at the choice; each runner's :class:`~openmm_reparam.run.result.StageResult` says where it ran.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, List, Protocol

import openmm

from ..core.errors import EngineUnavailableError
from ..run.options import ENGINES
from ..run.result import StageResult
from . import compiled
from .device import device_adam_available, device_fire_available, device_name, device_precon_available
from .fire import compiled_fire_stage, python_fire_stage
from .openmm_lbfgs import OpenMMLBFGS, default_lbfgs
from .precon import precon_stage
from .precon_compiled import compiled_precon_stage
from .python import PythonEngine


#: device stage kinds -> whether the Context's platform has it (the generator stage comes with "adam")
DEVICE_KINDS = {"adam": device_adam_available, "fire": device_fire_available, "precon": device_precon_available}


class AdamRunner(Protocol):
    """An Adam stage over the coordinates (``generator`` None) or a generator's parameters (:mod:`.settings`)."""

    def adam_stage(self, bridge, recorder, generator, settings) -> StageResult: ...


#: (bridge, recorder, tolerance, FireStageSettings) -> StageResult
FireRunner = Callable[..., StageResult]
#: (bridge, recorder, tolerance, PreconSettings, Preconditioner, name="precon") -> StageResult
PreconRunner = Callable[..., StageResult]


@dataclass(frozen=True)
class StageRunners:
    """One runner per stage kind, for one run. ``engine``: the choice resolved ("python", "cpp", or the device's
    name, "opencl" or "cuda"), what ``result.engine`` says when only OpenMM's L-BFGS ran."""
    engine: str
    coordinates: AdamRunner
    generator: AdamRunner
    fire: FireRunner
    precon: PreconRunner
    lbfgs: OpenMMLBFGS


def python_runners() -> StageRunners:
    """Every stage in Python (the reference the others are tested against)."""
    engine = PythonEngine()
    return StageRunners("python", engine, engine, python_fire_stage, precon_stage, default_lbfgs())


def compiled_runners(context: openmm.Context, device_kinds: frozenset = frozenset()) -> StageRunners:
    """Every stage in the compiled plugin, those of ``device_kinds`` ("adam", "fire", "precon") on the device
    of ``context``."""
    adam = compiled.CompiledEngine(on_device="adam" in device_kinds)
    name = device_name(context) if device_kinds == frozenset(DEVICE_KINDS) else "cpp"
    return StageRunners(name, adam, adam,
                        functools.partial(compiled_fire_stage, on_device="fire" in device_kinds),
                        functools.partial(compiled_precon_stage, on_device="precon" in device_kinds),
                        default_lbfgs())


def device_kinds(context: openmm.Context) -> frozenset:
    """The stage kinds the platform of ``context`` runs on its device (empty without the plugin)."""
    if not compiled.cpp_available():
        return frozenset()
    return frozenset(kind for kind, available in DEVICE_KINDS.items() if available(context, compiled.plugin()))


def select_runners(requested: str, context: openmm.Context, runs_torch_autograd: bool = False,
                   has_reporter: bool = False) -> StageRunners:
    """The runners of a run with ``engine=requested`` on ``context``; raises
    :class:`~openmm_reparam.core.errors.EngineUnavailableError` (a ValueError, one line), before anything runs,
    where the choice cannot be honoured (never a silent fallback):

    * ``cpp`` or ``device`` without the compiled plugin (the message says why it is not available);
    * ``device`` on a Context whose platform has no device stages, or with a reporter (it needs the positions
      on the host every step);
    * ``cpp`` or ``device`` with a reporter and a force that runs torch's autograd (``openmmtorch.TorchForce``),
      since the plugin calls the reporter back with the Python lock held and such a force cannot be
      evaluated then (``auto`` picks the Python engine there, and where the plugin is not built).
    """
    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {requested!r}")
    conflict = runs_torch_autograd and has_reporter
    if requested == "python" or (requested == "auto" and (conflict or not compiled.cpp_available())):
        return python_runners()
    if conflict:
        raise EngineUnavailableError(f"engine={requested!r} cannot call a Python reporter while the System has a "
                                     "force that runs torch's autograd (openmmtorch.TorchForce); use "
                                     "engine='python' or 'auto', or no reporter")
    if not compiled.cpp_available():
        reason = " ".join(compiled.unavailable_reason().split())
        raise EngineUnavailableError(f"engine={requested!r} needs the compiled plugin: {reason}")
    if requested == "cpp":
        return compiled_runners(context)
    if requested == "auto":
        return compiled_runners(context, frozenset() if has_reporter else device_kinds(context))
    if has_reporter:
        raise EngineUnavailableError("engine='device' cannot call a reporter every step (it needs the positions "
                                     "on the host): use engine='auto' or 'cpp' with a reporter")
    missing: List[str] = sorted(set(DEVICE_KINDS) - device_kinds(context))
    if missing:
        raise EngineUnavailableError(f"engine='device' needs a Context on a platform with the device stages "
                                     f"(OpenCL or CUDA, with their plugin library built); the "
                                     f"{context.getPlatform().getName()} platform lacks the {', '.join(missing)} "
                                     "stages: use engine='auto' or 'cpp'")
    return compiled_runners(context, frozenset(DEVICE_KINDS))
