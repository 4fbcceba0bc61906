"""Latent-space search (``restarts=K``): basin hopping in the generator's space after the reparametrized stage.

From the best point so far, each restart perturbs the generator's latent embedding by a seeded collective move
of ``restart_noise`` nm RMS (:func:`openmm_reparam.reparam.restart.perturb_latent`), runs the reparametrized
Adam stage again (recorded as ``restart1``, ``restart2``, ...) and keeps its result only if it ended lower. The
generator is re-anchored on the kept best point before each perturbation (see :mod:`..reparam.restart` for why
that is exact without snapshotting every step). Restarts share the reparametrized stage's deadline and stop
when it has passed, when the iteration cap is spent or when the reporter asked to stop. The Context is left at
the best positions over the reparam stage and all restarts; the fine stage and the polish continue from there.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from ..reparam.restart import perturb_latent, reanchor, restart_seed, restore, snapshot
from ..run.result import StageResult
from .base import RunState

RunStage = Callable[[str, torch.nn.Module, Optional[float]], Optional[StageResult]]
NOT_RESTARTED_AFTER = ("deadline", "reporter")  # the first stage ran out of time or was stopped by the user


def _energy(stage: Optional[StageResult]) -> float:
    return math.inf if stage is None or stage.final_energy is None else float(stage.final_energy)


def _may_start(run: RunState, deadline: Optional[float]) -> bool:
    """Whether time, the iteration cap and the reporter leave room for another restart."""
    if run.recorder.stopped or run.recorder.iterations_left() == 0:
        return False
    return deadline is None or time.perf_counter() < deadline


def latent_search(run: RunState, generator: torch.nn.Module, first: Optional[StageResult], deadline: Optional[float],
                  run_stage: RunStage) -> List[Dict[str, Any]]:
    """Up to ``run.options.reparam.restarts`` restarts after the reparam stage ``first``; ``run_stage(name,
    generator, deadline)`` runs and records one Adam stage. Returns one dict per restart that ran:
    {index, start_energy, final_energy, displacement (nm RMS of the perturbation), kept}."""
    count, noise = run.options.reparam.restarts, run.options.reparam.restart_noise
    if count <= 0 or (first is not None and first.stop_reason in NOT_RESTARTED_AFTER):
        return []
    best_energy, best_positions = _energy(first), run.bridge.current_positions()
    reanchor(generator, best_positions)
    kept_state, restarts = snapshot(generator), []
    for index in range(1, count + 1):
        if not _may_start(run, deadline):
            break
        moved = perturb_latent(generator, noise, restart_seed(run.seed, index))
        stage = run_stage(f"restart{index}", generator, deadline)
        if stage is None:
            break
        energy = _energy(stage)
        kept = energy < best_energy
        restarts.append({"index": index, "start_energy": stage.initial_energy, "final_energy": stage.final_energy,
                         "displacement": moved, "kept": kept})
        if kept:
            best_energy, best_positions = energy, run.bridge.current_positions()
            reanchor(generator, best_positions)
            kept_state = snapshot(generator)
        else:
            restore(generator, kept_state)
        if stage.stop_reason in NOT_RESTARTED_AFTER:
            break
    run.bridge.set_positions(np.asarray(best_positions))
    return restarts
