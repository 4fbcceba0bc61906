"""openmm-reparam: energy minimization for OpenMM by neural-network reparametrization."""
__version__ = "0.1.0"
