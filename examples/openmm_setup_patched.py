# The OpenMM-Setup-shaped script of openmm_setup_implicit.py with openmm-reparam switched on inside it: the two
# openmm_reparam lines below are the only change. Every minimizeEnergy() after patch() is done by openmm-reparam
# (options: patch(method=..., never_worse=True, ...) or $OPENMM_REPARAM_OPTIONS) until openmm_reparam.unpatch().
#
#     python examples/openmm_setup_patched.py [input.pdb] [steps]

import os
import sys

from openmm import *
from openmm.app import *
from openmm.unit import *

import openmm_reparam
openmm_reparam.patch()

# Input Files

inputFile = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'data', '5awl_prepared.pdb')
pdb = PDBFile(inputFile)
forcefield = ForceField('amber14-all.xml', 'implicit/obc2.xml')

# System Configuration

nonbondedMethod = NoCutoff
constraints = HBonds
constraintTolerance = 0.000001

# Integration Options

dt = 0.002*picoseconds
temperature = 300*kelvin
friction = 1.0/picosecond

# Simulation Options

steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
equilibrationSteps = steps // 10
platform = Platform.getPlatformByName('CPU')
platformProperties = {'Threads': '1'}
dcdReporter = DCDReporter('trajectory.dcd', max(1, steps // 10))
dataReporter = StateDataReporter('log.txt', max(1, steps // 10), totalSteps=steps,
    step=True, speed=True, progress=True, potentialEnergy=True, temperature=True, separator='\t')

# Prepare the Simulation

print('Building system...')
topology = pdb.topology
positions = pdb.positions
system = forcefield.createSystem(topology, nonbondedMethod=nonbondedMethod, constraints=constraints)
integrator = LangevinMiddleIntegrator(temperature, friction, dt)
integrator.setConstraintTolerance(constraintTolerance)
integrator.setRandomNumberSeed(1)
simulation = Simulation(topology, system, integrator, platform, platformProperties)
simulation.context.setPositions(positions)

# Minimize and Equilibrate

print('Performing energy minimization...')
simulation.minimizeEnergy()
print('Minimized energy:', simulation.context.getState(getEnergy=True).getPotentialEnergy())
print('Equilibrating...')
simulation.context.setVelocitiesToTemperature(temperature, 1)
simulation.step(equilibrationSteps)

# Simulate

print('Simulating...')
simulation.reporters.append(dcdReporter)
simulation.reporters.append(dataReporter)
simulation.currentStep = 0
simulation.step(steps)
print('Final energy:', simulation.context.getState(getEnergy=True).getPotentialEnergy())
