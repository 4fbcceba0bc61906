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
# Every public name is imported on first use (module __getattr__): ``import openmm_reparam`` and the
# ``openmm-reparam`` command's --help stay fast, and torch (seconds to import) is only loaded where a method
# needs it. openmmtorch's plugin needs libtorch loaded before OpenMM's plugins are: see _torch_order.
from typing import Any as _Any, Dict as _Dict, List as _List

from . import _torch_order

__version__ = "0.1.0"

#: public name -> the module (relative to this package) that defines it
_LAZY: _Dict[str, str] = {
    "EnergyBridge": ".core", "EngineUnavailableError": ".core", "InvalidPositionsError": ".core",
    "NonFiniteEnergyError": ".core",
    "cpp_available": ".engines.compiled",
    "HistoryPoint": ".run", "MinimizationResult": ".run", "MinimizerOptions": ".run", "StageResult": ".run",
    "get_method": ".run.registry", "method_names": ".run.registry", "register_method": ".run.registry",
    "unregister_method": ".run.registry",
    "register_generator": ".run.registry", "unregister_generator": ".run.registry",
    "generator_names": ".run.registry",
    "Method": ".methods", "RunState": ".methods",
    "ReparamIntegrator": ".api", "ReparamMinimizer": ".api", "minimize": ".api", "minimize_simulation": ".api",
    "GNNGenerator": ".reparam", "LinearModeGenerator": ".reparam", "SlowModes": ".reparam",
    "build_generator": ".reparam", "compute_slow_modes": ".reparam", "force_constant_matrix": ".reparam",
    "graph_laplacian": ".reparam", "GeneratorInputs": ".reparam",
    "PreparationError": ".app.prepare", "PreparedSystem": ".app.prepare", "prepare": ".app.prepare",
    "minimize_many": ".app.batch",
    "relax": ".app.relax",
    "patch": ".app.patch", "unpatch": ".app.patch",  # Simulation.minimizeEnergy -> ours
    "StiffnessResult": ".analysis", "stiffness": ".analysis",
}


def __getattr__(name: str) -> _Any:
    if name == "METHODS":  # the registered method names, as of now (methods may be registered later)
        return __getattr__("method_names")()
    if name not in _LAZY:
        if name == "ContextEnergy":  # the former name of EnergyBridge, with a DeprecationWarning
            from .core.bridge import deprecated_name
            return deprecated_name(__name__, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> _List[str]:
    return sorted({name for name in globals() if not name.startswith("_")} | set(__all__) | {"__version__"})


__all__ = ["minimize", "minimize_simulation", "ReparamMinimizer", "MinimizationResult", "StageResult",
           "HistoryPoint", "MinimizerOptions", "METHODS", "Method", "RunState", "register_method",
           "unregister_method", "get_method", "method_names", "EnergyBridge", "NonFiniteEnergyError",
           "EngineUnavailableError", "InvalidPositionsError", "GNNGenerator", "LinearModeGenerator", "build_generator",
           "SlowModes", "compute_slow_modes", "force_constant_matrix", "graph_laplacian", "prepare", "PreparedSystem",
           "PreparationError", "ReparamIntegrator", "cpp_available", "minimize_many", "relax", "stiffness",
           "StiffnessResult", "patch", "unpatch", "register_generator", "unregister_generator", "generator_names",
           "GeneratorInputs"]

_torch_order.install()
