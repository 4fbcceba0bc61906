"""A user's generator in the compiled engine, through TorchScript.

The compiled plugin rebuilds the built-in generators from their weights; a user's network it cannot rebuild,
but it can run the network's TorchScript. :func:`script_bytes` compiles the whole
:class:`~openmm_reparam.reparam.custom.CustomGenerator` (the user's network plus the fitted residual that makes
the start exact) with ``torch.jit.script`` and saves it to the bytes ``torch.jit.save`` writes; the plugin's
``ReparamGenerator("torchscript")`` loads them, evaluates the module's ``forward()`` with libtorch and takes its
parameters that require grad, in ``named_parameters()`` order, as the ones Adam trains. A network TorchScript
cannot compile raises :class:`NotScriptableError`, whose message is the first line of TorchScript's error: the
stage then runs on the Python engine.
"""
from __future__ import annotations

import io
from typing import List

import torch

from ..reparam.custom import CustomGenerator


class NotScriptableError(RuntimeError):
    """``torch.jit.script`` could not compile a generator; the message is the first line of its error."""


def runs_as_torchscript(generator: torch.nn.Module) -> bool:
    """Whether ``generator`` is a user's network (a CustomGenerator, or a SoluteGenerator around one), which the
    compiled engine runs as TorchScript."""
    from ..reparam.solute import SoluteGenerator
    inner = generator.inner if isinstance(generator, SoluteGenerator) else generator
    return isinstance(inner, CustomGenerator)


def first_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message (TorchScript's go on with the source it points at)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def script_bytes(generator: CustomGenerator) -> bytes:
    """``generator`` (network and residual) compiled by ``torch.jit.script`` and saved as ``torch.jit.save`` does;
    a network that is already a ScriptModule is taken as it is. Raises NotScriptableError."""
    try:
        scripted = torch.jit.script(generator)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
    except Exception as error:  # torch.jit.frontend.* errors, RuntimeError, NotSupportedError, ...
        raise NotScriptableError(first_line(error)) from None
    return buffer.getvalue()


def parameter_names(generator: CustomGenerator) -> List[str]:
    """The names the scripted ``generator`` gives the parameters Adam trains, in ``ordered_parameters()`` order."""
    return [f"network.{name}" for name, parameter in generator.network.named_parameters() if parameter.requires_grad]


def to_cpp_torchscript(generator: CustomGenerator, module):
    """A ``ReparamGenerator("torchscript")`` of the plugin ``module`` running ``generator``'s TorchScript; raises
    NotScriptableError when it does not compile, or when the scripted parameters are not the generator's
    (``ordered_parameters()``, whose trained values are copied back by index)."""
    data = script_bytes(generator)
    cpp = module.ReparamGenerator("torchscript")
    cpp._setModule(data)
    names = [cpp.getParameterName(i) for i in range(cpp.getNumParameters())]
    expected = parameter_names(generator)
    if names != expected or len(expected) != len(generator.ordered_parameters()):
        raise NotScriptableError(f"the scripted module's parameters {names} are not the network's {expected}")
    return cpp
