"""openmm-reparam: energy minimization for OpenMM by neural-network reparametrization.

    import openmm_reparam
    result = openmm_reparam.minimize(simulation.context)   # instead of simulation.minimizeEnergy()

Layers (each imports only those before it; tests/test_code_shape.py enforces it):
    core      the energy bridge to an OpenMM Context, the movable-atom mask, constraints, units
    run       options and their groups, the method registry, the recorder, the result
    analysis  what a minimum looks like afterwards: its lowest vibrational frequencies (stiffness); on core only
    reparam   slow modes of the force-constant graph and the generators built on them
    engines   the iterations of a stage, in Python (reference) or in the compiled plugin
    methods   one module per minimization method (a plug-in: Method, register_method), auto among them
    api       minimize / ReparamMinimizer (the stages around a method, the result), ReparamIntegrator
    app       PDB preparation, restraints, reports, the command line, batch runs on Dask, relax
"""
# torch first: OpenMM loads its plugins (openmmtorch's TorchForce kernels among them) when it is first
# imported, and the Torch plugin only loads if libtorch is already in the process.
import torch  # noqa: F401  (import order matters)

from .core import ContextEnergy, InvalidPositionsError, NonFiniteEnergyError
from .engines.compiled import cpp_available
from .run import HistoryPoint, MinimizationResult, MinimizerOptions, StageResult
from .run.registry import get_method, method_names, register_method, unregister_method
from .methods import Method, RunState
from .api import ReparamIntegrator, ReparamMinimizer, minimize, minimize_simulation
from .reparam import (GNNGenerator, LinearModeGenerator, SlowModes, build_generator, compute_slow_modes,
                      force_constant_matrix, graph_laplacian)
from .app.prepare import PreparationError, PreparedSystem, prepare
from .app.batch import minimize_many
from .app.relax import relax
from .app.patch import patch, unpatch  # noqa: E402  (Simulation.minimizeEnergy -> ours)
from .analysis import StiffnessResult, stiffness

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "METHODS":  # the registered method names, as of now (methods may be registered later)
        return method_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["minimize", "minimize_simulation", "ReparamMinimizer", "MinimizationResult", "StageResult",
           "HistoryPoint", "MinimizerOptions", "METHODS", "Method", "RunState", "register_method",
           "unregister_method", "get_method", "method_names", "ContextEnergy", "NonFiniteEnergyError",
           "InvalidPositionsError", "GNNGenerator", "LinearModeGenerator", "build_generator", "SlowModes",
           "compute_slow_modes",
           "force_constant_matrix", "graph_laplacian", "prepare", "PreparedSystem", "PreparationError",
           "ReparamIntegrator", "cpp_available", "minimize_many", "relax", "stiffness", "StiffnessResult"]
__all__ += ["patch", "unpatch"]
