"""The reporter a compiled stage calls every step (:class:`RecordingReporter`): shared by the compiled Adam, FIRE
and preconditioned L-BFGS stages (:mod:`.compiled`, :mod:`.fire`, :mod:`.precon_compiled`), which give C++ an
``openmm.MinimizationReporter`` and need each step in the run's recorder."""
from __future__ import annotations

from typing import Optional

import numpy as np
import openmm

from ..run.recorder import RunRecorder


class RecordingReporter(openmm.MinimizationReporter):
    """The reporter the C++ stage calls every step: it passes the step to ``recorder.record`` (history, the
    user's reporter with the stage name and the stage's other args, best positions). An exception from the user's
    reporter (KeyboardInterrupt included) stops the stage and is kept, to be re-raised once the C++ call has
    returned (instead of becoming a SWIG director error)."""

    def __init__(self, recorder: RunRecorder, stage: str):
        super().__init__()
        self.recorder, self.stage = recorder, stage
        self.error: Optional[BaseException] = None

    def report(self, iteration, x, grad, args):
        try:
            extra = {str(key): float(args[key]) for key in args.keys() if str(key) != "system energy"}
            return bool(self.recorder.record(self.stage, float(args["system energy"]),
                                             np.asarray(x, dtype=np.float64).reshape(-1, 3),
                                             np.asarray(grad, dtype=np.float64).reshape(-1, 3), extra or None))
        except BaseException as error:  # noqa: B902 - re-raised by the stage that made it
            self.error = error
            return True
