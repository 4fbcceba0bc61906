"""Shared fixtures: small real protein Systems (amber14 + OBC2) and Contexts on the CPU/Reference platforms.

``load_peptide``, ``perturbed``, ``make_context``, ``tip4pew_water_box`` and ``solvated_enkephalin`` come from
:mod:`openmm_reparam.testing` (benchmarks use them too); ``DATA`` is ``tests/data`` (raw PDB entries for the
preparation and command-line tests)."""
from __future__ import annotations

import os
import warnings

import torch  # noqa: F401  (before openmm, so that openmmtorch's plugin loads)
import numpy as np
import openmm
import pytest
from openmm import unit

# the helpers the benchmarks use too live in the package; imported here under the names the tests use
from openmm_reparam.testing import (load_peptide, make_context, perturbed, solvated_enkephalin,  # noqa: F401
                                    tip4pew_water_box)

DATA = os.path.join(os.path.dirname(__file__), "data")

warnings.filterwarnings("ignore", message="importing 'simtk.openmm' is deprecated")


def energy_of(context: openmm.Context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def positions_of(context: openmm.Context) -> np.ndarray:
    return np.array(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer))


def external_force_system(expression: str, particles: int) -> openmm.System:
    """``particles`` particles of mass 1, each in the same CustomExternalForce ``expression``."""
    system = openmm.System()
    force = openmm.CustomExternalForce(expression)
    for particle in range(particles):
        system.addParticle(1.0)
        force.addParticle(particle, [])
    system.addForce(force)
    return system


def lbfgs_energy(system: openmm.System, positions, tolerance: float = 10.0, platform: str = "CPU") -> float:
    context = make_context(system, positions, platform)
    openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0)
    return energy_of(context)


def typical_lbfgs_energy(system: openmm.System, positions, draws: int = 3) -> float:
    """OpenMM's L-BFGS energy from ``positions`` as it typically ends: the median over the start and ``draws`` - 1
    copies moved by 1e-7 nm. On PME boxes one run is a draw: the CPU platform's FFT plan is chosen by timing, so
    its rounding changes with the machine's load, and LEM's chaotic path with it (a 372-atom solvated peptide:
    -5,234 to -5,413 kJ/mol from such copies, where Adam ended at -5,360.8 from every one)."""
    start = np.asarray(positions)
    starts = [start] + [start + np.random.default_rng(k).normal(0.0, 1e-7, start.shape) for k in range(1, draws)]
    return float(np.median([lbfgs_energy(system, x) for x in starts]))


@pytest.fixture(scope="session")
def plw():
    return load_peptide("1plw")


@pytest.fixture(scope="session")
def awl():
    return load_peptide("5awl")


@pytest.fixture(params=["python", "cpp"])
def engine(request):
    """Both engines run the same stages; the compiled one only where the plugin was built."""
    import openmm_reparam
    if request.param == "cpp" and not openmm_reparam.cpp_available():
        pytest.skip("the C++ plugin is not built")
    return request.param
