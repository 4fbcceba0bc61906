"""The minimization methods, one module each, registered in :mod:`openmm_reparam.run.registry` on import.

    auto      the candidate that ranks best for the System (:mod:`.auto`)
    gnn       the paper's reparametrization: slow modes -> GNN generator -> Adam on it -> Adam on coordinates
    linear    linear slow-mode reparametrization (``cg`` is its deprecated name)
    adam      Adam on the coordinates
    lbfgs     OpenMM's LocalEnergyMinimizer alone
    precon    L-BFGS preconditioned by the force-constant Laplacian
    fire      FIRE 2.0 on the coordinates

Every method but ``lbfgs`` ends with the L-BFGS polish (:func:`.lbfgs.polish`). A new method is a
:class:`~.base.Method` subclass passed to :func:`openmm_reparam.register_method`.
"""
from ..run.registry import register_method
from .adam import AdamMethod
from .auto import AutoMethod
from .base import Method, RunState
from .fire import FireMethod
from .lbfgs import LBFGSMethod
from .precon import PreconMethod
from .reparametrized import GNNMethod, LinearMethod

for _method in (AutoMethod, GNNMethod):
    register_method(_method)
register_method(LinearMethod, aliases=("cg",))
for _method in (AdamMethod, LBFGSMethod, PreconMethod, FireMethod):
    register_method(_method)

__all__ = ["Method", "RunState", "register_method"]
