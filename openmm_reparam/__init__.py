"""openmm-reparam: energy minimization for OpenMM by neural-network reparametrization.

    import openmm_reparam
    result = openmm_reparam.minimize(simulation.context)   # instead of simulation.minimizeEnergy()

Layers (each imports only those above it):
    core      the energy bridge to an OpenMM Context, the movable-atom mask, constraints, units
    reparam   slow modes of the force-constant graph and the generators built on them
    engines   one Adam stage, in Python (reference) or in the compiled plugin; ReparamIntegrator
    optimize  options, the orchestrator that orders the stages, L-BFGS stages, the result
    app       PDB preparation, restraints, reports, the command line, batch runs on Dask, relax
    analysis  what a minimum looks like afterwards: its lowest vibrational frequencies (stiffness)
"""
# torch first: OpenMM loads its plugins (openmmtorch's TorchForce kernels among them) when it is first
# imported, and the Torch plugin only loads if libtorch is already in the process.
import torch  # noqa: F401  (import order matters)

from .core import ContextEnergy, NonFiniteEnergyError
from .engines.compiled import cpp_available
from .engines.integrator import ReparamIntegrator
from .optimize.options import METHODS, MinimizerOptions
from .optimize.orchestrator import ReparamMinimizer, minimize, minimize_simulation
from .optimize.result import HistoryPoint, MinimizationResult, StageResult
from .reparam import (GNNGenerator, LinearModeGenerator, SlowModes, build_generator, compute_slow_modes,
                      force_constant_matrix, graph_laplacian)
from .app.prepare import PreparationError, PreparedSystem, prepare
from .app.batch import minimize_many
from .app.relax import relax
from .app.patch import patch, unpatch  # noqa: E402  (Simulation.minimizeEnergy -> ours)
from .analysis import StiffnessResult, stiffness

__version__ = "0.1.0"

__all__ = ["minimize", "minimize_simulation", "ReparamMinimizer", "MinimizationResult", "StageResult",
           "HistoryPoint", "MinimizerOptions", "METHODS", "ContextEnergy", "NonFiniteEnergyError",
           "GNNGenerator", "LinearModeGenerator", "build_generator", "SlowModes", "compute_slow_modes",
           "force_constant_matrix", "graph_laplacian", "prepare", "PreparedSystem", "PreparationError",
           "ReparamIntegrator", "cpp_available", "minimize_many", "relax", "stiffness", "StiffnessResult"]
__all__ += ["patch", "unpatch"]
