"""The physics layer: one definition each of the movable-atom mask, the constraint projection and the energy
bridge from torch to an OpenMM Context. Nothing here knows about generators, stages or engines."""
from .atoms import fixed_mask, force_norms, has_collapsed_contact, movable_mask
from .bridge import ContextEnergy
from .constraints import ConstraintProjector
from .errors import InvalidPositionsError, NonFiniteEnergyError
from .units import as_force, as_positions

__all__ = ["ContextEnergy", "ConstraintProjector", "NonFiniteEnergyError", "InvalidPositionsError", "fixed_mask",
           "movable_mask", "force_norms", "has_collapsed_contact", "as_force", "as_positions"]
