"""The compiled engine: the staged run (reparam -> fine -> polish) in C++, without Python in the loop.

The plugin (plugin_cpp/, built by ``pip install`` into ``openmm_reparam/_cpp/``) evaluates the same generators
with libtorch and takes its weights from :func:`openmm_reparam.generators.export_state`, so both engines compute
the same function with the same Adam arithmetic (see openmm_reparam/stages.py for the Python twin).

    cpp_available()            -> True when the plugin was built and loads
    run_stages(context, generator, tolerance=..., max_iterations=..., options=...) -> (stages, history)
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np
import openmm
import torch  # noqa: F401  (libtorch must be loaded before the plugin library)

from .result import HistoryPoint, StageResult

_plugin = None
_import_error: Optional[BaseException] = None


def _load():
    """Import the SWIG module once; remember why it failed if it did."""
    global _plugin, _import_error
    if _plugin is None and _import_error is None:
        try:
            from ._cpp import reparamplugin
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
    marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cpp", "BUILD_ERROR.txt")
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


def to_cpp_generator(generator_or_state):
    """A ``reparamplugin.ReparamGenerator`` computing the same function as a Python generator (or the dict
    returned by ``generators.export_state``)."""
    from .generators import export_state
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


def copy_weights_back(cpp_generator, generator: torch.nn.Module) -> None:
    """Write the C++ generator's (trained) parameters into the Python generator, in the shared order."""
    with torch.no_grad():
        for index, parameter in enumerate(generator.ordered_parameters()):
            values = np.asarray(cpp_generator._getParameterValues(index), dtype=np.float64)
            parameter.copy_(torch.as_tensor(values.reshape(tuple(parameter.shape)), dtype=parameter.dtype))


# -- the staged run ----------------------------------------------------------------------------------------
def _option(options: Any, name: str, default: Any) -> Any:
    if options is None:
        return default
    if isinstance(options, Mapping):
        return options.get(name, default)
    return getattr(options, name, default)


def _make_reporter(user_reporter, stage_names: List[str]):
    """A MinimizationReporter the C++ engine can call; it names the stage (args["stage"]) for the user's."""
    class _StageNamingReporter(openmm.MinimizationReporter):
        """Also keeps any exception the user's reporter raises (KeyboardInterrupt included): it stops the run
        and is re-raised once the compiled engine has returned, instead of becoming a SWIG director error."""
        error: Optional[BaseException] = None

        def report(self, iteration, x, grad, args):
            values = {str(k): float(args[k]) for k in args.keys()}
            index = int(values.pop("stage_index", -1))
            values["stage"] = stage_names[index] if 0 <= index < len(stage_names) else "?"
            try:
                return bool(user_reporter.report(iteration, np.asarray(x), np.asarray(grad), values))
            except BaseException as error:  # noqa: B902 - handed back to the caller below
                self.error = error
                return True
    return _StageNamingReporter()


def run_stages(context: openmm.Context, generator: Optional[torch.nn.Module], *, tolerance: float,
               max_iterations: int = 0, options: Any = None, reporter: Optional[openmm.MinimizationReporter] = None,
               recorder: Any = None, deadline: Optional[float] = None, fine_name: str = "fine",
               fine_steps: Optional[int] = None) -> Tuple[List[StageResult], List[HistoryPoint]]:
    """Run the reparam (if ``generator`` is given), fine and polish stages in C++ on ``context``.

    Same stages, early stopping, time budget and iteration cap as the Python engine (openmm_reparam/stages.py).
    ``options``: a MinimizerOptions or a dict with the same names (steps, lr, patience, clip_norm, rel_tol,
    fine_steps, fine_lr, fine_patience, constraint_stiffness, polish, time_budget, collapse_distance).
    The polish restarts L-BFGS (at most ``polish_rounds``, default 3) while it still lowers the energy but the
    constraint-projected RMS force is above ``tolerance``, as ``ReparamMinimizer._polish`` does. ``tolerance`` in kJ/mol/nm.
    ``recorder``: an optional ``stages.RunRecorder`` of a run already in progress; its start time, iteration
    count, cap, reporter and history are used and updated (then ``reporter``/``max_iterations`` are ignored).
    ``deadline``: ``time.perf_counter()`` value at which the reparam+fine stages must end (overrides
    ``options.time_budget``). The generator's parameters are updated to the trained weights.
    Returns (stages, history) as :class:`StageResult` and :class:`HistoryPoint` lists.
    """
    from .bridge import NonFiniteEnergyError
    module = plugin()
    now = time.perf_counter()
    opts = module.ReparamOptions()
    opts.steps = int(_option(options, "steps", opts.steps))
    opts.fineSteps = int(_option(options, "fine_steps", opts.fineSteps) if fine_steps is None else fine_steps)
    opts.patience = int(_option(options, "patience", opts.patience))
    opts.finePatience = int(_option(options, "fine_patience", opts.finePatience))
    opts.lr = float(_option(options, "lr", opts.lr))
    opts.fineLr = float(_option(options, "fine_lr", opts.fineLr))
    opts.clipNorm = float(_option(options, "clip_norm", opts.clipNorm))
    opts.relTol = float(_option(options, "rel_tol", opts.relTol))
    opts.constraintStiffness = float(_option(options, "constraint_stiffness", opts.constraintStiffness))
    opts.polish = bool(_option(options, "polish", True))
    opts.polishRounds = int(_option(options, "polish_rounds", opts.polishRounds))
    opts.collapseDistance = float(_option(options, "collapse_distance", opts.collapseDistance))
    opts.spikeFactor = float(_option(options, "spike_factor", opts.spikeFactor))
    opts.fineStageName = fine_name
    if deadline is None:
        budget = _option(options, "time_budget", None)
        opts.timeBudget = -1.0 if budget is None else float(budget)
    else:
        opts.timeBudget = max(0.0, deadline - now)
    if recorder is not None:
        reporter = recorder.reporter
        opts.timeOffset = now - recorder.start
        opts.iterationOffset = int(recorder.iterations)
        opts.maxIterations = int(recorder.max_iterations)
    else:
        opts.maxIterations = int(max_iterations)
    names = (["reparam"] if generator is not None else []) + [fine_name] + (["polish"] if opts.polish else [])
    cpp_generator = to_cpp_generator(generator) if generator is not None else None
    cpp_reporter = _make_reporter(reporter, names) if reporter is not None else None
    try:
        result = module.runReparamStages(context, cpp_generator, opts, float(tolerance), cpp_reporter)
    except Exception as error:
        if "non-finite" in str(error):
            raise NonFiniteEnergyError(str(error)) from error
        raise
    if cpp_reporter is not None and cpp_reporter.error is not None:
        raise cpp_reporter.error
    if generator is not None:
        copy_weights_back(cpp_generator, generator)
    stages = []
    for i in range(result.getNumStages()):
        s = result.getStage(i)
        initial = None if math.isnan(s.initialEnergy) else float(s.initialEnergy)
        final = None if math.isnan(s.finalEnergy) else float(s.finalEnergy)
        stage = StageResult(s.name, int(s.iterations), int(s.energyEvaluations), float(s.wallTime), initial, final)
        if hasattr(stage, "collapsed"):
            stage.collapsed = bool(s.collapsed)
        stages.append(stage)
    history = [HistoryPoint(stages[result.getHistoryStage(i)].name, result.getHistoryIteration(i),
                            result.getHistoryTime(i), result.getHistoryEnergy(i))
               for i in range(result.getHistorySize())]
    if recorder is not None:
        recorder.history.extend(history)
        recorder.iterations += len(history)
        recorder.stopped = recorder.stopped or bool(result.getStopped())
    return stages, history
