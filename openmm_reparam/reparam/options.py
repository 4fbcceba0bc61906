"""The options that build a generator: its network and fit (``generator``) and the slow modes it spans
(``modes``). Used by the reparametrized methods and by ``ReparamIntegrator``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..run.options import require, require_ints, require_positive
from ..run.registry import get_generator


@dataclass
class GeneratorOptions:
    """The generator network and its fit to the start (methods gnn, linear); ``generator`` picks another network
    (docs/guide/own_method.rst)."""
    n_modes: int = 30              # number of slow modes (capped at N - 1)
    hidden: int = 32               # GNN latent width
    layers: int = 2                # GNN graph-convolution layers
    fit_steps: int = 2000          # Adam steps fitting the GNN output to the start
    fit_lr: float = 1e-2
    fit_tolerance: float = 1e-4    # nm RMS: stop fitting below this
    reparam_atoms: str = "solute"  # "solute": waters and ions (molecules of <= 4 atoms) move as plain coordinates
    generator: Any = None          # the network: a name (register_generator), a factory or a torch.nn.Module
    #                                (None: the method's own, gnn or linear)

    def __post_init__(self) -> None:
        require(self.n_modes >= 1 and self.hidden >= 3 and self.layers >= 0,
                "n_modes must be >= 1, hidden >= 3 and layers >= 0")
        require_ints(self, ("fit_steps",))
        require_positive(self, ("fit_lr",))
        require_positive(self, ("fit_tolerance",), strict=False)
        require(self.reparam_atoms in ("solute", "all"),
                f"reparam_atoms must be 'solute' or 'all', got {self.reparam_atoms!r}")
        check_generator_spec(self.generator)


def check_generator_spec(spec: Any) -> None:
    """TypeError unless ``spec`` is None, a name, a factory or a torch.nn.Module; ValueError for an unknown name."""
    if spec is None or isinstance(spec, torch.nn.Module):
        return
    if isinstance(spec, str):
        get_generator(spec)
    elif not callable(spec):
        raise TypeError(f"generator must be a registered name, a factory or a torch.nn.Module, "
                        f"got {type(spec).__name__}")


@dataclass
class SlowModeOptions:
    """The force-constant graph and its lowest Laplacian modes (:func:`compute_slow_modes`)."""
    slow_modes: str = "auto"       # "auto" | "exact" | "sparse"
    hessian_samples: int = 1       # samples (the start, then perturbed copies) averaged into the force constants
    hessian_perturbation: float = 0.005  # nm, size of the random sample perturbations

    def __post_init__(self) -> None:
        require(self.slow_modes in ("auto", "exact", "sparse"),
                f"slow_modes must be 'auto', 'exact' or 'sparse', got {self.slow_modes!r}")
        require_ints(self, ("hessian_samples",))
        require_positive(self, ("hessian_perturbation",), strict=False)
