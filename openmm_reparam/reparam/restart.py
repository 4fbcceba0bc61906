"""Moves in the generator's own space, for restarts of the reparametrized stage (latent-space basin hopping).

An Adam stage leaves the Context at its best positions but the generator at its *last* parameters (the
compiled engine cannot hand back the parameters of the best step). Rather than snapshotting every step, a
restart first **re-anchors** the generator: its fixed offset buffer (the GNN's ``residual``, the linear
generator's ``x0``; the solvent coordinates of a :class:`SoluteGenerator`) is shifted by X_best − G(θ_last),
so that G(θ_last) = X_best exactly. The network is the same function up to a constant per-atom translation and
its parameters are those of a point at most ``patience`` steps past the best one, so nothing is re-fitted.

Then :func:`perturb_latent` moves the latent embedding (GNN: ``latent``, linear: ``z``) by seeded Gaussian
noise projected on the slow modes, scaled so that the generator's output moves by ``noise`` nm RMS per atom:
a collective jump of known size, not a per-atom shake that would only create clashes.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from .generators import GNNGenerator, LinearModeGenerator
from .solute import SoluteGenerator


def _inner(generator: torch.nn.Module) -> torch.nn.Module:
    return generator.inner if isinstance(generator, SoluteGenerator) else generator


def reanchor(generator: torch.nn.Module, positions: np.ndarray) -> None:
    """Shift ``generator``'s fixed offset so that its output at the current parameters is ``positions`` (N, 3)
    nm (all particles of the System for a SoluteGenerator, the generator's atoms otherwise)."""
    target = torch.as_tensor(np.asarray(positions, dtype=np.float64))
    inner = _inner(generator)
    if isinstance(generator, SoluteGenerator):
        with torch.no_grad():
            generator.solvent_coordinates.copy_(target[generator.solvent_index])
        target = target[generator.solute_index]
    with torch.no_grad():
        shift = target - inner()
        if isinstance(inner, GNNGenerator):
            inner.residual.add_(shift)
        elif isinstance(inner, LinearModeGenerator):
            inner.x0.add_(shift)
        else:
            raise TypeError(f"cannot re-anchor a {type(inner).__name__}")


def latent_parameter(generator: torch.nn.Module) -> torch.nn.Parameter:
    """The latent embedding a restart perturbs: the GNN's ``latent`` (N, h) or the linear generator's ``z``."""
    inner = _inner(generator)
    return inner.latent if isinstance(inner, GNNGenerator) else inner.z


def perturb_latent(generator: torch.nn.Module, noise: float, seed: int) -> float:
    """Add seeded noise to the latent embedding so that the output moves by ``noise`` nm RMS per atom (exact for
    the linear generator, to first order for the GNN). GNN: the noise is projected on the slow modes, P ε.
    Returns the RMS displacement (nm) the move actually caused."""
    inner = _inner(generator)
    latent = latent_parameter(generator)
    rng = torch.Generator().manual_seed(int(seed))
    direction = torch.randn(latent.shape, generator=rng, dtype=latent.dtype)
    if isinstance(inner, GNNGenerator):
        direction = inner.modes @ (inner.modes.T @ direction)
    with torch.no_grad():
        before = inner().clone()
        latent.add_(direction)
        unit_rms = float((inner() - before).pow(2).sum(dim=1).mean().sqrt())
        latent.sub_(direction)
        if unit_rms > 0:
            latent.add_(direction * (float(noise) / unit_rms))
        return float((inner() - before).pow(2).sum(dim=1).mean().sqrt())


def snapshot(generator: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """A copy of every parameter and buffer (restored in place by :func:`restore`)."""
    return {name: value.detach().clone() for name, value in generator.state_dict().items()}


def restore(generator: torch.nn.Module, state: Dict[str, torch.Tensor]) -> None:
    generator.load_state_dict(state)


def restart_seed(seed: int, index: int) -> int:
    """The perturbation seed of restart ``index`` of a run seeded ``seed`` (independent streams per pair)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])
