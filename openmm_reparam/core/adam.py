"""Adam (Kingma and Ba, 2015) on a list of torch parameters: the update of ``torch.optim.Adam`` with its
defaults (single-tensor path: no weight decay, amsgrad, foreach or fused kernels), written out.

Why not ``torch.optim.Adam`` itself: constructing the first one in a process imports ``torch._dynamo``, which
took 0.9 s on a 2-core machine (torch 2.9). That is longer than a whole small minimization, and it landed inside
the first stage of every new process: the first step of a run, inside its time budget. The update here is
the same arithmetic in the same order (tested against ``torch.optim.Adam``), and the compiled engine's
``AdamOptimizer`` is the same update again.
"""
from __future__ import annotations

from typing import Iterable, List, Tuple

import torch


class Adam:
    """``torch.optim.Adam(parameters, lr, betas, eps)``'s ``zero_grad`` and ``step``; each parameter counts its own
    steps (one without a gradient is skipped, as torch skips it)."""

    def __init__(self, parameters: Iterable[torch.Tensor], lr: float, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.parameters: List[torch.Tensor] = list(parameters)
        if not lr >= 0.0 or not eps >= 0.0 or not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"Adam needs lr >= 0, eps >= 0 and betas in [0, 1); got {lr}, {eps}, {betas}")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.parameters]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.parameters]
        self.steps = [0] * len(self.parameters)

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none``, torch's default)."""
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, parameter in enumerate(self.parameters):
            grad = parameter.grad
            if grad is None:
                continue
            self.steps[i] += 1
            step = float(self.steps[i])
            exp_avg, exp_avg_sq = self.exp_avg[i], self.exp_avg_sq[i]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = self.lr / (1 - beta1 ** step)
            denom = (exp_avg_sq.sqrt() / (1 - beta2 ** step) ** 0.5).add_(self.eps)
            parameter.addcdiv_(exp_avg, denom, value=-step_size)
