"""Methods ``gnn`` and ``linear``: the neural-network reparametrization of the paper (X = G_θ(Z) over the
slow modes) and its linear twin (X = X0 + V z), then Adam on the coordinates, then the polish.

    slow_modes, fit     the graph and the generator, fitted to the start (:func:`~..reparam.build_generator`)
    reparam             Adam (or, ``reparam_optimizer="gauss-newton"``, a Gauss-Newton step) on the generator
    restart1..K         (``restarts`` > 0) latent-space restarts, the best kept (:mod:`.restarts`)
    fine                Adam on the coordinates
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Collection, Dict, Optional

import torch

from ..reparam.build import build_generator
from ..reparam.custom import generator_label, is_built_in
from ..reparam.options import GeneratorOptions, SlowModeOptions
from ..run.options import MinimizerOptions, require, require_ints, require_positive
from .adam import (AdamStageOptions, CoordinateStageOptions, adam_settings, coordinate_settings,
                   progress_ineffective, run_adam_stage)
from .base import Method, RunState
from .restarts import latent_search

OPTIMIZERS = ("adam", "gauss-newton")
#: generator options without effect for a ready torch.nn.Module (no slow modes, its own layers) ...
READY_UNUSED = ("n_modes", "hidden", "layers", "slow_modes", "hessian_samples", "hessian_perturbation")
#: ... and for the linear generator (no layers, no fit)
LINEAR_UNUSED = ("hidden", "layers", "fit_steps", "fit_lr", "fit_tolerance")


@dataclass
class ReparamStageOptions:
    """``reparam``: the stage on the generator parameters, and the restarts after it."""
    steps: int = 1000              # max steps
    lr: float = 1e-3               # Adam learning rate
    patience: int = 50             # early stopping: steps without relative improvement rel_tol
    restarts: int = 0              # latent-space restarts after it: perturb the latent, rerun, keep the best
    restart_noise: float = 0.05    # nm RMS per atom the latent perturbation of a restart moves the structure
    reparam_optimizer: str = "adam"  # "adam" | "gauss-newton" (metric-aware step; Python engine only)
    reparam_share: float = 0.7     # share of the remaining time budget the reparam stage (and restarts) may use

    def __post_init__(self) -> None:
        require_ints(self, ("steps", "patience", "restarts"))
        require_positive(self, ("lr", "restart_noise"))
        require(self.reparam_optimizer in OPTIMIZERS,
                f"reparam_optimizer must be 'adam' or 'gauss-newton', got {self.reparam_optimizer!r}")
        require(0 <= self.reparam_share <= 1, "reparam_share must be within [0, 1]")


class ReparametrizedMethod(Method):
    """The shared stages of ``gnn`` and ``linear`` (``kind`` names their own generator; the option ``generator``
    runs another: a registered name, a factory or a torch.nn.Module, :mod:`openmm_reparam.reparam.custom`)."""

    kind = ""
    option_groups = {"generator": GeneratorOptions, "modes": SlowModeOptions, "reparam": ReparamStageOptions,
                     "coordinates": CoordinateStageOptions, "adam_stage": AdamStageOptions}

    def check(self, options: MinimizerOptions) -> None:
        if options.reparam.reparam_optimizer == "gauss-newton" and options.run.engine in ("cpp", "device"):
            raise ValueError("reparam_optimizer='gauss-newton' runs on the Python engine only: use engine='auto' "
                             "(the compiled engine then runs the other stages) or engine='python'")
        spec = options.generator.generator
        if options.reparam.restarts > 0 and not is_built_in(spec):
            raise ValueError(f"restarts perturb the latent of the gnn and linear generators only, not of generator "
                             f"{generator_label(spec, self.kind)!r}: use restarts=0")

    def ineffective(self, options: MinimizerOptions, given: Collection[str]) -> Dict[str, str]:
        found = {**super().ineffective(options, given), **progress_ineffective(options, given)}
        if "reparam_share" in given and options.run.time_budget is None:
            found["reparam_share"] = "there is no time_budget to share"
        if "restart_noise" in given and options.reparam.restarts == 0:
            found["restart_noise"] = "there are no restarts (restarts=0)"
        spec = options.generator.generator
        if isinstance(spec, torch.nn.Module):
            found.update({name: f"generator {type(spec).__name__!r} is a ready network: it needs no slow modes "
                          "and has its own layers" for name in READY_UNUSED if name in given})
        elif (spec is None and self.kind == "linear") or spec == "linear":
            found.update({name: "the linear generator has no network layers and no fit (X = X0 + V z starts at "
                          "the start)" for name in LINEAR_UNUSED if name in given})
        return found

    def run(self, state: RunState) -> None:
        options = state.options
        spec = options.generator.generator
        generator, setup = build_generator(state.context, self.kind if spec is None else spec, state.seed,
                                           options.generator, options.modes, state.start)
        label = generator_label(spec, self.kind)
        for stage in setup:
            state.add(stage)
        deadline = _share_of(state.deadline, options.reparam.reparam_share)
        optimizer = options.reparam.reparam_optimizer

        def reparam_stage(name, generator_, stage_deadline):
            r = options.reparam
            settings = adam_settings(options, name, r.lr, r.steps, r.patience, stage_deadline)
            stage = run_adam_stage(state, generator_, settings, optimizer)
            if stage is not None:
                stage.generator = label
            return stage

        first = reparam_stage("reparam", generator, deadline)
        state.restarts = latent_search(state, generator, first, deadline, reparam_stage)
        run_adam_stage(state, None, coordinate_settings(options, "fine", state.deadline, state.tolerance))


def _share_of(deadline: Optional[float], share: float) -> Optional[float]:
    """A deadline ``share`` of the way from now to ``deadline``."""
    if deadline is None:
        return None
    now = time.perf_counter()
    return now + share * max(0.0, deadline - now)


class GNNMethod(ReparametrizedMethod):
    name, kind = "gnn", "gnn"
    summary = "slow modes -> GNN generator fitted to the start -> Adam on its parameters -> Adam on coordinates"
    # Not an auto candidate. The one class it was the default for, free ions in implicit solvent in a box
    # (openmmtools' CustomGBForceSystem), is chaotic: with 2 CPU threads (whose sums differ run to run) it ended
    # below OpenMM's L-BFGS in most runs and far above it in the others, at many times its time
    # (benchmarks/RESULTS.md#auto-rules-customgb); OpenMM's L-BFGS took it over.


class LinearMethod(ReparametrizedMethod):
    name, kind = "linear", "linear"
    summary = "X = X0 + V z on the slow modes V -> Adam on the coordinates (linear coarse-graining)"
