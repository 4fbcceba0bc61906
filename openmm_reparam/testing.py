"""Helpers for tests and benchmarks: small prepared structures shipped with the package and the few lines that
turn them into an OpenMM System, a perturbed start and a Context.

The structures are in ``openmm_reparam/data/`` (installed with the package, see ``package_data`` in setup.py):

* ``1plw_prepared.pdb``: met-enkephalin (1PLW model 1, 75 atoms), cleaned and protonated;
* ``5awl_prepared.pdb``: chignolin (5AWL, 166 atoms), cleaned and protonated.

    from openmm_reparam.testing import load_peptide, make_context, perturbed
    topology, system, positions = load_peptide("5awl")
    context = make_context(system, perturbed(positions, 0.02))

Used by ``tests/conftest.py`` and by ``python -m benchmarks first-run``; not part of the minimizer itself.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np
import openmm
from openmm import app, unit

#: Where the prepared structures are stored.
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
#: The names ``load_peptide`` accepts.
PEPTIDES = ("1plw", "5awl")


def prepared_pdb(name: str = "1plw") -> str:
    """The path of a prepared structure shipped with the package: ``name`` is one of :data:`PEPTIDES`."""
    if name not in PEPTIDES:
        raise ValueError(f"unknown prepared structure {name!r}; choose one of {', '.join(PEPTIDES)}")
    return os.path.join(DATA_DIR, f"{name}_prepared.pdb")


def load_peptide(name: str = "1plw", constraints=None) -> Tuple[app.Topology, openmm.System, np.ndarray]:
    """(topology, system, positions in nm) of a prepared structure with amber14-all + OBC2, NoCutoff."""
    pdb = app.PDBFile(prepared_pdb(name))
    forcefield = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    system = forcefield.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=constraints)
    positions = np.array(pdb.positions.value_in_unit(unit.nanometer))
    return pdb.topology, system, positions


def perturbed(positions: np.ndarray, sigma: float = 0.02, seed: int = 0) -> np.ndarray:
    """``positions`` plus seeded Gaussian noise of ``sigma`` (same unit as the positions) on every coordinate."""
    return positions + np.random.default_rng(seed).normal(0.0, sigma, positions.shape)


def make_context(system: openmm.System, positions, platform: str = "CPU",
                 integrator: Optional[openmm.Integrator] = None) -> openmm.Context:
    """A Context on ``platform`` (the CPU platform with one thread by default) at ``positions`` (nm)."""
    if integrator is None:
        integrator = openmm.VerletIntegrator(0.001)
    properties = {"Threads": "1"} if platform == "CPU" else {}
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform), properties)
    context.setPositions(np.asarray(positions) * unit.nanometer)
    return context
