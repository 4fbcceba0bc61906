"""core.adam.Adam: torch.optim.Adam's update without torch.optim (whose first construction in a process
imports torch._dynamo, about a second)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from openmm_reparam.core.adam import Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parameters(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=torch.float64))
            for shape in ((7, 3), (5,), (2, 4))]


def _loss(parameters, step: int) -> torch.Tensor:
    a, b, c = parameters
    loss = (a.sin() * a).sum() + (b ** 4 - 3 * b).sum()
    if step % 3:  # c gets no gradient every third step: both optimizers must skip it then
        loss = loss + (c @ c.T).trace() * 0.7
    return loss


@pytest.mark.parametrize("lr,betas,eps", [(1e-3, (0.9, 0.999), 1e-8), (0.05, (0.5, 0.9), 1e-3)])
def test_matches_torch_optim_adam_step_for_step(lr, betas, eps):
    ours, theirs = _parameters(0), _parameters(0)
    mine, reference = Adam(ours, lr=lr, betas=betas, eps=eps), torch.optim.Adam(theirs, lr=lr, betas=betas, eps=eps)
    for step in range(60):
        for optimizer, parameters in ((mine, ours), (reference, theirs)):
            optimizer.zero_grad()
            _loss(parameters, step).backward()
            optimizer.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)
    assert mine.steps == [60, 60, 40]
    assert all(p.grad is not None for p in ours[:2])
    mine.zero_grad()
    assert all(p.grad is None for p in ours)


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="betas"):
        Adam(_parameters(0), lr=1e-3, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr"):
        Adam(_parameters(0), lr=-1.0)


def test_a_minimization_does_not_import_torch_dynamo():
    """The generator fit and the Python engine's Adam stages run without torch.optim: a fresh process that
    minimizes with ``gnn`` on the Python engine never imports torch._dynamo."""
    script = (
        "import sys\n"
        "from openmm_reparam.testing import load_peptide, make_context, perturbed\n"
        "from openmm_reparam import minimize\n"
        "_, system, positions = load_peptide('1plw')\n"
        "context = make_context(system, perturbed(positions, 0.02))\n"
        "result = minimize(context, method='gnn', engine='python', steps=20, fine_steps=20)\n"
        "assert result.final_energy < result.initial_energy\n"
        "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
