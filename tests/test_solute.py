"""Reparametrizing the solute while water and ions move as plain coordinates."""
import numpy as np
import pytest
from openmm import unit

from openmm_reparam import compute_slow_modes, minimize
from openmm_reparam.core.atoms import solvent_mask
from openmm_reparam.reparam.solute import SoluteGenerator

from conftest import make_context, positions_of, solvated_enkephalin


@pytest.fixture(scope="module")
def solvated_peptide():
    """Met-enkephalin (75 atoms) in a small TIP3P box with a few ions, PME, HBonds and rigid water."""
    return solvated_enkephalin()


def test_solvent_mask_finds_waters_and_ions_only(solvated_peptide):
    system, _ = solvated_peptide
    solvent = solvent_mask(system)
    assert not solvent[:75].any() and solvent[75:].all()


def test_slow_modes_of_a_subset_have_one_row_per_chosen_atom(solvated_peptide):
    system, positions = solvated_peptide
    context = make_context(system, positions)
    chosen = ~solvent_mask(system)
    modes = compute_slow_modes(context, n_modes=6, atoms=chosen)
    assert modes.vectors.shape == (75, 6)
    np.testing.assert_allclose(modes.vectors.T @ modes.vectors, np.eye(6), atol=1e-8)
    np.testing.assert_array_equal(positions_of(context), positions_of(make_context(system, positions)))


def test_gnn_on_a_solvated_peptide_moves_solute_by_modes_and_water_directly(solvated_peptide, engine):
    system, start = solvated_peptide
    context = make_context(system, start)
    result = minimize(context, method="gnn", steps=60, fine_steps=60, n_modes=8, hidden=8, fit_steps=200,
                      engine=engine)
    assert result.stage("reparam").iterations > 0 and result.engine == engine  # one engine ran every stage
    assert result.converged and result.final_energy < result.initial_energy
    final = positions_of(context)
    assert np.abs(final[75:] - start[75:]).max() > 1e-3  # the water moved
    tolerance = context.getIntegrator().getConstraintTolerance()
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        d = d.value_in_unit(unit.nanometer)
        assert abs(np.linalg.norm(final[i] - final[j]) - d) <= 2 * tolerance * d


def test_solute_generator_starts_exactly_at_the_start(solvated_peptide):
    from openmm_reparam.reparam.generators import LinearModeGenerator
    system, start = solvated_peptide
    solute = ~solvent_mask(system)
    modes = np.linalg.qr(np.random.default_rng(0).normal(size=(int(solute.sum()), 4)))[0]
    generator = SoluteGenerator(LinearModeGenerator(modes, start[solute]), solute, start)
    np.testing.assert_array_equal(generator().detach().numpy(), start)
    assert len(generator.ordered_parameters()) == 2
