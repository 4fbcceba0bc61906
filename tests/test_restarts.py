"""Latent-space restarts (``restarts=K``): recorded, never worse, deterministic, within the budget."""
import numpy as np
import pytest
import torch

from openmm_reparam import MinimizerOptions, minimize
from openmm_reparam.reparam.generators import GNNGenerator, LinearModeGenerator
from openmm_reparam.reparam.restart import perturb_latent, reanchor, restart_seed
from openmm_reparam.reparam.solute import SoluteGenerator

from conftest import make_context, perturbed

SMALL = dict(steps=150, patience=30, n_modes=10, hidden=8, fit_steps=200, seed=3)
REPARAM = ("reparam", "restart1", "restart2")


def _run(plw, engine, sigma=0.03, **options):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, sigma, seed=4))
    return minimize(context, engine=engine, **{**SMALL, **options})


@pytest.mark.parametrize("method", ["gnn", "linear"])
def test_restarts_are_recorded_and_the_best_is_kept(plw, engine, method):
    sigma = 0.03 if method == "gnn" else 0.005  # slow modes alone leave a noisy start's clashes unresolved
    plain = _run(plw, engine, sigma, method=method, fine_steps=0, polish=False)
    searched = _run(plw, engine, sigma, method=method, fine_steps=0, polish=False, restarts=2)
    setup = ["slow_modes", "fit"] if method == "gnn" else ["slow_modes"]
    assert [s.name for s in plain.stages] == setup + ["reparam"]
    assert plain.restarts == []
    assert [s.name for s in searched.stages if s.name in REPARAM] == list(REPARAM)
    assert searched.stage("reparam").final_energy == pytest.approx(plain.stage("reparam").final_energy, rel=1e-9)
    assert [r["index"] for r in searched.restarts] == [1, 2]
    best = searched.stage("reparam").final_energy
    for record in searched.restarts:
        stage = searched.stage(f"restart{record['index']}")
        assert record["final_energy"] == stage.final_energy and record["start_energy"] == stage.initial_energy
        assert record["kept"] == (record["final_energy"] < best) and record["displacement"] > 0
        best = min(best, record["final_energy"])
    # no fine stage and no polish: the Context holds the best point over the reparam stage and every restart
    assert searched.final_energy == pytest.approx(best, rel=1e-9, abs=1e-6)
    assert searched.final_energy <= plain.final_energy + 1e-9 * abs(plain.final_energy)
    assert searched.to_dict()["restarts"] == searched.restarts


def test_restarts_then_fine_and_polish_as_before(plw, engine):
    plain = _run(plw, engine, method="gnn", fine_steps=100)
    searched = _run(plw, engine, method="gnn", fine_steps=100, restarts=1)
    assert [s.name for s in plain.stages] == ["slow_modes", "fit", "reparam", "fine", "polish"]
    assert [s.name for s in searched.stages] == ["slow_modes", "fit", "reparam", "restart1", "fine", "polish"]
    assert searched.converged and plain.converged
    best_reparam = min(s.final_energy for s in searched.stages if s.name in REPARAM)
    assert best_reparam <= plain.stage("reparam").final_energy


def test_same_seed_same_restarts_and_another_seed_differs(plw):
    first = _run(plw, "python", method="gnn", fine_steps=0, polish=False, restarts=2)
    again = _run(plw, "python", method="gnn", fine_steps=0, polish=False, restarts=2)
    other = _run(plw, "python", method="gnn", fine_steps=0, polish=False, restarts=2, seed=4)
    assert len(first.restarts) == len(again.restarts) == 2
    for a, b in zip(first.restarts, again.restarts):
        assert a["kept"] == b["kept"]
        for key in ("start_energy", "final_energy", "displacement"):
            assert a[key] == pytest.approx(b[key], rel=1e-9)
    assert first.restarts[0]["start_energy"] != pytest.approx(other.restarts[0]["start_energy"], rel=1e-6)


def test_restarts_stop_when_the_time_budget_is_spent(plw, engine):
    result = _run(plw, engine, method="gnn", restarts=3, time_budget=0.0)
    assert result.restarts == [] and not any(s.name.startswith("restart") for s in result.stages)
    assert result.stage("reparam").stop_reason == "deadline"


def test_restarts_stop_at_the_iteration_cap(plw, engine):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.03, seed=4))
    result = minimize(context, maxIterations=200, method="gnn", engine=engine, restarts=3, fine_steps=0,
                      polish=False, **{**SMALL, "patience": 1000})
    assert [s.name for s in result.stages] == ["slow_modes", "fit", "reparam", "restart1"]
    assert result.stage("reparam").iterations == 150 and result.stage("restart1").iterations == 50
    assert len(result.restarts) == 1


def test_restart_options_are_validated():
    assert MinimizerOptions().restarts == 0 and MinimizerOptions().restart_noise > 0
    with pytest.raises(ValueError, match="restarts"):
        MinimizerOptions.from_kwargs(restarts=-1)
    with pytest.raises(ValueError, match="restart_noise"):
        MinimizerOptions.from_kwargs(restart_noise=0.0)


def test_reanchor_puts_the_output_exactly_on_the_target():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(12, 3))
    modes = np.linalg.qr(rng.normal(size=(12, 4)))[0]
    target = x0 + rng.normal(0.0, 0.1, x0.shape)
    gnn = GNNGenerator(modes, x0, hidden=5, layers=1, seed=1)
    reanchor(gnn, target)
    np.testing.assert_allclose(gnn().detach().numpy(), target, atol=1e-12)
    solute = np.arange(16) < 12
    everything = np.vstack([x0, rng.normal(size=(4, 3))])
    wrapped = SoluteGenerator(LinearModeGenerator(modes, x0), solute, everything)
    moved = everything + 0.05
    reanchor(wrapped, moved)
    np.testing.assert_allclose(wrapped().detach().numpy(), moved, atol=1e-12)


def test_perturbation_has_the_requested_size_and_is_seeded():
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(20, 3))
    modes = np.linalg.qr(rng.normal(size=(20, 5)))[0]
    linear = LinearModeGenerator(modes, x0)
    assert perturb_latent(linear, 0.05, restart_seed(0, 1)) == pytest.approx(0.05, rel=1e-9)
    first = linear.z.detach().clone()
    linear.z.data.zero_()
    perturb_latent(linear, 0.05, restart_seed(0, 1))
    assert torch.equal(first, linear.z.detach())
    assert restart_seed(0, 1) != restart_seed(0, 2) != restart_seed(1, 1)
    gnn = GNNGenerator(modes, x0, hidden=5, layers=2, seed=1)
    assert perturb_latent(gnn, 0.01, 7) == pytest.approx(0.01, rel=0.1)
