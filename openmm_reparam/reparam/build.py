"""Building a fitted generator for a Context: slow modes, then the network fitted to the start."""
from __future__ import annotations

import time
from typing import Any, List, Optional, Tuple

import numpy as np
import openmm
import torch

from ..core.atoms import solvent_mask
from ..core.units import as_positions
from ..run.result import StageResult
from .custom import CustomGenerator, GeneratorInputs, generator_label, make_generator
from .options import GeneratorOptions, SlowModeOptions
from .slow_modes import compute_slow_modes
from .solute import SoluteGenerator


def build_generator(context: openmm.Context, kind: Any, seed: int, g: GeneratorOptions, m: SlowModeOptions,
                    positions: Optional[np.ndarray] = None) -> Tuple[torch.nn.Module, List[StageResult]]:
    """Slow modes of the Context's System at ``positions`` (default: the Context's) and the generator ``kind``
    (a registered name such as "gnn" or "linear", a factory, or a torch.nn.Module; :mod:`.custom`), fitted to
    those positions, built as ``g`` and ``m`` say. With ``reparam_atoms="solute"`` and a System holding waters or
    ions, the generator covers the other atoms and the solvent moves as plain coordinates (:class:`SoluteGenerator`).
    Returns (generator, [StageResult("slow_modes") unless ``kind`` is a ready network, StageResult("fit") for
    gnn and the generators not built in])."""
    x0 = as_positions(context.getState(getPositions=True).getPositions(asNumpy=True)
                      if positions is None else positions)
    solute = ~solvent_mask(context.getSystem()) if g.reparam_atoms == "solute" else np.ones(len(x0), bool)
    if not solute.any():
        solute[:] = True  # a pure solvent box: reparametrize everything
    subset = None if solute.all() else solute
    x_inner, inputs, stages = x0[solute], None, []
    if not isinstance(kind, torch.nn.Module):  # a ready network needs no slow modes
        modes = compute_slow_modes(context, x0, n_modes=min(g.n_modes, max(1, int(solute.sum()) - 1)),
                                   method=m.slow_modes, samples=m.hessian_samples,
                                   perturbation=m.hessian_perturbation, seed=seed, atoms=subset)
        stages.append(StageResult("slow_modes", 0, modes.force_evaluations, modes.wall_time))
        inputs = GeneratorInputs(modes.vectors, modes.eigenvalues, x_inner, int(seed), g)
    start = time.perf_counter()
    generator = make_generator(kind, "gnn", inputs, x_inner)
    if isinstance(generator, CustomGenerator):
        generator.fit(x_inner, steps=g.fit_steps, lr=g.fit_lr, tolerance=g.fit_tolerance)
    if hasattr(generator, "fit_iterations"):
        stages.append(StageResult("fit", generator.fit_iterations, 0, time.perf_counter() - start,
                                  generator=generator_label(kind, "gnn")))
    return (generator if subset is None else SoluteGenerator(generator, solute, x0)), stages
