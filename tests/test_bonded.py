"""The force constants read from the bond and angle terms (precon's default K) against the measured ones."""
import numpy as np
import openmm
import pytest
from openmm import app

from openmm_reparam import minimize
from openmm_reparam.reparam.bonded import bonded_force_constants
from openmm_reparam.reparam.slow_modes import force_constant_matrix

from conftest import lbfgs_energy, load_peptide, make_context, perturbed


@pytest.fixture(scope="module")
def enkephalin():
    _, system, positions = load_peptide("1plw")
    return system, positions


def _bonds(system):
    force = next(f for f in system.getForces() if isinstance(f, openmm.HarmonicBondForce))
    return [force.getBondParameters(b)[:2] for b in range(force.getNumBonds())]


def test_bonded_k_has_the_bond_and_angle_pairs_and_the_bond_stiffness(enkephalin):
    system, positions = enkephalin
    k = bonded_force_constants(system, positions)
    assert (k != k.T).nnz == 0 and k.diagonal().sum() == 0 and k.min() >= 0
    bonds = _bonds(system)
    for i, j in bonds:
        assert k[i, j] > 1e4  # kJ/mol/nm^2: every covalent bond is stiff
    angle = next(f for f in system.getForces() if isinstance(f, openmm.HarmonicAngleForce))
    i, _, l, _, _ = angle.getAngleParameters(0)
    assert k[i, l] > 0  # the outer pair of an angle is coupled
    pairs = {tuple(sorted(b)) for b in bonds} | {tuple(sorted(angle.getAngleParameters(a)[0:3:2]))
                                                 for a in range(angle.getNumAngles())}
    rows, cols = k.nonzero()
    assert {(a, b) for a, b in zip(rows, cols) if a < b} == pairs  # nothing else (no torsions, no contacts)


def test_bonded_k_is_close_to_the_measured_hessian_blocks_on_bonds(enkephalin):
    """On each bond, K_ij (the bond's k plus its angles' bending) is within a factor 3 of ‖H_ij‖ measured by
    finite differences of the forces: the same coupling pattern, at no force evaluation."""
    system, positions = enkephalin
    bonded = bonded_force_constants(system, positions)
    context = make_context(system, positions, "Reference")
    measured, _, evaluations = force_constant_matrix(context, positions, method="sparse", cutoff=0.25)
    assert evaluations > 20
    ratios = np.array([bonded[i, j] / measured[i, j] for i, j in _bonds(system)])
    assert np.all((ratios > 1 / 3) & (ratios < 3)), ratios.min()


def test_precon_with_bonded_k_and_projected_declash_converges_below_lbfgs():
    """The defaults on a noisy model with HBonds: no set-up evaluation, the declash on the constraint surface, the
    polish with nothing left to do; converged and no higher than OpenMM's L-BFGS alone."""
    _, system, positions = load_peptide("1plw", constraints=app.HBonds)
    start = perturbed(positions, 0.02, seed=2)
    result = minimize(make_context(system, start), method="precon")
    assert [s.name for s in result.stages] == ["declash", "precon_setup", "precon", "polish"]
    assert result.stage("declash").iterations == 20 and result.stage("polish").stop_reason == "converged"
    assert result.stage("polish").iterations == 0 and result.stage("precon_setup").energy_evaluations <= 4
    assert result.converged and result.final_energy <= lbfgs_energy(system, start) + 1.0


def test_precon_matrix_and_declash_options_are_checked():
    _, system, positions = load_peptide("1plw")
    with pytest.raises(ValueError, match="precon_matrix"):
        minimize(make_context(system, positions), method="precon", precon_matrix="guessed")
    with pytest.raises(ValueError, match="declash_by"):
        minimize(make_context(system, positions), method="precon", declash_by="ase")
