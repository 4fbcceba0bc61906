"""The reparametrization: slow modes of the force-constant graph and the generators X = G_θ(Z) built on them."""
from .build import build_generator
from .custom import CustomGenerator, GeneratorInputs
from .generators import GNNGenerator, LinearModeGenerator, export_state
from .slow_modes import SlowModes, compute_slow_modes, force_constant_matrix, graph_laplacian

__all__ = ["build_generator", "CustomGenerator", "GeneratorInputs",
           "GNNGenerator", "LinearModeGenerator", "export_state", "SlowModes",
           "compute_slow_modes", "force_constant_matrix", "graph_laplacian"]
