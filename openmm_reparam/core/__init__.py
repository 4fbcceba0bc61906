"""The physics layer: one definition each of the movable-atom mask, the constraint projection and the energy
bridge from torch to an OpenMM Context. Nothing here knows about generators, stages or engines."""
from typing import Any

from .errors import EngineUnavailableError, InvalidPositionsError, NonFiniteEnergyError

#: name -> its module; imported on first use, so that the modules that need only the light ones (atoms, errors,
#: units, obstacles) do not import torch (the bridge's)
_LAZY = {"fixed_mask": ".atoms", "force_norms": ".atoms", "has_collapsed_contact": ".atoms",
         "movable_mask": ".atoms", "EnergyBridge": ".bridge", "ConstraintProjector": ".constraints",
         "as_force": ".units", "as_positions": ".units"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        if name == "ContextEnergy":  # the former name of EnergyBridge, with a DeprecationWarning
            from .bridge import deprecated_name
            return deprecated_name(__name__, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__all__ = ["EnergyBridge", "ConstraintProjector", "NonFiniteEnergyError", "InvalidPositionsError",
           "EngineUnavailableError", "fixed_mask",
           "movable_mask", "force_norms", "has_collapsed_contact", "as_force", "as_positions"]
