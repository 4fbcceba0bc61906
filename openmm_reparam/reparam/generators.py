"""Generators X = G_theta(Z): the networks that reparametrize atom coordinates.

Both generators map their parameters to an (N, 3) float64 tensor of positions in nm, and both start
*exactly* at the given coordinates X0, so the reparametrized stage begins where the user's Context is.

``GNNGenerator`` (the paper's method). With V the (N, k) orthonormal slow modes, P = V Vᵀ their projector,
Z = H_0 an (N, h) learnable latent embedding and L graph-convolution layers::

    H_{l+1} = tanh( P H_l W_l + H_l S_l + b_l )           W_l, S_l: (h, h), b_l: (h,)
    Y       = [H_0 | H_1 | ... | H_L] W_out + b_out          W_out: ((L+1) h, 3), b_out: (3,)
    X       = center + scale * Y + residual

P H is computed as V (Vᵀ H), never forming the N x N projector. ``center`` (3,), ``scale`` (scalar) and
``residual`` (N, 3) are fixed buffers: the network is first fitted to X0 by least squares (Adam on the mean
squared error), then ``residual = X0 - G(Z)`` absorbs what the fit left, so X(θ_fit) = X0 to round-off.

``LinearModeGenerator`` (classic coarse-graining): X = X0 + V z, with z a (k, 3) parameter starting at 0.

The parameter order returned by ``ordered_parameters()`` is fixed (see ``parameter_names``): the C++ engine takes its
weights from ``export_state`` in that order and must compute the same function.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np
import torch
from torch import nn

from ..core.adam import Adam

DTYPE = torch.float64


def _as_tensor(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64), dtype=DTYPE).clone()


class GNNGenerator(nn.Module):
    """Graph network over the slow-mode projector; see the module docstring for the exact function."""

    kind = "gnn"

    def __init__(self, modes, x0, hidden: int = 32, layers: int = 2, seed: int = 0,
                 latent_noise: float = 0.1):
        super().__init__()
        modes_t = _as_tensor(modes)
        x0_t = _as_tensor(x0)
        n_atoms = x0_t.shape[0]
        if modes_t.ndim != 2 or modes_t.shape[0] != n_atoms:
            raise ValueError(f"modes must be (N, k) with N = {n_atoms}, got {tuple(modes_t.shape)}")
        if hidden < 3:
            raise ValueError("hidden must be at least 3 (the latent carries the start coordinates)")
        self.hidden, self.n_layers = int(hidden), int(layers)
        gen = torch.Generator().manual_seed(int(seed))

        self.register_buffer("modes", modes_t)
        center = x0_t.mean(dim=0)
        scale = float((x0_t - center).pow(2).sum(dim=1).mean().sqrt().clamp_min(1e-3))
        self.register_buffer("center", center)
        self.register_buffer("scale", torch.tensor(scale, dtype=DTYPE))
        self.register_buffer("residual", torch.zeros(n_atoms, 3, dtype=DTYPE))

        # Latent: the scaled start coordinates in the first three channels, small noise elsewhere.
        latent = latent_noise * torch.randn(n_atoms, hidden, generator=gen, dtype=DTYPE)
        latent[:, :3] = (x0_t - center) / scale
        self.latent = nn.Parameter(latent)

        bound = 1.0 / math.sqrt(hidden)

        def uniform(*shape):
            return nn.Parameter((torch.rand(*shape, generator=gen, dtype=DTYPE) * 2 - 1) * bound)

        self.weights = nn.ParameterList([uniform(hidden, hidden) for _ in range(layers)])
        self.self_weights = nn.ParameterList([uniform(hidden, hidden) for _ in range(layers)])
        self.biases = nn.ParameterList([uniform(hidden) for _ in range(layers)])
        # Readout starts as the identity on the coordinate channels of the latent plus small noise.
        w_out = 0.01 * torch.randn((layers + 1) * hidden, 3, generator=gen, dtype=DTYPE)
        w_out[:3, :3] += torch.eye(3, dtype=DTYPE)
        self.w_out = nn.Parameter(w_out)
        self.b_out = nn.Parameter(torch.zeros(3, dtype=DTYPE))

    def parameter_names(self) -> List[str]:
        names = ["latent"]
        for i in range(self.n_layers):
            names += [f"weights.{i}", f"self_weights.{i}", f"biases.{i}"]
        return names + ["w_out", "b_out"]

    def ordered_parameters(self) -> List[nn.Parameter]:
        """Parameters in the fixed order shared with the C++ engine (and given to Adam)."""
        params = dict(self.named_parameters())
        return [params[name] for name in self.parameter_names()]

    def raw(self) -> torch.Tensor:
        """The network output without the fixed residual (used when fitting)."""
        h = self.latent
        features = [h]
        for w, s, b in zip(self.weights, self.self_weights, self.biases):
            propagated = self.modes @ (self.modes.T @ h)
            h = torch.tanh(propagated @ w + h @ s + b)
            features.append(h)
        y = torch.cat(features, dim=1) @ self.w_out + self.b_out
        return self.center + self.scale * y

    def forward(self) -> torch.Tensor:
        return self.raw() + self.residual

    def fit(self, x0, steps: int = 2000, lr: float = 1e-2, tolerance: float = 1e-4) -> float:
        """Fit the network output to x0 (nm) by Adam on the mean squared error; then make the start exact.

        Stops early once the RMS error is below ``tolerance`` nm. Returns the RMS fit error (nm) before the
        residual correction, which is what the network itself could not represent.
        """
        return fit_to_start(self, x0, steps, lr, tolerance)


def fit_to_start(generator: nn.Module, x0, steps: int, lr: float, tolerance: float) -> float:
    """Adam on the mean squared distance between ``generator.raw()`` and ``x0`` (nm) until the RMS error is below
    ``tolerance`` nm (no step when it already is), then ``generator.residual`` makes the start exact; sets
    ``fit_iterations`` and ``fit_error`` and returns the RMS error the network itself could not represent."""
    target = _as_tensor(x0)
    optimizer = Adam(generator.ordered_parameters(), lr=lr)
    generator.fit_iterations = 0
    for _ in range(int(steps)):
        optimizer.zero_grad()
        loss = (generator.raw() - target).pow(2).sum(dim=1).mean()
        if float(loss.detach().sqrt()) < tolerance:
            break
        loss.backward()
        optimizer.step()
        generator.fit_iterations += 1
    with torch.no_grad():
        raw = generator.raw()
        generator.fit_error = float((raw - target).pow(2).sum(dim=1).mean().sqrt())
        generator.residual.copy_(target - raw)
    return generator.fit_error


class LinearModeGenerator(nn.Module):
    """X = X0 + V z: moves the structure along its slow modes only."""

    kind = "linear"

    def __init__(self, modes, x0):
        super().__init__()
        modes_t = _as_tensor(modes)
        x0_t = _as_tensor(x0)
        if modes_t.ndim != 2 or modes_t.shape[0] != x0_t.shape[0]:
            raise ValueError(f"modes must be (N, k) with N = {x0_t.shape[0]}, got {tuple(modes_t.shape)}")
        self.register_buffer("modes", modes_t)
        self.register_buffer("x0", x0_t)
        self.z = nn.Parameter(torch.zeros(modes_t.shape[1], 3, dtype=DTYPE))

    def parameter_names(self) -> List[str]:
        return ["z"]

    def ordered_parameters(self) -> List[nn.Parameter]:
        return [self.z]

    def forward(self) -> torch.Tensor:
        return self.x0 + self.modes @ self.z


def export_state(generator: nn.Module) -> Dict[str, object]:
    """Everything the C++ engine needs to rebuild ``generator``: kind, sizes, buffers and ordered parameters,
    as contiguous float64 numpy arrays."""
    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)

    state: Dict[str, object] = {"kind": generator.kind, "modes": arr(generator.modes),
                                "parameter_names": generator.parameter_names(),
                                "parameters": [arr(p) for p in generator.ordered_parameters()]}
    if isinstance(generator, GNNGenerator):
        state.update(hidden=generator.hidden, layers=generator.n_layers, center=arr(generator.center),
                     scale=float(generator.scale), residual=arr(generator.residual))
    else:
        state.update(x0=arr(generator.x0))
    return state
