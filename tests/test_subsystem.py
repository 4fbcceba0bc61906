"""Force constants of a solute probed on a System of the solute alone: the same numbers as on the whole box."""
import numpy as np
import openmm
import pytest
import scipy.sparse
from openmm import app, unit

from openmm_reparam import force_constant_matrix
from openmm_reparam.core.atoms import solvent_mask
from openmm_reparam.core.subsystem import restrict_system, restricted_context
from openmm_reparam.testing import prepared_pdb

from conftest import make_context, perturbed, positions_of, tip4pew_water_box


def solvated(forcefield_files, model="tip3p"):
    """Met-enkephalin in 0.5 nm of water with 0.15 M NaCl, PME 0.7 nm, HBonds; (System, start, solute mask)."""
    pdb = app.PDBFile(prepared_pdb("1plw"))
    forcefield = app.ForceField(*forcefield_files)
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.addSolvent(forcefield, model=model, padding=0.5 * unit.nanometer, ionicStrength=0.15 * unit.molar)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.7 * unit.nanometer, constraints=app.HBonds)
    start = perturbed(np.array(modeller.positions.value_in_unit(unit.nanometer)), 0.01, seed=3)
    return system, start, ~solvent_mask(system)


def add_restraints_and_a_custom_bond(system, solute):
    """A CustomExternalForce restraint on the solute (with a global parameter changed in the Context later)
    and a CustomBondForce between two solute atoms, each in its own force group."""
    restraint = openmm.CustomExternalForce("k*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    restraint.addGlobalParameter("k", 100.0)
    for name in ("x0", "y0", "z0"):
        restraint.addPerParticleParameter(name)
    for i in np.flatnonzero(solute)[::3]:
        restraint.addParticle(int(i), [0.1 * (i % 7), 0.2, 0.3])
    restraint.setForceGroup(1)
    system.addForce(restraint)
    bond = openmm.CustomBondForce("0.5*kb*(r-r0)^2")
    bond.addPerBondParameter("kb")
    bond.addPerBondParameter("r0")
    bond.addBond(0, 20, [5000.0, 0.4])
    bond.setForceGroup(2)
    system.addForce(bond)


def solute_block(k, solute):
    index = np.flatnonzero(solute)
    return scipy.sparse.csr_matrix(k)[index][:, index].toarray()


@pytest.mark.parametrize("files", [("amber14-all.xml", "amber14/tip3p.xml"),
                                   ("charmm36.xml", "charmm36/water.xml")], ids=["amber14", "charmm36"])
def test_solute_force_constants_equal_those_of_the_whole_box(files):
    """Reference platform, exact finite differences: the solute block of K probed on the solute alone equals
    the one probed on the whole water box (``restrict=False``: the same solute atoms perturbed, every particle
    present), with bonded terms, PME, CHARMM's CMAP, NBFIX CustomNonbondedForce and CustomBondForce, and custom
    restraints with a changed global parameter."""
    system, start, solute = solvated(files)
    add_restraints_and_a_custom_bond(system, solute)
    assert restrict_system(system, solute) is not None
    context = make_context(system, start, "Reference")
    context.setParameter("k", 250.0)
    whole, _, evaluations_whole = force_constant_matrix(context, method="exact", atoms=solute, restrict=False)
    fast, method, evaluations = force_constant_matrix(context, method="exact", atoms=solute)
    assert method == "exact" and scipy.sparse.issparse(fast) and fast.shape == whole.shape
    expected = solute_block(whole, solute)
    np.testing.assert_allclose(solute_block(fast, solute), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    assert evaluations == evaluations_whole == 3 * solute.sum() + 1  # the same differences, on a smaller System
    assert fast[np.flatnonzero(~solute)].nnz == 0  # nothing outside the solute
    np.testing.assert_array_equal(positions_of(context), positions_of(make_context(system, start, "Reference")))


def test_restricted_context_keeps_the_box_parameters_and_force_groups():
    system, start, solute = solvated(("amber14-all.xml", "amber14/tip3p.xml"))
    add_restraints_and_a_custom_bond(system, solute)
    integrator = openmm.VerletIntegrator(0.001)
    integrator.setIntegrationForceGroups({0, 2})  # the restraint (group 1) is not minimized
    context = make_context(system, start, "Reference", integrator)
    box = [openmm.Vec3(3.1, 0, 0), openmm.Vec3(0, 3.2, 0), openmm.Vec3(0, 0, 3.3)] * unit.nanometer
    context.setPeriodicBoxVectors(*box)
    context.setParameter("k", 7.0)
    probe = restricted_context(context, solute)
    assert probe.getSystem().getNumParticles() == solute.sum()
    assert probe.getParameter("k") == 7.0 and probe.getIntegrator().getIntegrationForceGroups() == 0b101
    np.testing.assert_allclose(probe.getState().getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer),
                               np.diag([3.1, 3.2, 3.3]))
    np.testing.assert_allclose(positions_of(probe), start[solute])


def test_sparse_force_constants_on_the_solute_alone_equal_the_reference_path():
    """The coloured path (what solvated proteins use) gives the same numbers on the solute alone as probing the
    whole Context (``restrict=False``)."""
    method = "sparse"
    system, start, solute = solvated(("amber14-all.xml", "amber14/tip3p.xml"))
    context = make_context(system, start, "Reference")
    fast, _, evaluations = force_constant_matrix(context, method=method, atoms=solute)
    slow, _, evaluations_slow = force_constant_matrix(context, method=method, atoms=solute, restrict=False)
    expected = solute_block(slow, solute)
    np.testing.assert_allclose(solute_block(fast, solute), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    assert evaluations == evaluations_slow  # the same finite differences, on a smaller System


def test_systems_that_cannot_be_restricted_exactly_fall_back_on_the_whole_system():
    """GB implicit solvent is many-body; a torsion across the cut couples two chosen atoms through a third;
    a chosen virtual site needs its parents: each gives None, and the force constants are still computed."""
    pdb = app.PDBFile(prepared_pdb("1plw"))
    gb = app.ForceField("amber14-all.xml", "implicit/obc2.xml").createSystem(pdb.topology)
    half = np.arange(gb.getNumParticles()) < 40
    assert restrict_system(gb, half) is None
    vacuum = app.ForceField("amber14-all.xml").createSystem(pdb.topology)
    assert restrict_system(vacuum, half) is None  # the chain is cut: bonded terms straddle
    water, _ = tip4pew_water_box()
    particle = np.arange(water.getNumParticles())
    assert restrict_system(water, particle < 4) is None  # a chosen virtual site (the first water's M site)
    assert restrict_system(water, particle < 3) is None  # the M site left out, its parents chosen
    context = make_context(gb, np.array(pdb.positions.value_in_unit(unit.nanometer)), "Reference")
    k, method, evaluations = force_constant_matrix(context, method="exact", atoms=half)
    assert evaluations == 3 * 40 + 1 and solute_block(k, half).max() > 1e4
