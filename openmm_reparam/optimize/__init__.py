"""The run: options (one table of defaults), the orchestrator that orders the stages (``orchestrator``), OpenMM's
L-BFGS stages (``lbfgs``), the recorder and the result. Engines (:mod:`openmm_reparam.engines`) sit between the
bookkeeping modules here and the orchestrator, so this package imports nothing eagerly."""
