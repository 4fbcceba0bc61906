"""The metric-aware reparametrized step (``reparam_optimizer="gauss-newton"``, Python engine only)."""
import numpy as np
import pytest
import torch

import openmm_reparam
from openmm_reparam import MinimizerOptions, minimize
from openmm_reparam.engines import gauss_newton
from openmm_reparam.reparam.generators import LinearModeGenerator

from conftest import make_context, perturbed

SMALL = dict(method="gnn", steps=40, n_modes=10, hidden=8, fit_steps=200, seed=2, fine_steps=0, polish=False,
             reparam_optimizer="gauss-newton")


def _run(plw, **options):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.03, seed=6))
    return minimize(context, **{**SMALL, **options})


def test_gauss_newton_lowers_the_energy_and_records_its_steps(plw):
    result = _run(plw, engine="python")
    stage = result.stage("reparam")
    assert stage.iterations > 10 and stage.final_energy < stage.initial_energy - 100
    assert stage.energy_evaluations >= stage.iterations
    assert sum(1 for point in result.history if point.stage == "reparam") == stage.iterations
    assert result.final_energy == pytest.approx(stage.final_energy, rel=1e-9)
    assert result.engine == "python"


def test_gauss_newton_is_deterministic(plw):
    first, again = _run(plw, engine="python", steps=15), _run(plw, engine="python", steps=15)
    assert [p.energy for p in first.history] == pytest.approx([p.energy for p in again.history], rel=1e-9)


def test_gauss_newton_is_python_only():
    with pytest.raises(ValueError, match="Python engine only"):
        MinimizerOptions.from_kwargs(reparam_optimizer="gauss-newton", engine="cpp")
    with pytest.raises(ValueError, match="reparam_optimizer"):
        MinimizerOptions.from_kwargs(reparam_optimizer="newton")
    assert MinimizerOptions().reparam_optimizer == "adam"


def test_with_engine_auto_the_reparam_stage_runs_in_python(plw):
    result = _run(plw, engine="auto", steps=10, fine_steps=10)
    expected = {"python", "cpp"} if openmm_reparam.cpp_available() else {"python"}
    assert set(result.engine.split("+")) == expected  # the fine stage on the compiled engine when it is built


def test_direction_solves_the_damped_normal_equations():
    """Linear generator over orthonormal modes: JᵀJ = I, so d = b / (1 + λ) with λ = DAMPING."""
    rng = np.random.default_rng(0)
    modes = np.linalg.qr(rng.normal(size=(15, 4)))[0]
    generator = LinearModeGenerator(modes, rng.normal(size=(15, 3)))
    linear = gauss_newton._Linearization(generator, generator.ordered_parameters())
    b = [torch.as_tensor(rng.normal(size=(4, 3)))]
    d, jd = gauss_newton.gauss_newton_direction(linear, b)
    np.testing.assert_allclose(d[0].numpy(), b[0].numpy() / (1 + gauss_newton.DAMPING), rtol=1e-10)
    np.testing.assert_allclose(jd.detach().numpy(), modes @ d[0].numpy(), atol=1e-12)
