"""The compiled engine: one Adam stage in C++ (``runAdamStage``), without Python in the loop.

The plugin (plugin_cpp/, built by ``pip install`` into ``openmm_reparam/_cpp/``) evaluates the same generators
with libtorch and takes its weights from :func:`openmm_reparam.reparam.generators.export_state`, so both engines
compute the same function with the same Adam arithmetic and the same stage rules (:mod:`.python` is the
reference; the contract is :mod:`.settings`). A user's generator runs as its TorchScript (:mod:`.torchscript`)
when ``torch.jit.script`` compiles it, on the Python engine otherwise.

    cpp_available()            -> True when the plugin was built and loads
    CompiledEngine().adam_stage(bridge, recorder, generator, settings) -> StageResult
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from typing import Any, Mapping, Optional, Tuple

import numpy as np
import openmm
import torch  # noqa: F401  (libtorch must be loaded before the plugin library)

from ..core.bridge import EnergyBridge
from ..run.recorder import RunRecorder
from ..run.result import StageResult
from .device import cpu_force_evaluations, device_name
from .recording import RecordingReporter
from .settings import AdamStageSettings
from .torchscript import NotScriptableError, runs_as_torchscript, to_cpp_torchscript


_plugin = None
_import_error: Optional[BaseException] = None


def _load():
    """Import the SWIG module once; remember why it failed if it did."""
    global _plugin, _import_error
    if _plugin is None and _import_error is None:
        try:
            from .._cpp import reparamplugin
            if not hasattr(reparamplugin, "runAdamStage"):
                raise ImportError("the compiled plugin is stale (no runAdamStage): rebuild with `pip install -e .`")
            _plugin = reparamplugin
        except Exception as error:  # ImportError, or OSError from a library that does not load
            _import_error = error
    return _plugin


def cpp_available() -> bool:
    """Whether the compiled plugin is built and importable."""
    return _load() is not None


def unavailable_reason() -> str:
    """Why :func:`cpp_available` is False ("" when it is True)."""
    _load()
    if _plugin is not None:
        return ""
    reason = f"openmm_reparam C++ plugin not available: {_import_error!r}"
    marker = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_cpp", "BUILD_ERROR.txt")
    if os.path.exists(marker):
        with open(marker) as handle:
            reason += "; setup.py: " + handle.read().strip()
    return reason


def plugin():
    """The SWIG module ``reparamplugin``; raises ImportError when the plugin is not built."""
    module = _load()
    if module is None:
        raise ImportError(unavailable_reason())
    return module


# -- generators --------------------------------------------------------------------------------------------
def _shape(array: np.ndarray) -> Tuple[int, int]:
    """(rows, cols) as the C++ API takes them: cols = 0 for a 1-D array."""
    if array.ndim == 0:
        return 1, 0
    if array.ndim == 1:
        return array.shape[0], 0
    return array.shape[0], int(np.prod(array.shape[1:]))


def compiles(generator: torch.nn.Module) -> bool:
    """Whether the plugin has ``generator``'s function built in (also as device kernels): GNNGenerator,
    LinearModeGenerator, or a SoluteGenerator around one. A user's network (:mod:`openmm_reparam.reparam.custom`)
    runs as its TorchScript on the host (:mod:`.torchscript`), or in Python when TorchScript cannot compile it."""
    from ..reparam.generators import GNNGenerator, LinearModeGenerator
    from ..reparam.solute import SoluteGenerator
    inner = generator.inner if isinstance(generator, SoluteGenerator) else generator
    return isinstance(inner, (GNNGenerator, LinearModeGenerator))


def to_cpp_generator(generator_or_state):
    """A ``reparamplugin.ReparamGenerator`` computing the same function as a Python generator (GNNGenerator,
    LinearModeGenerator, a user's CustomGenerator as its TorchScript, or a SoluteGenerator around one) or the dict
    returned by ``generators.export_state``. A user's network TorchScript cannot compile raises
    :class:`.torchscript.NotScriptableError`."""
    from ..reparam.custom import CustomGenerator
    from ..reparam.generators import export_state
    from ..reparam.solute import SoluteGenerator
    if isinstance(generator_or_state, CustomGenerator):
        return to_cpp_torchscript(generator_or_state, plugin())
    if not isinstance(generator_or_state, Mapping) and not compiles(generator_or_state) \
            and not runs_as_torchscript(generator_or_state):
        raise TypeError(f"the compiled plugin runs the gnn and linear generators and a CustomGenerator only, not "
                        f"{getattr(generator_or_state, 'kind', type(generator_or_state).__name__)!r}")
    if isinstance(generator_or_state, SoluteGenerator):
        return _solute_to_cpp(generator_or_state)
    state = generator_or_state if isinstance(generator_or_state, Mapping) else export_state(generator_or_state)
    module = plugin()
    cpp = module.ReparamGenerator(state["kind"])
    buffers = ["modes"] + (["center", "residual"] if state["kind"] == "gnn" else ["x0"])
    for name in buffers:
        values = np.ascontiguousarray(state[name], dtype=np.float64)
        cpp.setBuffer(name, values.ravel(), *_shape(values))
    if state["kind"] == "gnn":
        cpp.setScale(float(state["scale"]))
    for name, values in zip(state["parameter_names"], state["parameters"]):
        values = np.ascontiguousarray(values, dtype=np.float64)
        cpp.addParameter(name, values.ravel(), *_shape(values))
    cpp.validate()
    return cpp


def _solute_to_cpp(generator):
    """The C++ twin of a SoluteGenerator: its inner generator over the solute, the solvent coordinates last."""
    cpp = to_cpp_generator(generator.inner)
    coordinates = generator.solvent_coordinates.detach().cpu().numpy().astype(np.float64)
    cpp.setSolvent([int(i) for i in generator.solute_index.cpu().numpy()],
                   [int(i) for i in generator.solvent_index.cpu().numpy()], coordinates.ravel())
    cpp.validate()
    return cpp


def copy_weights_back(cpp_generator, generator: torch.nn.Module) -> None:
    """Write the C++ generator's (trained) parameters into the Python generator, in the shared order."""
    with torch.no_grad():
        for index, parameter in enumerate(generator.ordered_parameters()):
            values = np.asarray(cpp_generator._getParameterValues(index), dtype=np.float64)
            parameter.copy_(torch.as_tensor(values.reshape(tuple(parameter.shape)), dtype=parameter.dtype))


# -- the engine --------------------------------------------------------------------------------------------
def camel_case(name: str) -> str:
    """``clip_norm`` -> ``clipNorm``: a Python settings field as its C++ twin is named."""
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def fill_cpp_settings(cpp, values: Mapping[str, Any], now: Optional[float] = None):
    """Set each ``values`` entry (snake_case names) on the C++ settings object ``cpp`` (camelCase fields), each
    converted to its C++ field's type (the Python type of the unset value: float, int or str); ``deadline`` (a
    ``time.perf_counter()`` value or None) becomes ``timeLimit``, seconds left after ``now`` (< 0: none).
    A name the C++ class lacks raises AttributeError (SWIG would otherwise add a Python attribute silently)."""
    for name, value in values.items():
        if name == "deadline":
            cpp.timeLimit = -1.0 if value is None else max(0.0, float(value) - float(now))
            continue
        attribute = camel_case(name)
        if not hasattr(cpp, attribute):
            raise AttributeError(f"{type(cpp).__name__} has no field {attribute} (for {name})")
        setattr(cpp, attribute, type(getattr(cpp, attribute))(value))
    return cpp


def cpp_step_settings(**values: float):
    """A ``reparamplugin.AdamStageSettings`` with the step fields set from ``lr, clip_norm, rel_tol,
    collapse_distance, spike_factor, constraint_stiffness, torch_threads`` (all required: C++ has no defaults)."""
    cpp = fill_cpp_settings(plugin().AdamStageSettings(), values)
    cpp.validateStep()
    return cpp


def cpp_stage_settings(settings: AdamStageSettings, max_steps: int, now: float):
    """``settings`` as the C++ struct, field by field, with ``max_steps`` (the iteration cap applied) and the
    deadline turned into seconds left after ``now`` (a ``time.perf_counter()`` value)."""
    values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}
    values["max_steps"] = max_steps
    cpp = fill_cpp_settings(plugin().AdamStageSettings(), values, now)
    cpp.validate()
    return cpp


def compiled_stop_reason(outcome, recorder: RunRecorder) -> str:
    """A compiled stage's stop reason, where "reporter" (the recording reporter asked to stop) says why the run
    must stop: "interrupted" when Ctrl-C asked for it."""
    reason = str(outcome.stopReason)
    return recorder.stop_reason if reason == "reporter" else reason


class CompiledEngine:
    """Adam stages in the compiled plugin (``runAdamStage``); see :mod:`.settings` for the contract. With
    ``on_device`` a stage on the coordinates (``runDeviceAdamStage``) or on a generator
    (``runDeviceGeneratorStage``: the linear generator and the GNN as device kernels) runs on the Context's
    device: the caller checked that the platform has the kernel and that no reporter is given
    (:mod:`.runners`); the StageResult then names the device ("opencl", "cuda") instead of "cpp". A user's
    network runs as its TorchScript in the host C++ stage (engine "cpp", also on a device Context); one that
    TorchScript cannot compile runs its stage on the Python engine, with a RuntimeWarning saying why; the
    StageResult then says "python"."""

    name = "cpp"

    def __init__(self, on_device: bool = False):
        self.on_device = on_device

    def adam_stage(self, bridge: EnergyBridge, recorder: RunRecorder, generator: Optional[torch.nn.Module],
                   settings: AdamStageSettings) -> StageResult:
        if generator is not None and not compiles(generator) and not runs_as_torchscript(generator):
            return self._in_python(bridge, recorder, generator, settings, "not a CustomGenerator")
        try:
            cpp_generator = to_cpp_generator(generator) if generator is not None else None
        except NotScriptableError as why:
            return self._in_python(bridge, recorder, generator, settings, str(why))
        steps = recorder.capped(settings.max_steps)
        if recorder.stopped and steps > 0:
            return StageResult(settings.name, stop_reason=recorder.stop_reason, engine=self.name)
        reporter = RecordingReporter(recorder, settings.name) if recorder.reporter is not None else None
        stage_start = time.perf_counter()
        cpp_settings = cpp_stage_settings(settings, steps, stage_start)
        # the device kernels have the built-in generators; a user's network (TorchScript) runs on the host
        on_device = self.on_device and reporter is None and (generator is None or compiles(generator))
        if on_device and generator is not None:
            outcome = plugin().runDeviceGeneratorStage(bridge.context, cpp_generator, cpp_settings)
        elif on_device:
            outcome = plugin().runDeviceAdamStage(bridge.context, cpp_settings)
        else:
            outcome = plugin().runAdamStage(bridge.context, cpp_generator, cpp_settings, reporter)
        if reporter is not None and reporter.error is not None:
            raise reporter.error
        if cpp_generator is not None:
            copy_weights_back(cpp_generator, generator)
        best = None if math.isnan(outcome.bestEnergy) else float(outcome.bestEnergy)
        if reporter is None:
            recorder.extend(settings.name, outcome._energies(), outcome._times(), stage_start)
            if best is not None:
                recorder.note_best(best, bridge.current_positions())
        initial = None if math.isnan(outcome.initialEnergy) else float(outcome.initialEnergy)
        return StageResult(settings.name, int(outcome.iterations), int(outcome.energyEvaluations),
                           float(outcome.wallTime), initial, best, bool(outcome.collapsed),
                           compiled_stop_reason(outcome, recorder), cpu_force_evaluations(settings.name, outcome),
                           engine=device_name(bridge.context) if on_device else self.name)

    def _in_python(self, bridge: EnergyBridge, recorder: RunRecorder, generator: torch.nn.Module,
                   settings: AdamStageSettings, why: str) -> StageResult:
        """A generator TorchScript cannot compile runs its stage on the Python engine (its StageResult says
        "python"), and a warning says so and why; the other stages of the run stay compiled."""
        from .python import PythonEngine
        warnings.warn(f"the compiled engine runs a generator of one's own as TorchScript, which failed for generator "
                      f"{getattr(generator, 'kind', type(generator).__name__)!r} ({why}): stage {settings.name!r} "
                      f"runs on the Python engine", RuntimeWarning, stacklevel=4)
        return PythonEngine().adam_stage(bridge, recorder, generator, settings)
