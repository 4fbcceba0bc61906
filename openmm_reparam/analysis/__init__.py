"""Analysis of a structure in a Context: how stiff (sharp) the minimum is, from vibrational frequencies."""
from .stiffness import StiffnessResult, stiffness

__all__ = ["stiffness", "StiffnessResult"]
