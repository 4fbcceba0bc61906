"""Exceptions shared by every layer (the compiled engine raises them too, through its SWIG bindings)."""


class NonFiniteEnergyError(FloatingPointError):
    """The force field returned a NaN or infinite energy or force."""
