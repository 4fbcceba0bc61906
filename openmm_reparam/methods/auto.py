"""Method ``auto``, the default: for each System, the registered method that ranks best for it.

``auto`` is a function of the registry: every registered method with ``auto_candidate`` set says, through
``auto_rank(system)``, whether it suits the System and how well (lower is better); ``auto`` runs the best one
(``result.method`` says which). Options passed with ``auto`` may be those of any candidate: the ones the chosen
method does not use are left out of its run (and of ``result.options``).
"""
from __future__ import annotations

from typing import Optional

import openmm

from ..run.registry import registered
from .base import Method


class AutoMethod(Method):
    """Picks a method per System; see the module docstring."""

    name = "auto"
    summary = "the candidate that measured best for the System's class (result.method says which)"
    polished = False

    @property
    def option_groups(self):  # type: ignore[override]
        """The groups of every candidate (what ``minimize(method="auto", ...)`` accepts)."""
        groups = {}
        for method in candidates():
            groups.update(method.option_groups)
        return groups

    def resolve(self, system: openmm.System) -> Method:
        ranked = [(rank, index, method) for index, method in enumerate(candidates())
                  for rank in [method.auto_rank(system)] if rank is not None]
        if not ranked:
            raise ValueError("no registered method is an auto candidate for this System")
        return min(ranked, key=lambda entry: entry[:2])[2]

    def run(self, state) -> None:
        raise RuntimeError("auto runs the method it resolves to (AutoMethod.resolve)")


def candidates() -> list:
    return [method for method in registered() if method.auto_candidate and method.name != "auto"]


def resolve_auto(system: openmm.System) -> Optional[str]:
    """The name of the method ``auto`` runs on ``system``."""
    return AutoMethod().resolve(system).name
