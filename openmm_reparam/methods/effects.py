"""Options that change nothing in the run at hand: one RuntimeWarning each, naming the option and why.

A name the method does not accept at all is an error (TypeError, :mod:`openmm_reparam.run.registry`); this is
for the accepted ones that the configuration makes moot, so that a user who tunes one learns that it did
nothing: with ``method="auto"`` the options of the candidates ``auto`` did not choose for the System (left out
of the run and of ``result.options``), and the cases each method names in :meth:`Method.ineffective`
(``declash_by`` with ``declash_steps=0``, ``polish_rounds`` with ``polish=False``, ``restart_noise`` without
restarts, ...).
"""
from __future__ import annotations

import warnings
from typing import Collection, Dict

from ..run.options import MinimizerOptions
from .base import Method


def ineffective_options(requested: Method, method: Method, given: Collection[str],
                        options: MinimizerOptions) -> Dict[str, str]:
    """{option: why} for the names in ``given`` that change nothing when ``requested`` (the method asked for,
    maybe ``auto``) runs as ``method`` (what it resolved to) with ``options`` (``method``'s)."""
    found: Dict[str, str] = {}
    if method is not requested:
        used = set(MinimizerOptions.known(method.name))
        found.update({name: f"{requested.name} chose method {method.name!r} for this System, which does not use "
                            "it" for name in given if name not in used})
    found.update(method.ineffective(options, [name for name in given if name not in found]))
    return found


def warn_ineffective(requested: Method, method: Method, given: Collection[str], options: MinimizerOptions,
                     stacklevel: int = 2) -> Dict[str, str]:
    """One RuntimeWarning per option of :func:`ineffective_options`, in name order; returns them."""
    found = ineffective_options(requested, method, given, options)
    for name in sorted(found):
        warnings.warn(f"option {name!r} has no effect in this run: {found[name]}", RuntimeWarning,
                      stacklevel=stacklevel + 1)
    return found
