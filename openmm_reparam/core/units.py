"""Conversion of OpenMM quantities or plain numbers to the plain floats used internally (nm, kJ/mol)."""
from __future__ import annotations

import numpy as np
from openmm import unit

FORCE_UNIT = unit.kilojoule_per_mole / unit.nanometer


def _strip(value, target_unit) -> object:
    if unit.is_quantity(value):
        return value.value_in_unit(target_unit)
    return value


def as_force(value) -> float:
    """A force tolerance as kJ/mol/nm; accepts a Quantity (any compatible unit) or a number."""
    return float(_strip(value, FORCE_UNIT))


def as_positions(value) -> np.ndarray:
    """Positions as an (N, 3) float64 array in nm; accepts a Quantity, a list of Vec3 or an array."""
    raw = _strip(value, unit.nanometer)
    array = np.array([[float(c) for c in _strip(p, unit.nanometer)] for p in raw], dtype=np.float64) \
        if not isinstance(raw, np.ndarray) else np.asarray(raw, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {array.shape}")
    return array
