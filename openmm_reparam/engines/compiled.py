"""The compiled engine: the staged run (reparam -> fine -> polish) in C++, without Python in the loop.

The plugin (plugin_cpp/, built by ``pip install`` into ``openmm_reparam/_cpp/``) evaluates the same generators
with libtorch and takes its weights from :func:`openmm_reparam.generators.export_state`, so both engines compute
the same function with the same Adam arithmetic (see openmm_reparam/stages.py for the Python twin).

    cpp_available()            -> True when the plugin was built and loads
    run_stages(context, generator, tolerance=..., max_iterations=..., options=...) -> (stages, history)
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Tuple

import numpy as np
import openmm
import torch  # noqa: F401  (libtorch must be loaded before the plugin library)


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


def to_cpp_generator(generator_or_state):
    """A ``reparamplugin.ReparamGenerator`` computing the same function as a Python generator (or the dict
    returned by ``generators.export_state``)."""
    from ..reparam.generators import export_state
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


