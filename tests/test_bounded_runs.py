"""Every stage a run makes has a finite cap: OpenMM's L-BFGS, which has none of its own (maxIterations=0 runs
until it converges), is capped by ``polish_iterations`` wherever a method other than ``lbfgs`` calls it. Real
Contexts; the iterations are OpenMM's own, as it reports them to a reporter."""
import numpy as np
import openmm
from openmm import unit

from openmm_reparam import minimize
from openmm_reparam.testing import load_peptide, make_context, perturbed


class StageIterations(openmm.MinimizationReporter):
    """Counts the iterations reported per stage."""

    def __init__(self):
        super().__init__()
        self.counts = {}

    def report(self, iteration, x, grad, args):
        stage = args["stage"]
        self.counts[stage] = self.counts.get(stage, 0) + 1
        return False


def _lj_cluster(n=30, seed=0):
    """``n`` argon-like atoms on a jittered cubic grid: few atoms, so ``auto`` runs OpenMM's L-BFGS."""
    system, force = openmm.System(), openmm.NonbondedForce()
    for _ in range(n):
        system.addParticle(39.9)
        force.addParticle(0.0, 0.34, 0.996)
    system.addForce(force)
    grid = np.array([(i, j, k) for i in range(4) for j in range(4) for k in range(4)][:n], dtype=float) * 0.36
    return system, grid + np.random.default_rng(seed).normal(0, 0.03, grid.shape)


def test_autos_lbfgs_runs_at_most_polish_iterations():
    system, start = _lj_cluster()
    capped, free = StageIterations(), StageIterations()
    result = minimize(make_context(system, start), reporter=capped, polish_iterations=4, polish=False)
    minimize(make_context(system, start), reporter=free, polish=False)
    assert result.method == "lbfgs" and result.stages[0].name == "lbfgs"
    assert 0 < capped.counts["lbfgs"] <= 4 < free.counts["lbfgs"]


def test_each_polish_round_runs_at_most_polish_iterations():
    """Adam stopped after 5 steps leaves the polish a long way to go; each OpenMM round is capped, and the
    projected finish (``polish_projected_steps``) has its own cap."""
    _, system, positions = load_peptide("1plw")
    reporter = StageIterations()
    result = minimize(make_context(system, perturbed(positions, 0.02)), reporter=reporter, method="adam",
                      adam_steps=5, polish_iterations=3, polish_rounds=2, polish_projected_steps=4)
    assert result.stage("polish") is not None and not result.converged
    assert 0 < reporter.counts["polish"] <= 2 * 3 + 4
    assert np.isfinite(result.final_energy) and result.obstacles  # it says what holds it back
