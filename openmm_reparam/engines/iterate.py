"""What the coordinate iterations (FIRE, preconditioned L-BFGS) share: an iterate on the movable atoms and the
convergence measure on it."""
from __future__ import annotations

import math

import numpy as np


class CoordinateIterate:
    """An iterate with ``x`` (all particles' positions), ``gradient`` (−F⊥ on the movable atoms) and ``bridge``
    (its EnergyBridge, for the movable mask)."""

    x: np.ndarray
    gradient: np.ndarray

    def rms_force(self) -> float:
        """‖F⊥‖₂/√n over the movable atoms: the package's convergence measure (the compiled stages sum alike)."""
        n = len(self.gradient)
        return math.sqrt(float((self.gradient * self.gradient).sum()) / n) if n else 0.0

    def full_gradient(self) -> np.ndarray:
        """−F⊥ on every particle (zero rows for fixed ones), as the recorder and the reporter take it."""
        full = np.zeros_like(self.x)
        full[self.bridge.movable] = self.gradient
        return full
