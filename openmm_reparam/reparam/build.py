"""Building a fitted generator for a Context: slow modes, then the network fitted to the start."""
from __future__ import annotations

import time
from typing import List, Optional, Tuple

import numpy as np
import openmm
import torch

from ..core.units import as_positions
from ..optimize.result import StageResult
from .generators import GNNGenerator, LinearModeGenerator
from .slow_modes import compute_slow_modes


def build_generator(context: openmm.Context, method: str, seed: int, options,
                    positions: Optional[np.ndarray] = None) -> Tuple[torch.nn.Module, List[StageResult]]:
    """Slow modes of the Context's System at ``positions`` (default: the Context's) and the generator for
    ``method`` ("gnn" or "linear"), fitted to those positions. ``options``: a MinimizerOptions.
    Returns (generator, [StageResult("slow_modes"), StageResult("fit") for gnn])."""
    x0 = as_positions(context.getState(getPositions=True).getPositions(asNumpy=True)
                      if positions is None else positions)
    g, m = options.generator, options.modes
    modes = compute_slow_modes(context, x0, n_modes=min(g.n_modes, max(1, len(x0) - 1)), method=m.slow_modes,
                               samples=m.hessian_samples, perturbation=m.hessian_perturbation, seed=seed)
    stages = [StageResult("slow_modes", 0, modes.force_evaluations, modes.wall_time)]
    if method == "linear":
        return LinearModeGenerator(modes.vectors, x0), stages
    start = time.perf_counter()
    generator = GNNGenerator(modes.vectors, x0, hidden=g.hidden, layers=g.layers, seed=seed)
    generator.fit(x0, steps=g.fit_steps, lr=g.fit_lr, tolerance=g.fit_tolerance)
    return generator, stages + [StageResult("fit", generator.fit_iterations, 0, time.perf_counter() - start)]
