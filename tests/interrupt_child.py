"""The child process of tests/test_interrupts.py: runs minimizations that the test interrupts with a real SIGINT.

    python interrupt_child.py '[{scenario}, ...]'

For each scenario, in order: build its Context, then print ``MARK <name> <delay>`` once the stage of interest is
running (from the reporter, after ``after`` reported steps of stage ``stage``, delay 0), or will be in ``delay``
seconds (without a reporter: printed just before ``minimize`` is called, the delay being 1 s more than the stage
took to start in a first, capped run of the same scenario, which also compiles the device kernels), run
``minimize`` and print ``RESULT <json>``:
whether KeyboardInterrupt came (``interrupted``) or another exception (``error``) or none (``finished``), the
wall-clock time it came (``time``, ``time.time()``), the Context's energy then, the start energy, the lowest
energy and the last stage the reporter saw. A scenario: name, system ("5awl", "1plw"), platform, method, engine,
tolerance, options (minimize's), reporter (bool), stage, after, openmm_only (count only OpenMM's L-BFGS iterations,
which report a restraint strength), hide_plugin (run as if the plugin were not built).
"""
import json
import sys
import time

import numpy as np
import openmm

from openmm_reparam import minimize
from openmm_reparam.engines import compiled
from openmm_reparam.testing import load_peptide, make_context, perturbed


class Watcher(openmm.MinimizationReporter):
    """Tracks the lowest energy reported and says MARK after ``after`` steps of the stage of interest."""

    def __init__(self, scenario):
        super().__init__()
        self.scenario, self.seen, self.marked = scenario, 0, False
        self.lowest, self.last_stage = float("inf"), None

    def report(self, iteration, x, grad, args):
        energy, stage = float(args["system energy"]), str(args.get("stage", ""))
        self.lowest = min(self.lowest, energy)
        self.last_stage = stage
        counted = stage == self.scenario["stage"]
        if self.scenario.get("openmm_only"):
            counted = counted and float(args.get("restraint strength", 0.0)) > 0.0
        self.seen += counted
        if not self.marked and self.seen >= self.scenario["after"]:
            self.marked = True
            print("MARK", self.scenario["name"], 0.0, flush=True)
        return False


def energy_of(context):
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)


def build(scenario):
    """The scenario's System at a perturbed start, on its platform (OpenCL in double precision)."""
    _, system, positions = load_peptide(scenario["system"])
    start = perturbed(positions, 0.02, seed=1)
    if scenario["platform"] != "OpenCL":
        return make_context(system, start, scenario["platform"])
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("OpenCL"),
                             {"Precision": "double"})
    context.setPositions(start * openmm.unit.nanometer)
    return context


def stage_start(scenario):
    """Seconds from the call until the stage of interest took its first step, in a run capped at 10 iterations
    (without the final collapse check, which would run a baseline from the start: it is not what is timed)."""
    result = minimize(build(scenario), scenario["tolerance"], 10, method=scenario["method"],
                      engine=scenario["engine"], **scenario["options"], collapse_distance=0.0)
    return min(point.time for point in result.history if point.stage == scenario["stage"])


def run(scenario):
    if scenario.get("hide_plugin"):
        compiled._plugin, compiled._import_error = None, ImportError("hidden by the test")
    delay = 0.0 if scenario["reporter"] else stage_start(scenario) + 1.0
    context = build(scenario)
    start = energy_of(context)
    watcher = Watcher(scenario) if scenario["reporter"] else None
    if watcher is None:
        print("MARK", scenario["name"], delay, flush=True)
    out = {"name": scenario["name"]}
    try:
        minimize(context, scenario["tolerance"], 0, watcher, method=scenario["method"], engine=scenario["engine"],
                 **scenario["options"])
        out["finished"] = True
    except KeyboardInterrupt:
        out["interrupted"], out["time"] = True, time.time()
    except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
        out["error"], out["time"] = f"{type(error).__name__}: {error}", time.time()
    out.update(energy=energy_of(context), start=start,
               lowest=None if watcher is None else watcher.lowest,
               stage=None if watcher is None else watcher.last_stage)
    print("RESULT", json.dumps(out), flush=True)


def main():
    for scenario in json.loads(sys.argv[1]):
        try:
            run(scenario)
        except KeyboardInterrupt:  # a SIGINT outside minimize: the scenario was not interrupted where it should be
            print("RESULT", json.dumps({"name": scenario["name"], "error": "KeyboardInterrupt outside minimize"}),
                  flush=True)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
