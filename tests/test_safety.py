"""The collapse guard: Adam's fixed-size steps must not leave a structure inside a force-field singularity."""
import numpy as np

from openmm_reparam import minimize
from openmm_reparam.core.atoms import has_collapsed_contact

from conftest import energy_of, make_context, perturbed, positions_of


def test_collapse_guard_keeps_cg_out_of_a_coulomb_singularity(awl):
    """From this strained start, moving along slow modes carries a polar hydrogen (no Lennard-Jones radius in
    amber14) onto an acceptor: with the guard off the energy runs away to −∞; with it on it stays physical."""
    _, system, positions = awl
    start = perturbed(positions, 0.02, seed=1)
    settings = dict(method="linear", never_worse=False, polish=False, fine_steps=0, n_modes=30)
    unguarded = make_context(system, start, "Reference")
    minimize(unguarded, collapse_distance=0.0, **settings)
    x = positions_of(unguarded)
    assert has_collapsed_contact(x, np.ones(len(x), bool), 0.07)  # the hazard is real here

    guarded = make_context(system, start, "Reference")
    minimize(guarded, **settings)
    x = positions_of(guarded)
    assert not has_collapsed_contact(x, np.ones(len(x), bool), 0.07)
    assert np.isfinite(energy_of(guarded))
