"""What a minimization method is: a :class:`Method` (a name, its option groups, ``run(state)``) and the
:class:`RunState` its ``run`` works on.

A method adds stages to one run; everything around them is the same for every method and belongs to the
minimizer (:mod:`openmm_reparam.api.minimizer`): the optional ``never_worse`` baseline, the time budget's
deadline, the L-BFGS polish after ``run`` (unless ``Method.polished`` is False), the collapse check, the result,
and restoring the Context on failure. To add one, subclass :class:`Method` and register it::

    @dataclass
    class MyOptions:                    # its own options: flat names unique across all methods
        my_steps: int = 100

    class MyMethod(Method):
        name, summary = "mine", "what it does, in one line"
        option_groups = {"mine": MyOptions}

        def run(self, state: RunState) -> None:
            options = state.options.mine            # the typed group, defaults applied
            ...                                     # move state.bridge's Context; state.add(StageResult(...))

    openmm_reparam.register_method(MyMethod)

and ``minimize(context, method="mine", my_steps=50)``, ``openmm-reparam minimize --method mine`` and
``minimize_many(..., method="mine")`` run it.
"""
from __future__ import annotations

from typing import Any, ClassVar, Collection, Dict, List, Optional, Set, Tuple

import numpy as np
import openmm

from ..core.bridge import EnergyBridge
from ..engines.openmm_lbfgs import OpenMMLBFGS
from ..engines.runners import StageRunners
from ..run.options import MinimizerOptions
from ..run.profile import SystemProfile
from ..run.recorder import RunRecorder
from ..run.result import StageResult


#: the options of the polish's projected L-BFGS
PROJECTED = ("polish_projected_steps", "polish_projected_memory", "polish_projected_max_step",
             "polish_projected_tolerance")


class RunState:
    """What the stages of one run share: the Context and its energy bridge, the recorder (iteration cap,
    reporter, history), the run's tolerance, seed and options (those of the method that runs), the stage
    runners chosen from the ``engine`` option (:class:`~openmm_reparam.engines.runners.StageRunners`: one per
    stage kind), the deadline of the time budget, and the stages run so far."""

    def __init__(self, context: openmm.Context, bridge: EnergyBridge, recorder: RunRecorder, tolerance: float,
                 seed: int, options: MinimizerOptions, runners: StageRunners, deadline: Optional[float] = None):
        self.context, self.bridge, self.recorder = context, bridge, recorder
        self.tolerance, self.seed, self.options = tolerance, seed, options
        self.runners, self.deadline = runners, deadline
        self.start: np.ndarray = bridge.current_positions()
        self.stages: List[StageResult] = []
        self.engines_used: Set[str] = set()
        self.restarts: List[Dict[str, Any]] = []    # latent-space restarts of the reparametrized methods
        self.baseline: Optional[Tuple[float, np.ndarray]] = None  # (energy, positions) of the never_worse run
        self.selected = "method"                    # which result was kept: "method" or "baseline"

    def add(self, stage: StageResult) -> StageResult:
        """Record a finished stage (in order); returns it. Where it ran (``stage.engine``) goes into
        ``MinimizationResult.engine`` (OpenMM's own L-BFGS and set-up stages excepted)."""
        self.stages.append(stage)
        return stage

    def ran_on(self, engine_name: str) -> None:
        """Note where iterations ran that no added StageResult names (a custom method's own loop, say
        "python"), for ``MinimizationResult.engine``."""
        self.engines_used.add(engine_name)

    def engines(self) -> str:
        """Where the run's own stage iterations ran, for ``MinimizationResult.engine``: the stages' engines
        (parts of a merged stage split at "+") but OpenMM's L-BFGS, and those noted by :meth:`ran_on`, sorted
        and joined by "+"; the engine choice when none ran (method lbfgs)."""
        used = set(self.engines_used)
        for stage in self.stages:
            used.update(part for part in stage.engine.split("+") if part and part != OpenMMLBFGS.engine)
        return "+".join(sorted(used)) or self.runners.engine


class Method:
    """A minimization method; see the module docstring.

    ``name``: what ``minimize(method=...)`` and ``--method`` take. ``summary``: one line for the command line's
    help. ``option_groups``: {group name: dataclass} of its own options (the common groups ``run``, ``safety``
    and ``polish`` come with every method). ``polished``: whether the run ends with the L-BFGS polish and may
    be compared with the ``never_worse`` baseline (False only for OpenMM's L-BFGS itself). ``auto_candidate``:
    whether ``auto`` may pick it, by :meth:`auto_rank`. ``stops_at_converged_start``: see the attribute.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    option_groups: ClassVar[Dict[str, type]] = {}
    polished: ClassVar[bool] = True
    auto_candidate: ClassVar[bool] = False
    #: whether a run starts as OpenMM's minimizer does, constraints applied to the start, and stops right there
    #: when that start is already converged by the package's measure: one force evaluation, as
    #: ``LocalEnergyMinimizer`` (the default, ``auto``)
    stops_at_converged_start: ClassVar[bool] = False

    def run(self, state: RunState) -> None:
        """Add this method's stages to the run: move the Context's positions toward a minimum."""
        raise NotImplementedError

    def resolve(self, system: openmm.System) -> "Method":
        """The method that runs for ``system`` (itself; ``auto`` picks one)."""
        return self

    def auto_rank(self, profile: SystemProfile) -> Optional[float]:
        """How well this method suits the System of ``profile`` for ``auto`` (lower is better; None: not for it)."""
        return None

    def for_auto(self) -> "Method":
        """What ``auto`` runs when it picks this method (itself, unless a method needs a variant there)."""
        return self

    def check(self, options: MinimizerOptions) -> None:
        """Raise ValueError on a combination of option values the method cannot run (across its groups)."""

    def ineffective(self, options: MinimizerOptions, given: Collection[str]) -> Dict[str, str]:
        """{option: why} for the options among ``given`` (the names the caller passed) that the method accepts
        but that change nothing with the other values of ``options``; the run warns once for each
        (:func:`openmm_reparam.methods.effects.warn_ineffective`). A subclass adds its own to these, the common
        groups' cases."""
        if not self.polished:
            return {name: f"method {self.name!r} runs without the polish and the never_worse baseline"
                    for name in ("never_worse", "polish", "polish_rounds") + PROJECTED if name in given}
        if not options.polish.polish:
            return {name: "the polish is off (polish=False)" for name in ("polish_rounds",) + PROJECTED
                    if name in given}
        return {}

    def __repr__(self) -> str:
        return f"<method {self.name!r}>"
