"""A private random generator for OpenMM's Modeller while a structure is prepared.

``Modeller.addHydrogens`` places some new hydrogens at random before minimizing them, and ``Modeller.addSolvent``
picks the waters it replaces by ions at random, both from Python's global ``random``. Seeding that global
generator is not enough: anything else in the process that draws from it meanwhile (another thread preparing
another structure, a Dask worker's own machinery) shifts the numbers, and the same input gives a different
structure from run to run. :func:`seeded_random` gives the calling thread its own ``random.Random(seed)``: the
module-level ``random`` that ``openmm.app.modeller`` uses is replaced, once, by a proxy that draws from the
calling thread's generator while one is set and from the global ``random`` otherwise, so code that does not ask
for a private generator sees no change.
"""
from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from typing import Iterator

_LOCAL = threading.local()
_INSTALL_LOCK = threading.Lock()


class _ThreadRandom:
    """Stands for the ``random`` module: each attribute comes from the calling thread's private generator when
    it has one, else from the module itself."""

    def __getattr__(self, name: str):
        generator = getattr(_LOCAL, "generator", None)
        return getattr(random if generator is None else generator, name)


def _install() -> None:
    from openmm.app import modeller
    with _INSTALL_LOCK:
        if not isinstance(modeller.random, _ThreadRandom):
            modeller.random = _ThreadRandom()


@contextmanager
def seeded_random(seed: int) -> Iterator[random.Random]:
    """Within the block, Modeller's random numbers in this thread come from ``random.Random(seed)``."""
    _install()
    previous = getattr(_LOCAL, "generator", None)
    _LOCAL.generator = random.Random(seed)
    try:
        yield _LOCAL.generator
    finally:
        _LOCAL.generator = previous


__all__ = ["seeded_random"]
