"""The CLI's progress display (app.progress) on real minimizations: what it shows, when, and what it passes on."""
import contextlib
import io
import os
import re
import time

import openmm
import pytest

pytest.importorskip("pdbfixer")

from openmm_reparam import minimize  # noqa: E402
from openmm_reparam.app import progress  # noqa: E402
from openmm_reparam.app.cli import main  # noqa: E402
from openmm_reparam.app.prepare import prepare  # noqa: E402
from openmm_reparam.app.progress import ProgressReporter, rms_force  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


class StopAfter(openmm.MinimizationReporter):
    def __init__(self, n):
        super().__init__()
        self.n, self.seen = n, 0

    def report(self, iteration, x, grad, args):
        self.seen += 1
        return self.seen >= self.n


@pytest.fixture(scope="module")
def enkephalin():
    return prepare(os.path.join(DATA, "1PLW_model1.pdb"), solvent="none")


def context_of(prepared):
    context = openmm.Context(prepared.system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(prepared.positions)
    return context


def test_rms_force_is_the_gradient_norm_per_root_atom_count():
    assert rms_force([3.0, 4.0, 0.0, 0.0, 0.0, 0.0]) == pytest.approx((25 / 2) ** 0.5)
    assert rms_force([]) is None and rms_force(None) is None


def test_short_runs_show_nothing_and_the_inner_reporter_decides_when_to_stop(enkephalin):
    stream, inner = FakeTerminal(), StopAfter(5)
    reporter = ProgressReporter(stream=stream, delay=3600, inner=inner)
    result = minimize(context_of(enkephalin), 0.01, 0, reporter, method="lbfgs")
    reporter.close()
    assert stream.getvalue() == "" and reporter.calls == inner.seen  # every call passed on, none drawn
    free = ProgressReporter(stream=stream, delay=3600)
    unstopped = minimize(context_of(enkephalin), 0.01, 0, free, method="lbfgs")
    assert inner.seen < free.calls and result.iterations < unstopped.iterations  # the inner stop request held


def test_a_terminal_gets_one_live_line_with_stage_iteration_energy_and_rms_force(enkephalin):
    stream = FakeTerminal()
    reporter = ProgressReporter(stream=stream, delay=0, interval=0)
    reporter.phase = "round 1"
    minimize(context_of(enkephalin), 10.0, 0, reporter, method="lbfgs")
    reporter.close()
    frames = stream.getvalue().split("\r")[1:]
    assert len(frames) == reporter.calls and stream.getvalue().endswith("\n")
    last = re.search(r"round 1: lbfgs\s+it\s+(\d+)  E (-?[\d.]+) kJ/mol  RMS F ([\d.e+-]+) kJ/mol/nm", frames[-1])
    assert last and int(last.group(1)) == reporter.calls - 1
    shown = [float(m) for m in re.findall(r"E (-?[\d.]+) kJ/mol", stream.getvalue())]
    assert shown[-1] < shown[0]


def test_a_log_gets_plain_lines_and_the_ticker_moves_while_nothing_is_reported(enkephalin):
    log = io.StringIO()
    reporter = ProgressReporter(stream=log, delay=0, log_interval=0)
    minimize(context_of(enkephalin), 10.0, 0, reporter, method="lbfgs")
    reporter.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == reporter.calls
    assert all(line.startswith("openmm-reparam: ") and "RMS F" in line for line in lines)
    terminal = FakeTerminal()
    ticking = ProgressReporter(stream=terminal, delay=0)
    ticking.start()
    deadline = time.monotonic() + 30
    while "preparing" not in terminal.getvalue() and time.monotonic() < deadline:
        time.sleep(0.1)
    ticking.close()
    assert "preparing" in terminal.getvalue()  # no report() yet: the ticker drew the line


def run_cli(*argv, stderr):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(stderr):
        status = main([str(a) for a in argv])
    return status, out.getvalue()


def test_the_relax_command_shows_its_rounds_unless_quiet(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "DELAY_SECONDS", 0.0)  # as if the run were long
    model = os.path.join(DATA, "1hlo_A3-42_breaks.pdb")
    terminal = FakeTerminal()
    status, stdout = run_cli("relax", model, "-o", tmp_path / "out.pdb", "--platform", "CPU", "--threads", 1,
                             stderr=terminal)
    assert status == 0 and "violations" in stdout
    assert re.search(r"round 1: lbfgs\s+it\s+\d+  E -?[\d.]+ kJ/mol  RMS F", terminal.getvalue())
    quiet = FakeTerminal()
    status, stdout = run_cli("relax", model, "-o", tmp_path / "quiet.pdb", "--platform", "CPU", "--threads", 1,
                             "--quiet", stderr=quiet)
    assert status == 0 and quiet.getvalue() == "" and stdout == ""
