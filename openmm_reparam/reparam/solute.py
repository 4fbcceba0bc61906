"""Reparametrize the solute, move the solvent as plain coordinates.

In a water box the lowest modes of the force-constant Laplacian sit on single, barely coupled water molecules,
and a generator over every atom costs as much per step as the force field itself. ``SoluteGenerator`` wraps a
generator built over the solute atoms only (the particles outside small molecules, :func:`solvent_mask`) and
gives the solvent its own coordinates as a parameter, so one Adam stage moves both: the solute through its slow
modes, water and ions directly (kept on their constraints after each evaluation, as the coordinate stage does).
"""
from __future__ import annotations

from typing import List

import numpy as np
import torch
from torch import nn

from ..core.bridge import EnergyBridge


class SoluteGenerator(nn.Module):
    """X[solute] = inner(), X[solvent] = the solvent coordinates (a parameter starting at the start positions)."""

    def __init__(self, inner: nn.Module, solute: np.ndarray, x0: np.ndarray):
        super().__init__()
        solute = np.asarray(solute, dtype=bool)
        self.inner = inner
        self.kind = f"solute-{inner.kind}"
        self.register_buffer("solute_index", torch.as_tensor(np.flatnonzero(solute)))
        self.register_buffer("solvent_index", torch.as_tensor(np.flatnonzero(~solute)))
        self.solvent_coordinates = nn.Parameter(torch.as_tensor(np.asarray(x0, dtype=np.float64)[~solute]).clone())
        self.n_atoms = len(solute)

    def ordered_parameters(self) -> List[nn.Parameter]:
        return list(self.inner.ordered_parameters()) + [self.solvent_coordinates]

    def forward(self) -> torch.Tensor:
        inner = self.inner()
        x = torch.zeros(self.n_atoms, 3, dtype=inner.dtype)
        return x.index_copy(0, self.solute_index, inner).index_copy(0, self.solvent_index, self.solvent_coordinates)

    def after_evaluation(self, bridge: EnergyBridge) -> None:
        """Put the solvent coordinates onto the constraints (projected gradient descent, as the fine stage)."""
        if bridge.has_constraints:
            with torch.no_grad():
                self.solvent_coordinates.copy_(torch.from_numpy(bridge.last_positions[self.solvent_index.numpy()]))
