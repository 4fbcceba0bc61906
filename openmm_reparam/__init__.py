"""openmm-reparam: energy minimization for OpenMM by neural-network reparametrization.

    import openmm_reparam
    result = openmm_reparam.minimize(simulation.context)   # instead of simulation.minimizeEnergy()
"""
# torch first: OpenMM loads its plugins (openmmtorch's TorchForce kernels among them) when it is first
# imported, and the Torch plugin only loads if libtorch is already in the process.
import torch  # noqa: F401  (import order matters)

from .bridge import ContextEnergy, NonFiniteEnergyError
from .generators import GNNGenerator, LinearModeGenerator
from .integrator import ReparamIntegrator
from .minimizer import ReparamMinimizer, build_generator, minimize, minimize_simulation
from .options import METHODS, MinimizerOptions
from .cpp_engine import cpp_available
from .prepare import PreparationError, PreparedSystem, prepare
from .result import HistoryPoint, MinimizationResult, StageResult
from .slow_modes import SlowModes, compute_slow_modes, force_constant_matrix, graph_laplacian

__version__ = "0.1.0"

__all__ = ["minimize", "minimize_simulation", "ReparamMinimizer", "MinimizationResult", "StageResult",
           "HistoryPoint", "MinimizerOptions", "METHODS", "ContextEnergy", "NonFiniteEnergyError",
           "GNNGenerator", "LinearModeGenerator", "build_generator", "SlowModes", "compute_slow_modes",
           "force_constant_matrix", "graph_laplacian", "prepare", "PreparedSystem", "PreparationError",
           "ReparamIntegrator", "cpp_available"]
