"""Ctrl-C stops every kind of stage cleanly: a real SIGINT, sent from this process to a child python that runs the
minimization (tests/interrupt_child.py), for each engine (python, the compiled host stages, the device stages on
OpenCL) and each stage kind (Adam on the coordinates, Adam on a generator, FIRE, the preconditioned L-BFGS,
OpenMM's L-BFGS polish), with a reporter and without. The child must get KeyboardInterrupt (not OpenMMException)
within a few seconds of the signal (a generous bound: the machine is shared), and leave the Context below its
start, at the lowest energy its reporter saw. Then the command line (exit status 130, one line, no output file)
and the time budget, which bounds the polish too.

One child runs several scenarios, one after the other, so that torch is imported once per child.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openmm
import pytest

from openmm_reparam import minimize
from openmm_reparam.engines import compiled
from openmm_reparam.engines.device import register_platform

from conftest import energy_of, make_context, perturbed
from test_device_platform import OPENCL

CHILD = Path(__file__).with_name("interrupt_child.py")
ROOT = Path(__file__).resolve().parent.parent
LATENCY = 3.0   # seconds from the signal to the KeyboardInterrupt, at most
BIG = 10 ** 6
# Each stage kind set to run far longer than the test waits (the tolerances unreachable, the step caps huge).
KINDS = {
    "adam": dict(method="adam", system="5awl", platform="CPU", tolerance=10.0, stage="adam",
                 options={"adam_steps": BIG, "adam_patience": BIG}),
    "generator": dict(method="linear", system="1plw", platform="CPU", tolerance=10.0, stage="reparam",
                      options={"steps": BIG, "patience": BIG, "n_modes": 8}),
    "fire": dict(method="fire", system="5awl", platform="CPU", tolerance=1e-6, stage="fire",
                 options={"fire_steps": BIG, "fire_max_uphill": BIG}),
    "precon": dict(method="precon", system="5awl", platform="Reference", tolerance=1e-6, stage="precon",
                   options={"precon_steps": BIG, "declash_steps": 0}),
    # OpenMM's L-BFGS polish (the reporter counts only its iterations: those with a restraint strength)
    "polish": dict(method="adam", system="5awl", platform="Reference", tolerance=1e-3, stage="polish",
                   options={"adam_steps": 5}, openmm_only=True),
}
CPP = compiled.cpp_available()
DEVICE = OPENCL and CPP and register_platform("OpenCL")


def scenario(kind: str, engine: str, reporter: bool, **changes) -> dict:
    name = f"{engine}-{kind}-{'reporter' if reporter else 'no-reporter'}"
    return {**KINDS[kind], "name": name, "engine": engine, "reporter": reporter, "after": 20, **changes}


def interrupt_each(scenarios: list, timeout: float = 240.0) -> list:
    """Run ``scenarios`` in one child; SIGINT each once it says its stage runs (``MARK name delay``: after delay
    seconds). Returns the child's result of each, with ``latency``: seconds from the signal to the exception."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, str(CHILD), json.dumps(scenarios)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout] + [lines.put("")],
                     daemon=True).start()

    def next_line(prefix: str) -> str:
        while True:
            line = lines.get(timeout=timeout)
            if not line or line.startswith(prefix) or line.startswith("RESULT"):
                return line

    results = []
    try:
        for _ in scenarios:
            mark = next_line("MARK")
            assert mark, f"the child ended early: {child.stderr.read()[-3000:]}"
            if mark.startswith("MARK"):
                time.sleep(float(mark.split()[2]))
                sent = time.time()
                os.kill(child.pid, signal.SIGINT)
                mark = next_line("RESULT")
            result = json.loads(mark.split(" ", 1)[1])
            result["latency"] = result.get("time", float("inf")) - sent
            results.append(result)
        assert child.wait(timeout=60) == 0, child.stderr.read()[-3000:]
    finally:
        child.kill()
    return results


def check(results: list) -> None:
    """Every scenario: KeyboardInterrupt within LATENCY, below the start, at the lowest energy reported."""
    for r in results:
        assert r.get("interrupted"), r
        assert r["latency"] < LATENCY, r
        assert r["energy"] < r["start"], r
        if r["lowest"] is not None:
            assert r["energy"] == pytest.approx(r["lowest"], rel=1e-6, abs=1e-6) or r["energy"] < r["lowest"], r


@pytest.mark.parametrize("engine", ["python", pytest.param("cpp", marks=pytest.mark.skipif(
    not CPP, reason=compiled.unavailable_reason()))])
def test_every_stage_kind_stops_at_ctrl_c(engine):
    """The host stages of ``engine``, with a reporter (the signal comes while it reports) and without (while the
    stage runs: the child waits until it has started)."""
    scenarios = [scenario(kind, engine, reporter) for kind in ("adam", "generator", "fire", "precon")
                 for reporter in (True, False)]
    results = interrupt_each(scenarios)
    check(results)
    assert [r["stage"] for r in results if r["lowest"] is not None] == ["adam", "reparam", "fire", "precon"]


def test_openmm_lbfgs_polish_stops_at_ctrl_c():
    """OpenMM's L-BFGS polish: through the Python reporter that forwards to the user's, through the plugin's C++
    reporter when there is no user's, and, where the plugin is not built, through the Python one (here: the
    plugin hidden from the child)."""
    scenarios = [scenario("polish", "auto", True), scenario("polish", "auto", False),
                 scenario("polish", "auto", False, name="no-plugin-polish", hide_plugin=True)]
    results = interrupt_each(scenarios)
    check(results)
    assert results[0]["stage"] == "polish"


@pytest.mark.skipif(not DEVICE, reason="no OpenCL runtime or no OpenCL device library built")
def test_device_stages_stop_at_ctrl_c():
    """The device stages (OpenCL; they run only without a reporter): Adam on the coordinates and on a generator,
    FIRE, the preconditioned L-BFGS."""
    scenarios = [scenario(kind, "cpp", False, platform="OpenCL") for kind in ("adam", "generator", "fire", "precon")]
    # P rebuilt every 0.02 nm: a device stage per P, which makes the stage last long enough (7 s here, against 5)
    scenarios[-1]["options"] = {**scenarios[-1]["options"], "precon_rebuild_distance": 0.02}
    results = interrupt_each(scenarios)
    check(results)


class SignalAt(openmm.MinimizationReporter):
    """Sends this process a SIGINT when reporting step ``at``; remembers the lowest energy and SIGINT's handler."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls, self.lowest, self.handler = at, 0, float("inf"), None

    def report(self, iteration, x, grad, args):
        self.lowest = min(self.lowest, float(args["system energy"]))
        if self.calls == 0:
            self.handler = signal.getsignal(signal.SIGINT)
        if self.calls == self.at:
            signal.raise_signal(signal.SIGINT)
        self.calls += 1
        return False


@pytest.mark.parametrize("engine", ["python", "cpp"])
def test_handlers_are_put_back_after_an_interrupted_run(plw, engine):
    """In this process: the run's own handler while it runs, Python's default again afterwards and the plugin's
    watch ended, the Context at the lowest energy reported."""
    if engine == "cpp" and not CPP:
        pytest.skip(compiled.unavailable_reason())
    _, system, positions = plw
    context = make_context(system, perturbed(positions, 0.02))
    reporter = SignalAt(10)
    with pytest.raises(KeyboardInterrupt):
        minimize(context, reporter=reporter, method="adam", engine=engine, adam_steps=BIG, adam_patience=BIG)
    assert reporter.handler is not signal.default_int_handler and reporter.calls == 11
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not CPP or compiled.plugin().interruptWatchCount() == 0
    assert energy_of(context) == pytest.approx(reporter.lowest, rel=1e-6)


def test_a_users_own_handler_and_other_threads_are_left_alone(plw):
    """A SIGINT handler of the user's own gets the signal and the run goes on to its end; a run in another
    thread installs nothing."""
    _, system, positions = plw
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        reporter = SignalAt(5)
        result = minimize(make_context(system, perturbed(positions, 0.02)), reporter=reporter, method="adam",
                          adam_steps=30, adam_patience=BIG, polish=False)
        assert caught == [signal.SIGINT] and result.stage("adam").iterations == 30
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    handlers = []

    class Look(openmm.MinimizationReporter):
        def report(self, iteration, x, grad, args):
            handlers.append(signal.getsignal(signal.SIGINT))
            return True

    worker = threading.Thread(target=lambda: minimize(make_context(system, positions), reporter=Look(),
                                                      method="adam"))
    worker.start()
    worker.join()
    assert handlers == [signal.default_int_handler]


def test_command_line_ctrl_c_exits_130_with_one_line_and_no_output(tmp_path):
    """``openmm-reparam minimize 5AWL.pdb -o out.pdb`` (its progress reporter in the loop) interrupted during the
    minimization: status 130, ``openmm-reparam: interrupted`` alone on stderr, no output and no temporary file.
    The child prints a line on stdout when the minimization starts (a wrapper around the run's stages)."""
    out = tmp_path / "out.pdb"
    code = ("import sys\n"
            "from openmm_reparam.api import minimizer\n"
            "stages = minimizer._stages\n"
            "def marked(*args):\n"
            "    print('MARK', flush=True)\n"
            "    return stages(*args)\n"
            "minimizer._stages = marked\n"
            "from openmm_reparam.app.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    command = [sys.executable, "-c", code, "minimize", str(ROOT / "tests" / "data" / "5AWL.pdb"), "-o", str(out),
               "--platform", "Reference", "--method", "adam", "--fine-steps", str(BIG), "--option",
               f"adam_patience={BIG}"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "MARK", child.stderr.read()
        time.sleep(1.0)
        sent = time.time()
        child.send_signal(signal.SIGINT)
        status = child.wait(timeout=60)
        latency = time.time() - sent
    finally:
        child.kill()
    stderr = child.stderr.read()
    assert status == 130 and stderr == "openmm-reparam: interrupted\n", (status, stderr)
    assert latency < LATENCY
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("method", ["adam", "lbfgs"])
def test_time_budget_bounds_the_whole_run(awl, method):
    """``time_budget`` bounds every stage, the polish included: OpenMM's L-BFGS polish (or method lbfgs) stops at
    the deadline ("deadline"), unconverged at a tolerance it cannot reach in that time, and no iteration ends
    later than the one under way at the deadline."""
    _, system, positions = awl
    context = make_context(system, perturbed(positions, 0.02), "Reference")
    budget = 1.0
    result = minimize(context, 1e-3, method=method, adam_steps=5, time_budget=budget) if method == "adam" else \
        minimize(context, 1e-3, method=method, time_budget=budget)
    stage = result.stages[-1]
    assert stage.name == ("polish" if method == "adam" else "lbfgs") and stage.stop_reason == "deadline"
    assert stage.iterations > 0 and not result.converged
    assert result.final_energy < result.initial_energy and result.final_energy == pytest.approx(energy_of(context))
    # The deadline is set after the run's set-up, before its first point: at most that point's time + budget.
    late = [h for h in result.history if h.time > result.history[0].time + budget]
    assert len(late) <= 1
