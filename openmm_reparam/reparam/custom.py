"""Generators as plug-ins: any torch.nn.Module can reparametrize the coordinates.

A generator is named (:func:`openmm_reparam.register_generator`), given as a factory, or given as a ready
torch.nn.Module. A factory is called once per run with one :class:`GeneratorInputs` (the slow modes, the start
positions of the reparametrized atoms, the run's seed and the ``generator`` option group) and returns a module
whose ``forward()``, without arguments, returns the (n, 3) positions in nm of those n atoms: every atom, or with
``reparam_atoms="solute"`` and a solvated System the solute (:mod:`.solute` moves the solvent).

The package's own generators (``gnn``, ``linear``) are registered here through the same registry. Any other
module is wrapped in :class:`CustomGenerator`, which checks its output once, fits it to the start (Adam on the
mean squared error, as the GNN is fitted) and then adds the fixed residual that makes the start exact, so the
reparametrized stage begins where the Context is, as it does with the built-ins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np
import torch
from torch import nn

from ..run.registry import generator_name_of, get_generator, register_generator
from .generators import DTYPE, GNNGenerator, LinearModeGenerator, fit_to_start
from .options import GeneratorOptions

BUILT_IN = (GNNGenerator, LinearModeGenerator)


@dataclass(frozen=True)
class GeneratorInputs:
    """What a generator factory is called with.

    ``modes``: (n, k) orthonormal slow modes of the reparametrized atoms; ``eigenvalues``: their (k,) Laplacian
    eigenvalues, lowest first; ``positions``: (n, 3) start positions in nm; ``seed``: the run's seed;
    ``options``: the ``generator`` option group (``n_modes``, ``hidden``, ``layers``, ``fit_*``)."""
    modes: np.ndarray
    eigenvalues: np.ndarray
    positions: np.ndarray
    seed: int
    options: GeneratorOptions


def generator_label(spec: Any, default: str) -> str:
    """The name a run records for the generator ``spec`` (None: ``default``, the method's own)."""
    if spec is None:
        return default
    if isinstance(spec, str):
        return spec
    if isinstance(spec, nn.Module):
        return type(spec).__name__
    return generator_name_of(spec) or getattr(spec, "__name__", type(spec).__name__)


def make_generator(spec: Any, default: str, inputs: Optional[GeneratorInputs], positions: np.ndarray) -> nn.Module:
    """The generator ``spec`` names (a registered name, a factory, a torch.nn.Module; None: ``default``), its
    factory called with ``inputs`` (None only for a ready module), for the atoms at ``positions`` (nm): a built-in
    as its factory returns it, any other module checked and wrapped (:class:`CustomGenerator`)."""
    label = generator_label(spec, default)
    if isinstance(spec, nn.Module):
        module = spec
    else:
        factory = get_generator(label) if spec is None or isinstance(spec, str) else spec
        module = factory(inputs)
        if not isinstance(module, nn.Module):
            raise TypeError(f"generator {label!r}: the factory must return a torch.nn.Module, "
                            f"got {type(module).__name__}")
    if isinstance(module, BUILT_IN):
        return module
    return CustomGenerator(module, positions, label)


class CustomGenerator(nn.Module):
    """X = network() + residual: a user's network, fitted to the start, the start made exact by ``residual``."""

    def __init__(self, network: nn.Module, x0: np.ndarray, name: str):
        super().__init__()
        self.network, self.kind = network, name
        x0_t = torch.as_tensor(np.asarray(x0, dtype=np.float64), dtype=DTYPE)
        self.register_buffer("residual", torch.zeros_like(x0_t))
        self._check(x0_t.shape[0])

    def _check(self, n_atoms: int) -> None:
        """ValueError/TypeError in one line for an output that is not (n_atoms, 3), or no trainable parameters."""
        with torch.no_grad():
            out = self.network()
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"generator {self.kind!r}: forward() must return a tensor, got {type(out).__name__}")
        if tuple(out.shape) != (n_atoms, 3):
            raise ValueError(f"generator {self.kind!r}: forward() returned shape {tuple(out.shape)}, expected "
                             f"({n_atoms}, 3) (nm, the reparametrized atoms)")
        if not self.ordered_parameters():
            raise ValueError(f"generator {self.kind!r} has no trainable parameters")

    def ordered_parameters(self) -> List[nn.Parameter]:
        """The network's trainable parameters (what Adam updates), in its own order."""
        return [p for p in self.network.parameters() if p.requires_grad]

    def raw(self) -> torch.Tensor:
        """The network's output in float64, without the residual."""
        return self.network().to(torch.float64)  # a literal dtype: TorchScript compiles this method

    def forward(self) -> torch.Tensor:
        return self.raw() + self.residual

    def fit(self, x0: np.ndarray, steps: int, lr: float, tolerance: float) -> float:
        """Adam on the mean squared distance to ``x0`` until the RMS error is below ``tolerance`` nm (none when the
        network already starts there), then the residual makes the start exact; returns the RMS error fitted."""
        return fit_to_start(self, x0, steps, lr, tolerance)


def gnn_factory(inputs: GeneratorInputs) -> GNNGenerator:
    """The built-in ``gnn``: the graph network over the slow modes, fitted to the start."""
    g = inputs.options
    generator = GNNGenerator(inputs.modes, inputs.positions, hidden=g.hidden, layers=g.layers, seed=inputs.seed)
    generator.fit(inputs.positions, steps=g.fit_steps, lr=g.fit_lr, tolerance=g.fit_tolerance)
    return generator


def linear_factory(inputs: GeneratorInputs) -> LinearModeGenerator:
    """The built-in ``linear``: X = X0 + V z on the slow modes."""
    return LinearModeGenerator(inputs.modes, inputs.positions)


def is_built_in(spec: Any) -> bool:
    """Whether ``spec`` gives a built-in generator (latent restarts and the compiled engine know only those)."""
    if spec is None or isinstance(spec, BUILT_IN):
        return True
    factory = get_generator(spec) if isinstance(spec, str) else spec
    return factory is gnn_factory or factory is linear_factory


register_generator("gnn", gnn_factory, replace=True)
register_generator("linear", linear_factory, replace=True)
