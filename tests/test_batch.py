"""Batch minimization on real Dask clusters: outputs, summary, failures, resume, --scheduler, the Python API."""
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from openmm import app

pytest.importorskip("pdbfixer")
pytest.importorskip("mdtraj")
distributed = pytest.importorskip("distributed")

from openmm_reparam import minimize_many  # noqa: E402  (the public API: openmm_reparam.minimize_many)
from openmm_reparam.app.batch import default_workers  # noqa: E402
from openmm_reparam.app.cli import main  # noqa: E402
from openmm_reparam.app.inputs import InputError, expand_inputs, output_names  # noqa: E402
from openmm_reparam.app.pipeline import SettingsError  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
FAST = ["--method", "lbfgs", "--platform", "CPU", "--solvent", "none"]


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two small proteins and one garbage file in one directory."""
    directory = tmp_path_factory.mktemp("inputs")
    shutil.copy(os.path.join(DATA, "1PLW_model1.pdb"), directory / "enkephalin.pdb")
    shutil.copy(os.path.join(DATA, "5AWL.pdb"), directory / "chignolin.pdb")
    (directory / "garbage.pdb").write_text("this is not\na structure\n")
    return directory


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two worker processes started apart from the command (closed at the end)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"OPENMM_CPU_THREADS": "1", "OMP_NUM_THREADS": "1"}) as local:
        yield local


@pytest.fixture(scope="module")
def first_batch(inputs, tmp_path_factory):
    """The command on the directory, with its own embedded LocalCluster of 2 processes."""
    out_dir = tmp_path_factory.mktemp("batch") / "out"
    status, stdout, stderr = run("minimize", inputs, "--out-dir", out_dir, "--workers", 2, *FAST)
    return status, stdout, stderr, out_dir


def rows_of(out_dir):
    with open(out_dir / "summary.json") as handle:
        summary = json.load(handle)
    return summary, {os.path.basename(row["input"]): row for row in summary["rows"]}


def snapshot(out_dir, names):
    return {name: (os.stat(out_dir / name).st_ino, os.stat(out_dir / name).st_mtime_ns,
                   (out_dir / name).read_bytes()) for name in names}


FINISHED = ["enkephalin.pdb", "enkephalin.json", "chignolin.pdb", "chignolin.json"]


def test_batch_writes_two_structures_and_reports_one_failure(first_batch):
    status, stdout, stderr, out_dir = first_batch
    assert status == 1
    assert sorted(os.listdir(out_dir)) == sorted(FINISHED + ["summary.json", "summary.csv"])  # nothing partial
    assert "3 structures: 2 ok, 1 failed, 0 skipped" in stdout
    assert stderr.count("failed") == 1 and "garbage.pdb" in stderr and "Traceback" not in stderr
    summary, rows = rows_of(out_dir)
    assert summary["counts"] == {"ok": 2, "failed": 1, "skipped": 0} and summary["command"] == "minimize"
    assert rows["garbage.pdb"]["status"] == "failed"
    assert "no ATOM or HETATM records" in rows["garbage.pdb"]["error"]
    for name in ("enkephalin", "chignolin"):
        row = rows[name + ".pdb"]
        report = json.load(open(out_dir / (name + ".json")))
        assert row["status"] == "ok" and row["error"] == "" and row["worker"] in ("0", "1")
        assert row["energy_after"] == report["energy_after"]["total"] < row["energy_before"] - 10.0
        assert row["rmsd_heavy_angstrom"] == report["rmsd_to_prepared_input"]["heavy_angstrom"] > 0
        assert row["wall_time"] > 0 and row["output"] == str(out_dir / (name + ".pdb"))
        assert report["job"]["settings"]["method"] == "lbfgs" and report["settings"]["platform_used"] == "CPU"
        written = app.PDBFile(str(out_dir / (name + ".pdb")))
        assert written.topology.getNumAtoms() == report["preparation"]["atoms"]
    with open(out_dir / "summary.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["status"] for r in table] == [r["status"] for r in summary["rows"]]
    assert {"input", "status", "error", "energy_before", "energy_after", "rmsd_heavy_angstrom", "wall_time",
            "worker"} <= set(table[0])


def test_rerun_on_a_separate_scheduler_skips_finished_structures(first_batch, inputs, cluster):
    _, _, _, out_dir = first_batch
    before = snapshot(out_dir, FINISHED)
    status, stdout, _ = run("minimize", inputs, "--out-dir", out_dir, "--scheduler", cluster.scheduler_address,
                            *FAST)
    assert status == 1  # the garbage input is tried again, and fails again
    summary, rows = rows_of(out_dir)
    assert summary["counts"] == {"ok": 0, "failed": 1, "skipped": 2}
    assert rows["chignolin.pdb"]["status"] == rows["enkephalin.pdb"]["status"] == "skipped"
    assert rows["chignolin.pdb"]["energy_after"] is not None
    assert snapshot(out_dir, FINISHED) == before  # untouched: same inode, time and bytes


def test_changed_settings_or_force_redo_the_structures(first_batch, inputs, cluster):
    _, _, _, out_dir = first_batch
    before = snapshot(out_dir, FINISHED)
    status, _, _ = run("minimize", inputs, "--out-dir", out_dir, "--scheduler", cluster.scheduler_address,
                       "--tolerance", 5, *FAST)
    assert status == 1
    summary, rows = rows_of(out_dir)
    assert summary["counts"] == {"ok": 2, "failed": 1, "skipped": 0}
    assert json.load(open(out_dir / "chignolin.json"))["job"]["settings"]["tolerance"] == 5.0
    after = snapshot(out_dir, FINISHED)
    assert all(after[name][0] != before[name][0] for name in FINISHED)  # atomically replaced
    status, _, _ = run("minimize", inputs / "chignolin.pdb", "--out-dir", out_dir, "--scheduler",
                       cluster.scheduler_address, "--tolerance", 5, "--force", *FAST)
    assert status == 0
    assert rows_of(out_dir)[0]["counts"] == {"ok": 1, "failed": 0, "skipped": 0}
    assert snapshot(out_dir, ["chignolin.pdb"])["chignolin.pdb"][0] != after["chignolin.pdb"][0]


def test_python_api_uses_a_given_client_and_leaves_it_open(inputs, cluster, tmp_path, capsys):
    with distributed.Client(cluster) as client:
        rows = minimize_many([inputs / "chignolin.pdb", str(inputs / "enk*.pdb")], tmp_path, client=client,
                             method="lbfgs", platform="CPU", solvent="none", max_iterations=50, progress=True,
                             output_format="cif")
        assert client.status == "running"
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert [os.path.basename(row["output"]) for row in rows] == ["chignolin.cif", "enkephalin.cif"]
    assert app.PDBxFile(rows[0]["output"]).topology.getNumResidues() == 10
    report = json.load(open(rows[0]["report"]))
    assert report["settings"]["max_iterations"] == 50 and report["job"]["settings"]["solvent"] == "none"
    assert "2/2" in capsys.readouterr().err  # one overall progress bar


def test_a_lost_worker_is_retried_and_its_structure_still_finishes(inputs, cluster, tmp_path):
    """A worker process dies while it minimizes a structure: Dask reruns that task on a worker and the batch
    completes with every structure written."""
    with distributed.Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        outcome = {}
        batch = threading.Thread(target=lambda: outcome.update(rows=minimize_many(
            [inputs / "chignolin.pdb", inputs / "enkephalin.pdb"], tmp_path, client=client, method="gnn",
            platform="CPU", solvent="none", steps=2000, patience=10 ** 6, fine_steps=300, never_worse=False,
            progress=False)))  # 2000 reparam steps (seconds): the task is still running when its worker dies
        batch.start()
        victim, key = _first_running_task(client)
        client.run(_exit_soon, workers=[victim])  # the worker process dies mid-task
        assert key in client.processing()[victim]  # (it was still running its task when told to exit)
        batch.join(timeout=300)
        assert not batch.is_alive()
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the lost worker
        assert set(client.run(os.getpid).values()) != pids
        runs = [t for t in cluster.scheduler.story(key) if len(t) > 2 and t[1] == "waiting" and t[2] == "processing"]
    assert len(runs) >= 2  # the task was sent to a worker again after the loss
    assert [row["status"] for row in outcome["rows"]] == ["ok", "ok"]
    assert all(os.path.exists(row["output"]) for row in outcome["rows"])


def _exit_soon():
    """Run on a worker: end its process abruptly a moment after this call has answered."""
    threading.Timer(0.2, os._exit, (1,)).start()


def _first_running_task(client, timeout=120.0):
    """(worker address, task key) of the first task that is running on a worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            running = [k for k in keys if "run_job" in str(k)]
            if running:
                time.sleep(0.5)  # let it get going
                return worker, running[0]
        time.sleep(0.05)
    raise AssertionError("no task started")


def test_relax_batch_reports_violations(inputs, cluster, tmp_path):
    status, stdout, _ = run("relax", inputs / "chignolin.pdb", inputs / "enkephalin.pdb", "--out-dir", tmp_path,
                            "--scheduler", cluster.scheduler_address, "--method", "lbfgs", "--platform", "CPU")
    assert status == 0
    summary, rows = rows_of(tmp_path)
    assert summary["command"] == "relax" and summary["settings"]["stiffness"] == 4184.0
    for row in rows.values():
        assert row["status"] == "ok" and row["violations_after"] == 0
        assert row["energy_after"] < row["energy_before"]
    assert json.load(open(tmp_path / "chignolin.json"))["protocol"]["forcefield"] == "amber99sb.xml"


def test_relax_models_example_runs_on_the_cluster(cluster, tmp_path):
    example = os.path.join(os.path.dirname(DATA), os.pardir, "examples", "relax_models.py")
    completed = subprocess.run([sys.executable, example, "--models", "2", "--out-dir", tmp_path / "relaxed",
                                "--scheduler", cluster.scheduler_address, "--method", "lbfgs"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = [line.split() for line in completed.stdout.splitlines() if line.startswith("model_")]
    assert [(line[0], line[1], line[4]) for line in lines] == [("model_000", "ok", "0"), ("model_001", "ok", "0")]
    assert (tmp_path / "relaxed" / "model_001.pdb").exists() and (tmp_path / "relaxed" / "summary.csv").exists()


# --- usage errors and inputs (no cluster) ----------------------------------------------------------------------

@pytest.mark.parametrize("extra, expected", [
    (["--report", "r.json"], "--report"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    (["--forcefield", "amber99xyz"], "unknown force field"),
    (["--option", "warp_speed=9"], "warp_speed"),
])
def test_batch_usage_errors_exit_2_before_any_work(tmp_path, extra, expected):
    out_dir = tmp_path / "out"
    status, _, stderr = run("minimize", os.path.join(DATA, "5AWL.pdb"), "--out-dir", out_dir, *extra)
    assert status == 2 and stderr.startswith("openmm-reparam: error: ") and expected in stderr
    assert not out_dir.exists()


def test_missing_inputs_and_misplaced_flags_are_usage_errors(tmp_path):
    chignolin = os.path.join(DATA, "5AWL.pdb")
    for argv, expected in ((["minimize", tmp_path / "nothing*.pdb", "--out-dir", tmp_path / "o"], "no file matches"),
                           (["minimize", tmp_path / "missing.pdb", "--out-dir", tmp_path / "o"], "does not exist"),
                           (["minimize", chignolin, chignolin, "-o", tmp_path / "o.pdb"], "--out-dir"),
                           (["minimize", chignolin, "-o", tmp_path / "o.pdb", "--workers", 2], "--out-dir"),
                           (["relax", chignolin, "-o", tmp_path / "o.pdb", "--force"], "--out-dir")):
        status, _, stderr = run(*argv)
        assert status == 2 and expected in stderr and stderr.count("\n") == 1, stderr
    assert sorted(os.listdir(tmp_path)) == []


def test_inputs_expand_directories_and_patterns_once_each(tmp_path):
    for name in ("b.pdb", "a.cif", "notes.txt"):
        (tmp_path / name).write_text("x")
    found = expand_inputs([tmp_path, str(tmp_path / "*.pdb"), tmp_path / "notes.txt"])
    assert [os.path.basename(p) for p in found] == ["a.cif", "b.pdb", "notes.txt"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no"):
        expand_inputs([tmp_path / "notes.txt", tmp_path / "empty"])


def test_output_names_tell_same_named_models_apart():
    assert output_names(["/m/T1/ranked_0.pdb", "/m/T2/ranked_0.pdb", "/m/T2/ranked_1.pdb"]) == \
        ["T1__ranked_0", "T2__ranked_0", "ranked_1"]
    assert output_names(["/m/x.pdb", "/m/x.cif"]) == ["x_pdb", "x_cif"]
    assert output_names(["/m/summary.pdb"]) == ["summary_input"]  # never DIR/summary.json


def test_default_workers_divide_the_cores_by_the_threads_per_structure():
    cores = len(os.sched_getaffinity(0))
    assert default_workers(1) == cores and default_workers(2) == max(1, cores // 2) and default_workers(10 ** 6) == 1


def test_python_api_rejects_unknown_settings_before_any_work(tmp_path):
    with pytest.raises(SettingsError, match="warp_speed"):
        minimize_many(os.path.join(DATA, "5AWL.pdb"), tmp_path / "out", warp_speed=9)
    with pytest.raises(SettingsError, match="protocol"):
        minimize_many(os.path.join(DATA, "5AWL.pdb"), tmp_path / "out", protocol="fold")
    assert not (tmp_path / "out").exists()
