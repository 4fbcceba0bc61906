"""What an engine is asked to do: one Adam stage, described by :class:`AdamStageSettings`.

Engines implement only this inner loop (the way openmm-torch keeps platform code behind kernels); the stage
order belongs to the methods (:mod:`openmm_reparam.methods`), budgets, polish and result to the minimizer
(:mod:`openmm_reparam.api.minimizer`). Every value comes from the method's options
(:func:`openmm_reparam.methods.adam.adam_settings`): the engines have no defaults of their own.

An engine's ``adam_stage(bridge, recorder, generator, settings) -> StageResult``:

* optimizes the generator's parameters (``generator`` given) or the coordinates themselves (``None``: they
  start at the Context's positions and are kept on the constraints after each evaluation);
* each step: X = G(θ) or X; loss = bridge(X); backpropagate; clip the gradient norm to ``clip_norm``; Adam step;
* tracks the best point: a step whose largest atomic force is above ``spike_factor`` × the smallest seen in the
  stage is *suspect* and cannot be the best; a suspect step with two atoms closer than ``collapse_distance``
  ends the stage (``collapse``; 0 turns the guard off);
* stops at ``max_steps``; after ``patience`` steps without an energy below best − ``rel_tol``·|best|
  (``patience``); when the lowest energy fell less over the last ``progress_window`` steps than
  ``progress_fraction`` × the most it fell over any such window of the stage (``stalled``; window 0 turns this
  off); once the RMS force (projected off the constraints, movable atoms) is at most ``force_tolerance``
  (``converged``; that step becomes the best unless it is higher; 0 turns this off); at ``deadline`` (``time.perf_counter()`` seconds; ``deadline``); or when the reporter asks
  (``reporter``);
* passes every step to ``recorder`` (history, the user's reporter, iteration cap), leaves the Context at the
  best positions and returns a :class:`StageResult` whose ``stop_reason`` says which rule ended it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class AdamStageSettings:
    name: str                  # the stage name reported to the user ("reparam", "fine", "adam")
    lr: float
    max_steps: int
    patience: int
    clip_norm: float
    rel_tol: float
    collapse_distance: float
    spike_factor: float
    constraint_stiffness: float
    progress_window: int
    progress_fraction: float
    force_tolerance: float     # kJ/mol/nm: stop ("converged") once the RMS projected force is at most this (0: off)
    torch_threads: int
    deadline: Optional[float] = None
