"""Helpers for tests and benchmarks: small prepared structures shipped with the package and the few lines that
turn them into an OpenMM System, a perturbed start and a Context.

The structures are in ``openmm_reparam/data/`` (installed with the package, see ``package_data`` in setup.py):

* ``1plw_prepared.pdb``: met-enkephalin (1PLW model 1, 75 atoms), cleaned and protonated;
* ``5awl_prepared.pdb``: chignolin (5AWL, 166 atoms), cleaned and protonated.

    from openmm_reparam.testing import load_peptide, make_context, perturbed
    topology, system, positions = load_peptide("5awl")
    context = make_context(system, perturbed(positions, 0.02))

Two more Systems built from them or from nothing: ``tip4pew_water_box`` (rigid TIP4P-Ew water, virtual sites) and
``solvated_enkephalin`` (met-enkephalin in TIP3P with ions, PME, HBonds).

Used by ``tests/conftest.py`` and by ``python -m benchmarks first-run`` and ``device-parity``; not part of the
minimizer itself.
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


def tip4pew_water_box(edge_nm: float = 1.4) -> Tuple[openmm.System, np.ndarray]:
    """(System, start): TIP4P-Ew waters (virtual sites, rigid) in a cubic box, PME 0.6 nm, the real atoms moved by
    0.01 nm of seeded noise (the virtual sites stay where their parents put them)."""
    forcefield = app.ForceField("amber14/tip4pew.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip4pew", boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.6 * unit.nanometer, rigidWater=True)
    positions = np.array(modeller.positions.value_in_unit(unit.nanometer))
    movable = np.array([not system.isVirtualSite(i) for i in range(system.getNumParticles())])
    return system, positions + np.where(movable[:, None], np.random.default_rng(0).normal(0, 0.01, positions.shape), 0)


def solvated_enkephalin() -> Tuple[openmm.System, np.ndarray]:
    """(System, start): met-enkephalin (75 atoms) in a small TIP3P box with a few ions (0.5 nm padding, 0.15 M),
    PME 0.7 nm, HBonds and rigid water, the start moved by 0.01 nm of seeded noise."""
    pdb = app.PDBFile(prepared_pdb("1plw"))
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.addSolvent(forcefield, padding=0.5 * unit.nanometer, ionicStrength=0.15 * unit.molar)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.7 * unit.nanometer, constraints=app.HBonds)
    return system, perturbed(np.array(modeller.positions.value_in_unit(unit.nanometer)), 0.01, seed=2)


def _noisy_real_atoms(system: openmm.System, positions: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``positions`` with seeded noise on the particles that have mass and are not virtual sites."""
    real = np.array([not system.isVirtualSite(i) and system.getParticleMass(i).value_in_unit(unit.dalton) > 0
                     for i in range(system.getNumParticles())])
    return positions + np.where(real[:, None], np.random.default_rng(seed).normal(0, sigma, positions.shape), 0)


def drude_water_box(edge_nm: float = 1.4, sigma: float = 0.01) -> Tuple[openmm.System, np.ndarray]:
    """(System, start): polarizable SWM4-NDP water (CHARMM polar 2019: a Drude particle on each oxygen, a virtual
    site, rigid) in a cubic box, PME 0.6 nm (at most half the edge), every particle with mass moved by ``sigma``
    nm of seeded noise (the Drude particles too: their springs start stretched)."""
    forcefield = app.ForceField("charmm_polar_2019.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="swm4ndp", boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * unit.nanometer)
    modeller.addExtraParticles(forcefield)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=min(0.6, edge_nm / 2) * unit.nanometer)
    return system, _noisy_real_atoms(system, np.array(modeller.positions.value_in_unit(unit.nanometer)), sigma, 0)


def amoeba_water_box(edge_nm: float = 1.2, sigma: float = 0.01) -> Tuple[openmm.System, np.ndarray]:
    """(System, start): AMOEBA 2018 water (flexible, polarizable, mutual induction) in a cubic box, PME 0.5 nm (at
    most half the edge), the atoms moved by ``sigma`` nm of seeded noise."""
    forcefield, cutoff = app.ForceField("amoeba2018.xml"), min(0.5, edge_nm / 2) * unit.nanometer
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip3p", boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME, nonbondedCutoff=cutoff,
                                     vdwCutoff=cutoff, polarization="mutual", mutualInducedTargetEpsilon=1e-5)
    return system, _noisy_real_atoms(system, np.array(modeller.positions.value_in_unit(unit.nanometer)), sigma, 0)
