"""A reporter written for OpenMM's own minimizer reads the keys OpenMM passes; it works in every stage of every
method, and our stages give those keys their meaning there (no restraint: 0; the constraint error of the
reported positions)."""
import math

import openmm
import pytest
from openmm import app

from openmm_reparam import minimize
from openmm_reparam.run.registry import options_used

from conftest import load_peptide, make_context, perturbed

OPENMM_KEYS = ("system energy", "restraint energy", "restraint strength", "max constraint error")
FAST = dict(steps=40, fine_steps=40, n_modes=6, hidden=8, fit_steps=100, declash_steps=5, never_worse=True)
EXPECTED_STAGES = {"gnn": {"baseline", "reparam", "fine", "polish"}, "linear": {"baseline", "reparam", "fine", "polish"},
                   "adam": {"baseline", "adam", "polish"}, "lbfgs": {"lbfgs"},
                   "precon": {"baseline", "declash", "precon"}, "fire": {"baseline", "fire"}}
# precon and fire stop below the polish's finish tolerance here, so the polish has nothing to run (no stage)


class OpenMMStyleReporter(openmm.MinimizationReporter):
    """What a script written for LocalEnergyMinimizer does: read every key it knows."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def report(self, iteration, x, grad, args):
        self.rows.append((args["stage"], {key: float(args[key]) for key in OPENMM_KEYS}, len(x)))
        return False


@pytest.fixture(scope="module")
def constrained():
    topology, system, positions = load_peptide("1plw", constraints=app.HBonds)
    return system, perturbed(positions, 0.01, seed=3)


@pytest.mark.parametrize("method", sorted(EXPECTED_STAGES))
def test_every_openmm_key_in_every_stage(constrained, method, engine):
    system, start = constrained
    reporter = OpenMMStyleReporter()
    result = minimize(make_context(system, start), reporter=reporter, method=method, engine=engine,
                      **options_used(method, FAST))
    assert result.converged
    seen = {stage for stage, _, _ in reporter.rows}
    assert seen >= EXPECTED_STAGES[method], seen
    for stage, values, size in reporter.rows:
        assert size == 3 * system.getNumParticles()
        assert all(math.isfinite(v) for v in values.values()), (stage, values)
        if stage not in ("baseline", "polish", "lbfgs"):  # our own stages (the declash too): on the constraints
            assert values["restraint energy"] == 0.0 and values["restraint strength"] == 0.0
            assert 0.0 <= values["max constraint error"] < 1e-3, (stage, values)
    assert min(values["system energy"] for _, values, _ in reporter.rows) <= result.initial_energy
