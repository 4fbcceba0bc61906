"""Engines: the iterations of a stage. One Adam stage (see :mod:`.settings`): ``python`` is the reference,
``cpp`` runs the same loop in the compiled plugin without returning to Python between steps, on the host or on
the Context's device (:mod:`.device`). The preconditioned L-BFGS iteration has both too (:mod:`.precon`, the
reference, and :mod:`.precon_compiled`), as FIRE has (:mod:`.fire`); the Gauss-Newton step
(:mod:`.gauss_newton`) runs in Python. Which one runs each kind of stage is chosen once per run
(:mod:`.runners`)."""
from __future__ import annotations

from .python import PythonEngine
from .runners import StageRunners, python_runners, select_runners
from .settings import AdamStageSettings


def stage_engine(engine, generator, reparam_optimizer: str = "adam"):
    """The engine for one stage: ``engine``, except that the generator stages with
    ``reparam_optimizer="gauss-newton"`` run :class:`.gauss_newton.GaussNewtonEngine` (Python only)."""
    if generator is None or reparam_optimizer == "adam":
        return engine
    from .gauss_newton import GaussNewtonEngine
    return GaussNewtonEngine()


__all__ = ["AdamStageSettings", "PythonEngine", "StageRunners", "python_runners", "select_runners", "stage_engine"]
