"""The energy bridge and the generators: gradients are −forces, and dE/dθ is the chain rule through G."""
import copy
import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from openmm_reparam import EnergyBridge, GNNGenerator, LinearModeGenerator, compute_slow_modes
from openmm_reparam.reparam.generators import export_state

from conftest import make_context, perturbed


def test_bridge_energy_and_gradient_match_openmm(plw):
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.01), "Reference")
    bridge = EnergyBridge(context)
    x = torch.tensor(perturbed(positions, 0.01), dtype=torch.float64, requires_grad=True)
    energy = bridge(x)
    energy.backward()
    state = context.getState(getEnergy=True, getForces=True)
    assert float(energy.detach()) == pytest.approx(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    np.testing.assert_allclose(x.grad.numpy(), -np.asarray(forces), rtol=1e-12, atol=1e-9)
    assert bridge.evaluations == 1


def test_bridge_respects_integrator_force_groups(plw):
    _, system, positions = plw
    system = copy.deepcopy(system)
    for i, force in enumerate(system.getForces()):
        force.setForceGroup(1 if isinstance(force, openmm.HarmonicBondForce) else 0)
    integrator = openmm.VerletIntegrator(0.001)
    integrator.setIntegrationForceGroups({1})
    context = make_context(system, positions, "Reference", integrator)
    bridge = EnergyBridge(context)
    loss, _, energy, _ = bridge.evaluate(positions)
    bonds_only = context.getState(getEnergy=True, groups={1}).getPotentialEnergy()
    assert energy == pytest.approx(bonds_only.value_in_unit(unit.kilojoule_per_mole))


@pytest.mark.parametrize("kind", ["gnn", "linear"])
def test_finite_difference_gradient_through_generator(plw, kind):
    """dE/dθ from autograd (Jᵀ(−F)) equals a central finite difference of the OpenMM energy."""
    _, system, positions = plw
    start = perturbed(positions, 0.005, seed=3)
    context = make_context(system, start, "Reference")
    modes = compute_slow_modes(context, n_modes=8).vectors
    if kind == "gnn":
        generator = GNNGenerator(modes, start, hidden=8, layers=2, seed=1)
        generator.fit(start, steps=50)
    else:
        generator = LinearModeGenerator(modes, start)
    bridge = EnergyBridge(context)
    params = generator.ordered_parameters()
    loss = bridge(generator())
    loss.backward()
    rng = np.random.default_rng(0)
    for param in params[:3]:
        flat = param.data.view(-1)
        for index in rng.choice(flat.numel(), size=min(3, flat.numel()), replace=False):
            h = 1e-5 if kind == "gnn" else 1e-6
            original = float(flat[index])
            flat[index] = original + h
            e_plus = bridge.evaluate(generator().detach().numpy())[0]
            flat[index] = original - h
            e_minus = bridge.evaluate(generator().detach().numpy())[0]
            flat[index] = original
            numeric = (e_plus - e_minus) / (2 * h)
            analytic = float(param.grad.view(-1)[index])
            assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-3 * max(1.0, abs(numeric)))


def test_generators_start_exactly_at_the_start(plw):
    _, _, positions = plw
    modes = np.linalg.qr(np.random.default_rng(0).normal(size=(len(positions), 6)))[0]
    gnn = GNNGenerator(modes, positions, hidden=16, seed=0)
    rms = gnn.fit(positions, steps=200)
    assert rms < 1e-3
    np.testing.assert_allclose(gnn().detach().numpy(), positions, atol=1e-12)
    np.testing.assert_allclose(LinearModeGenerator(modes, positions)().detach().numpy(), positions, atol=1e-15)
    state = export_state(gnn)
    assert state["parameter_names"][0] == "latent" and len(state["parameters"]) == 3 * 2 + 3
