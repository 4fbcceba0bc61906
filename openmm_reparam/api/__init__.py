"""The public entry points of a minimization: ``minimize`` / ``ReparamMinimizer`` (:mod:`.minimizer`) and
``ReparamIntegrator`` (:mod:`.integrator`)."""
from .integrator import ReparamIntegrator
from .minimizer import ReparamMinimizer, minimize, minimize_simulation

__all__ = ["ReparamIntegrator", "ReparamMinimizer", "minimize", "minimize_simulation"]
