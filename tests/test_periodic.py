"""Explicit, periodic solvent with virtual sites and rigid water: TIP4P-Ew under PME."""
import numpy as np
import openmm
import pytest
from openmm import app, unit

from openmm_reparam import minimize

from conftest import energy_of, make_context, positions_of, tip4pew_water_box, typical_lbfgs_energy


@pytest.fixture(scope="module")
def water_box():
    return tip4pew_water_box(1.4)


def test_gnn_on_periodic_tip4p_water(water_box, engine):
    system, start = water_box
    context = make_context(system, start)
    context.computeVirtualSites()
    box = context.getState().getPeriodicBoxVectors(asNumpy=True)._value
    before = energy_of(context)
    result = minimize(context, method="gnn", steps=150, fine_steps=150, n_modes=16, hidden=16, never_worse=True,
                      engine=engine)
    after = energy_of(context)
    assert after < before
    assert after <= typical_lbfgs_energy(system, start) + 0.005 * abs(after)
    np.testing.assert_array_equal(context.getState().getPeriodicBoxVectors(asNumpy=True)._value, box)
    final = positions_of(context)
    # virtual sites sit where their definition puts them, and rigid waters are rigid
    context.computeVirtualSites()
    np.testing.assert_allclose(positions_of(context), final, atol=1e-6)
    tolerance = context.getIntegrator().getConstraintTolerance()
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        d = d.value_in_unit(unit.nanometer)
        assert abs(np.linalg.norm(final[i] - final[j]) - d) <= 2 * tolerance * d
    start_forces = make_context(system, start).getState(getForces=True).getForces(asNumpy=True)._value
    assert result.rms_force < 0.05 * np.linalg.norm(start_forces) / np.sqrt(len(start_forces))
