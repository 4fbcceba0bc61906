"""The collapse guard: Adam's fixed-size steps must not leave a structure inside a force-field singularity."""
import numpy as np
import pytest

from openmm_reparam import minimize
from openmm_reparam.core.atoms import has_collapsed_contact

from conftest import energy_of, make_context, perturbed, positions_of


def test_collapse_guard_keeps_linear_out_of_a_coulomb_singularity(awl, engine):
    """From this strained start, moving along slow modes carries a polar hydrogen (no Lennard-Jones radius in
    amber14) onto an acceptor: with the guard off the energy runs away to −∞; with it on it stays physical."""
    _, system, positions = awl
    start = perturbed(positions, 0.02, seed=1)
    settings = dict(method="linear", never_worse=False, polish=False, fine_steps=0, n_modes=30, engine=engine)
    unguarded = make_context(system, start, "Reference")
    minimize(unguarded, collapse_distance=0.0, **settings)
    x = positions_of(unguarded)
    assert has_collapsed_contact(x, np.ones(len(x), bool), 0.07)  # the hazard is real here

    guarded = make_context(system, start, "Reference")
    minimize(guarded, **settings)
    x = positions_of(guarded)
    assert not has_collapsed_contact(x, np.ones(len(x), bool), 0.07)
    assert np.isfinite(energy_of(guarded))


def test_collapsed_result_falls_back_on_lbfgs(awl, engine):
    """With the in-stage guard blinded (no step counts as a force spike), the structure collapses; the final check
    sees a contact under a diverging force and replaces it by OpenMM's L-BFGS result from the same start."""
    _, system, positions = awl
    start = perturbed(positions, 0.02, seed=1)
    context = make_context(system, start, "Reference")
    with pytest.warns(UserWarning, match="singularity"):
        result = minimize(context, method="linear", never_worse=False, polish=False, fine_steps=0, n_modes=30,
                          spike_factor=1e12, engine=engine)
    x = positions_of(context)
    assert result.selected == "baseline" and result.stages[-1].name == "baseline"
    assert not has_collapsed_contact(x, np.ones(len(x), bool), 0.07)
    assert result.final_energy == pytest.approx(result.baseline_energy, rel=1e-6)
    assert result.final_energy == pytest.approx(energy_of(context), rel=1e-6)
