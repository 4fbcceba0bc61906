"""Langevin MD after a minimization (``openmm-reparam minimize --md-steps N``): a DCD trajectory and a log,
both written atomically into files this module opens and closes itself.

OpenMM's ``DCDReporter`` only takes a file name and closes it when garbage-collected, so the trajectory is
written with ``app.DCDFile`` into a file object we own instead; ``StateDataReporter`` takes the open log file.
"""
from __future__ import annotations

import os
import time
from contextlib import ExitStack
from typing import Any, Dict, Optional

import openmm
from openmm import app, unit

from .outputs import atomic_path

FRICTION_PER_PS = 1.0
TIMESTEP_FS = 2.0


class DCDFrames:
    """A reporter writing positions every ``interval`` steps to an open binary file through ``app.DCDFile``."""

    def __init__(self, handle: Any, interval: int):
        self.handle, self.interval = handle, int(interval)
        self.dcd: Optional[app.DCDFile] = None

    def describeNextReport(self, simulation: app.Simulation):  # noqa: N802 (OpenMM's reporter interface)
        steps = self.interval - simulation.currentStep % self.interval
        return steps, True, False, False, False, None  # positions only; wrap as the System's periodicity says

    def report(self, simulation: app.Simulation, state: openmm.State) -> None:
        if self.dcd is None:
            self.dcd = app.DCDFile(self.handle, simulation.topology, simulation.integrator.getStepSize(),
                                   simulation.currentStep, self.interval)
        self.dcd.writeModel(state.getPositions(), periodicBoxVectors=state.getPeriodicBoxVectors())


class MDError(RuntimeError):
    """The MD run after minimization failed (e.g. it blew up)."""


def run_md(simulation: app.Simulation, steps: int, interval: int, temperature: float, seed: int,
           trajectory: str, log: str) -> Dict[str, Any]:
    """``steps`` of Langevin MD (``temperature`` K, 2 fs) from the Context's positions; frames and log lines
    every ``interval`` steps. The integrator of ``simulation`` must be a LangevinMiddleIntegrator."""
    simulation.integrator.setTemperature(temperature * unit.kelvin)
    simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    simulation.currentStep = 0
    start = time.perf_counter()
    with ExitStack() as stack:
        dcd_handle = stack.enter_context(open(stack.enter_context(atomic_path(trajectory)), "wb"))
        log_handle = stack.enter_context(open(stack.enter_context(atomic_path(log)), "w"))
        simulation.reporters[:] = [
            DCDFrames(dcd_handle, interval),
            app.StateDataReporter(log_handle, interval, step=True, time=True, potentialEnergy=True,
                                  kineticEnergy=True, totalEnergy=True, temperature=True, speed=True)]
        try:
            simulation.step(steps)
        except openmm.OpenMMException as error:
            raise MDError(f"MD failed after minimization: {' '.join(str(error).split())}") from None
        finally:
            simulation.reporters[:] = []
    state = simulation.context.getState(getEnergy=True)
    return {"steps": steps, "temperature_K": temperature, "friction_per_ps": FRICTION_PER_PS,
            "timestep_fs": TIMESTEP_FS, "interval": interval, "frames": steps // interval,
            "trajectory": os.path.abspath(trajectory), "log": os.path.abspath(log),
            "final_potential_energy": state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            "wall_time": time.perf_counter() - start}


__all__ = ["run_md", "DCDFrames", "MDError"]
