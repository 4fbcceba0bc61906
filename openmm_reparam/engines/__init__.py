"""Engines: the iterations of a stage. One Adam stage (see :mod:`.settings`): ``python`` is the reference,
``cpp`` runs the same loop in the compiled plugin without returning to Python between steps. The
preconditioned L-BFGS iteration has both too (:mod:`.precon`, the reference, and :mod:`.precon_compiled`), as
FIRE has (:mod:`.fire`); the Gauss-Newton step (:mod:`.gauss_newton`) runs in Python."""
from __future__ import annotations

from .python import PythonEngine
from .settings import AdamStageSettings


def select_engine(requested: str, runs_torch_autograd: bool = False, has_reporter: bool = False):
    """The engine for ``engine="auto"|"python"|"cpp"``.

    The compiled engine calls a Python reporter back with the Python lock held, and a force that runs torch's
    autograd (``openmmtorch.TorchForce``) cannot be evaluated then: with both, ``auto`` picks the Python engine
    and ``cpp`` is refused. ``auto`` also picks Python when the plugin is not built; ``cpp`` then raises.
    """
    from . import compiled
    conflict = runs_torch_autograd and has_reporter
    if requested == "python" or (requested == "auto" and (conflict or not compiled.cpp_available())):
        return PythonEngine()
    if conflict:
        raise ValueError("engine='cpp' cannot call a Python reporter while the System has a force that runs "
                         "torch's autograd (openmmtorch.TorchForce); use engine='python' or 'auto', or no reporter")
    if not compiled.cpp_available():
        raise RuntimeError(compiled.unavailable_reason())
    return compiled.CompiledEngine()


def stage_engine(engine, generator, reparam_optimizer: str = "adam"):
    """The engine for one stage: ``engine``, except that the generator stages with
    ``reparam_optimizer="gauss-newton"`` run :class:`.gauss_newton.GaussNewtonEngine` (Python only)."""
    if generator is None or reparam_optimizer == "adam":
        return engine
    from .gauss_newton import GaussNewtonEngine
    return GaussNewtonEngine()


__all__ = ["AdamStageSettings", "PythonEngine", "select_engine", "stage_engine"]
