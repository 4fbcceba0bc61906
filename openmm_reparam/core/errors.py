"""Exceptions shared by every layer (the compiled engine raises them too, through its SWIG bindings)."""
from typing import Optional


class NonFiniteEnergyError(FloatingPointError):
    """The force field returned a NaN or infinite energy or force."""


class InvalidPositionsError(ValueError):
    """A start that cannot be minimized: a non-finite coordinate, or a particle absurdly far from all others
    (:mod:`openmm_reparam.core.validation`). ``index``: the particle named in the message."""

    def __init__(self, message: str, index: Optional[int] = None):
        super().__init__(message)
        self.index = index


class EngineUnavailableError(ValueError):
    """The ``engine`` option asks for stages this run cannot have: the compiled plugin where it is not built,
    the device stages on a platform without them or with a reporter (:mod:`openmm_reparam.engines.runners`)."""
