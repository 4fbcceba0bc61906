"""An ordinary OpenMM simulation script in which energy minimization is done by openmm-reparam.

    python examples/dropin_simulation.py [IN.pdb] [--md-steps N] [--trajectory traj.dcd]

Everything is standard OpenMM (PDBFile, Modeller, ForceField, Simulation, reporters); the only change from the
usual script is the minimization line:

    simulation.minimizeEnergy()                  # before
    openmm_reparam.minimize(simulation.context)  # after
"""
import argparse
import os
import sys

import openmm
from openmm import app, unit

import openmm_reparam

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, os.pardir, "tests", "data", "5AWL.pdb")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("input", nargs="?", default=DEFAULT_INPUT, help="PDB file (default: chignolin, 5AWL)")
parser.add_argument("--md-steps", type=int, default=5000, help="2 fs steps of MD after minimizing")
parser.add_argument("--interval", type=int, default=500, help="steps between reports and frames")
parser.add_argument("--trajectory", default="trajectory.dcd")
parser.add_argument("--platform", default="CPU")
args = parser.parse_args()

# Standard OpenMM set-up: read, remove waters, add hydrogens, amber14 + OBC2 implicit solvent.
pdb = app.PDBFile(args.input)
forcefield = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
modeller = app.Modeller(pdb.topology, pdb.positions)
modeller.deleteWater()
modeller.addHydrogens(forcefield, pH=7.0)
system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
simulation = app.Simulation(modeller.topology, system, integrator, openmm.Platform.getPlatformByName(args.platform))
simulation.context.setPositions(modeller.positions)

# simulation.minimizeEnergy()
openmm_reparam.minimize(simulation.context)

state = simulation.context.getState(getEnergy=True)
print(f"minimized energy: {state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole):.3f} kJ/mol")

# Standard MD with reporters.
simulation.context.setVelocitiesToTemperature(300 * unit.kelvin)
simulation.reporters.append(app.DCDReporter(args.trajectory, args.interval))
simulation.reporters.append(app.StateDataReporter(sys.stdout, args.interval, step=True, potentialEnergy=True,
                                                  temperature=True, speed=True))
simulation.step(args.md_steps)
print(f"wrote {args.md_steps // args.interval} frames to {args.trajectory}")
