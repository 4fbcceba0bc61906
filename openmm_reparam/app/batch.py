"""Minimize or relax many structures on a Dask cluster: ``minimize_many(inputs, out_dir, ...)``.

    rows = openmm_reparam.minimize_many(["models/*.pdb"], "relaxed", protocol="relax", workers=4)

Each input becomes ``OUT_DIR/NAME.pdb`` (or ``.cif``) and ``OUT_DIR/NAME.json``; ``OUT_DIR/summary.json`` and
``summary.csv`` hold one row per input (status ok / failed / skipped, error, energies, RMSD, wall time,
worker). Without a ``client`` an embedded ``LocalCluster`` of ``workers`` processes is started (default: the
cores divided by the threads each structure uses) and closed again; ``scheduler`` connects to a running one.
Finished structures whose report records the same protocol, settings and input content are skipped
(``force=True`` redoes them); a failure never stops the others.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from ..core.extras import require
from .inputs import InputError, expand_inputs, output_names
from .outputs import remove_temporaries
from .pipeline import MinimizeSettings, SettingsError, result_settings
from .structure_file import PDBX_EXTENSIONS, without_gzip_suffix

SUMMARY_JSON = "summary.json"
SCHEDULER_TIMEOUT = 10  # seconds to reach a scheduler given by address
SUMMARY_CSV = "summary.csv"
PathLike = Union[str, "os.PathLike[str]"]


class SchedulerError(RuntimeError):
    """The Dask scheduler given by address cannot be reached (nothing was run)."""


def minimize_many(inputs: Union[PathLike, Iterable[PathLike]], out_dir: PathLike, *, client: Any = None,
                  workers: Optional[int] = None, scheduler: Optional[str] = None, protocol: str = "minimize",
                  threads: int = 1, force: bool = False, output_format: Optional[str] = None,
                  progress: Optional[bool] = None, overwrite: bool = False, prepared_dir: Optional[PathLike] = None,
                  **settings: Any) -> List[Dict[str, Any]]:
    """Minimize (``protocol="minimize"``) or relax (``"relax"``) every structure named by ``inputs`` (files,
    directories, glob patterns) into ``out_dir``; returns the summary rows, in input order.

    ``client``: a ``distributed.Client`` to use (left open); else ``scheduler`` (an address) or an embedded
    ``LocalCluster`` with ``workers`` processes. ``threads``: OpenMM CPU and torch threads per structure.
    ``output_format``: ``"pdb"`` or ``"cif"`` (default: the input's). ``progress``: one overall bar on stderr
    (None: only on a terminal). ``overwrite``: allow ``out_dir`` to be a folder the inputs come from (refused
    otherwise: an output could replace its input, and a rerun would take the outputs as inputs).
    ``prepared_dir``: also write each prepared structure (before minimization) as ``prepared_dir/NAME_prepared``
    with the output's extension (the same rule as ``out_dir`` for a folder the inputs come from).
    ``settings``: the fields of ``MinimizeSettings`` / ``RelaxSettings`` and any minimizer option. Usage errors
    (no such input, bad setting) raise ``InputError`` / ``SettingsError``.
    """
    require("batch", "distributed", "tqdm", purpose="a batch run (minimize_many, --out-dir)")
    jobs = plan_jobs(inputs, out_dir, protocol=protocol, threads=threads, output_format=output_format,
                     settings=settings, overwrite=overwrite, prepared_dir=prepared_dir)
    rows: Dict[int, Dict[str, Any]] = {}
    pending = []
    for index, job in enumerate(jobs):
        existing = None if force else finished_report(job)
        if existing is not None:
            from .tasks import row_from_report
            rows[index] = row_from_report(job, existing, "skipped")
        else:
            pending.append(index)
    connected, reason = not pending, "the batch was interrupted"
    try:
        if pending:
            size = workers if workers is not None else default_workers(threads)
            with _client(client, scheduler, min(int(size), len(pending)), threads) as active:
                connected = True
                _run_pending(active, jobs, pending, rows, protocol, progress)
    except SchedulerError as error:
        reason = str(error)
        raise
    finally:
        if connected:  # nothing ran when the scheduler could not be reached: no summary
            if client is None and scheduler is None:  # the embedded cluster is closed: what a worker killed
                for index in pending:                 # while writing left is nobody's
                    remove_temporaries(jobs[index].output)
                    remove_temporaries(jobs[index].report)
                    if jobs[index].prepared is not None:
                        remove_temporaries(jobs[index].prepared)
            ordered = [rows.get(i) or _not_run(jobs[i], reason) for i in range(len(jobs))]
            write_summary(os.fspath(out_dir), ordered, protocol, jobs[0].settings)
    return ordered


def plan_jobs(inputs: Union[PathLike, Iterable[PathLike]], out_dir: PathLike, *, protocol: str = "minimize",
              threads: int = 1, output_format: Optional[str] = None,
              settings: Optional[Dict[str, Any]] = None, overwrite: bool = False,
              prepared_dir: Optional[PathLike] = None) -> List[Any]:
    """One Job per input structure (settings checked, output directories created); ``overwrite`` and
    ``prepared_dir``: see :func:`minimize_many`."""
    from .tasks import PROTOCOLS, Job
    if protocol not in PROTOCOLS:
        raise SettingsError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if output_format not in (None, "pdb", "cif"):
        raise SettingsError(f"output_format must be 'pdb' or 'cif', got {output_format!r}")
    if int(threads) < 1:
        raise SettingsError(f"threads must be >= 1, got {threads}")
    parsed = _settings(protocol, settings or {})
    paths = expand_inputs(inputs)
    out_dir = os.fspath(out_dir)
    sources = {os.path.dirname(os.path.realpath(p)) for p in paths}
    folders = [("--out-dir", out_dir)] + ([] if prepared_dir is None else [("--write-prepared", prepared_dir)])
    for flag, folder in folders:
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise InputError(f"{flag} {os.fspath(folder)!r} is not a directory")
        if os.path.realpath(folder) in sources and not overwrite:
            raise InputError(f"{flag} {os.fspath(folder)!r} is a folder the inputs come from: its outputs could "
                             "replace inputs and a rerun would minimize them again; choose another folder (or pass "
                             "--overwrite)")
    for _, folder in folders:
        os.makedirs(folder, exist_ok=True)
    jobs, plugin, generator = [], method_plugin(parsed.method), generator_plugin(parsed.options)
    for path, name in zip(paths, output_names(paths)):
        pdbx = without_gzip_suffix(path).lower().endswith(PDBX_EXTENSIONS)
        extension = "." + (output_format or ("cif" if pdbx else "pdb"))
        jobs.append(Job(protocol=protocol, input=os.path.abspath(path), name=name,
                        output=os.path.abspath(os.path.join(out_dir, name + extension)),
                        report=os.path.abspath(os.path.join(out_dir, name + ".json")), settings=parsed,
                        threads=int(threads), method_plugin=plugin, generator_plugin=generator,
                        prepared=None if prepared_dir is None else
                        os.path.abspath(os.path.join(prepared_dir, name + "_prepared" + extension))))
    _check_distinct(jobs)
    return jobs


def _check_distinct(jobs: List[Any]) -> None:
    """InputError when two files a batch writes have one name (``x_prepared.pdb`` the output of an input of
    that name and the prepared structure of ``x.pdb``)."""
    seen: Dict[str, str] = {}
    for job in jobs:
        for path in (job.output, job.report, job.prepared):
            if path is None:
                continue
            if path in seen:
                raise InputError(f"the batch would write {path} twice (for {seen[path]} and {job.input}): rename "
                                 "an input or write the prepared structures into another folder")
            seen[path] = job.input


def method_plugin(name: str) -> Any:
    """The registered method ``name`` when it comes from outside this package (a plug-in registered in this
    process), to be sent with each job and registered on the worker; None for the package's own methods."""
    from ..run.registry import get_method
    method = get_method(name, warn=False)
    return None if type(method).__module__.startswith("openmm_reparam.") else method


def generator_plugin(options: Dict[str, Any]) -> Optional[Tuple[str, Any]]:
    """(name, factory) when option ``generator`` names a generator registered in this process from outside the
    package, to be sent with each job and registered on the worker (a name is known only where it was
    registered); None otherwise (the package's own, an import path, an object, no generator)."""
    from ..run.registry import get_generator
    name = options.get("generator")
    if not isinstance(name, str) or ":" in name:
        return None
    factory = get_generator(name)
    return None if getattr(factory, "__module__", "").startswith("openmm_reparam.") else (name, factory)


def _settings(protocol: str, settings: Dict[str, Any]) -> Any:
    try:
        if protocol == "relax":
            from .relax import RelaxSettings
            return RelaxSettings.from_kwargs(**settings)
        return MinimizeSettings.from_kwargs(**settings)
    except TypeError as error:
        raise SettingsError(f"bad setting: {error}") from None


def finished_report(job: Any) -> Optional[Dict[str, Any]]:
    """The report of ``job`` when its output and report exist and record the same settings; else None."""
    import json
    if not (os.path.isfile(job.output) and os.path.isfile(job.report)):
        return None
    if job.prepared is not None and not os.path.isfile(job.prepared):
        return None
    try:
        with open(job.report) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    recorded = data.get("job") if isinstance(data, dict) else None
    return data if recorded == json.loads(json.dumps(job.fingerprint())) else None


def _run_pending(active: Any, jobs: List[Any], pending: List[int], rows: Dict[int, Dict[str, Any]],
                 protocol: str, progress: Optional[bool]) -> None:
    from distributed import as_completed
    from .tasks import Warmup, failed_row, one_line, run_job

    active.register_plugin(Warmup(protocol))
    futures = active.map(run_job, [jobs[i] for i in pending], pure=False)
    index_of = {future.key: i for future, i in zip(futures, pending)}
    with _progress_bar(len(pending), protocol, progress) as bar:
        try:
            for future in as_completed(futures):
                index = index_of[future.key]
                try:
                    rows[index] = future.result()
                except Exception as error:  # the worker was lost more often than Dask allows, or similar
                    if _scheduler_lost(error):
                        raise
                    rows[index] = failed_row(jobs[index], one_line(error), None, None)
                _advance(bar, rows[index])
        except Exception as error:
            if not _scheduler_lost(error):
                raise
            raise SchedulerError(f"lost the Dask scheduler: {one_line(error)}") from None


def _scheduler_lost(error: BaseException) -> bool:
    """Whether ``error`` means the connection to the scheduler is gone (not one structure's failure)."""
    from distributed.comm.core import CommClosedError
    return isinstance(error, (CommClosedError, OSError)) and not isinstance(error, FileNotFoundError)


def default_workers(threads: int = 1) -> int:
    """The cores of this machine divided by the threads each structure uses (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(threads)))


@contextmanager
def _client(client: Any, scheduler: Optional[str], workers: int, threads: int) -> Iterator[Any]:
    """The given client; or one connected to ``scheduler``; or an embedded LocalCluster, closed afterwards."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            connected = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, ValueError, TypeError) as error:  # refused, timed out, a malformed address
            message = " ".join(str(error).split()) or type(error).__name__
            raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler!r}: {message}") from None
        with connected:
            yield connected
        return
    limits = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "OPENMM_CPU_THREADS")}
    # silence_logs: worker processes that loaded torch can take over the nanny's 4 s to exit at close, and get
    # killed with a warning; every result is already written by then.
    with LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None,
                      env=limits, silence_logs=logging.ERROR) as cluster, Client(cluster) as local:
        yield local


@contextmanager
def _progress_bar(total: int, protocol: str, enabled: Optional[bool]) -> Iterator[Any]:
    from tqdm import tqdm
    bar = tqdm(total=total, desc=protocol, unit="structure", file=sys.stderr,
               disable=None if enabled is None else not enabled, dynamic_ncols=True)
    bar.counts = {"ok": 0, "failed": 0}
    try:
        yield bar
    finally:
        bar.close()


def _advance(bar: Any, row: Dict[str, Any]) -> None:
    bar.counts[row["status"]] = bar.counts.get(row["status"], 0) + 1
    bar.set_postfix(ok=bar.counts["ok"], failed=bar.counts["failed"], refresh=False)
    bar.update(1)


def _not_run(job: Any, reason: str) -> Dict[str, Any]:
    from .tasks import failed_row
    return failed_row(job, f"not run: {reason}", None, None)


def write_summary(out_dir: str, rows: List[Dict[str, Any]], protocol: str, settings: Any) -> None:
    """``summary.json`` (counts, settings, rows) and ``summary.csv`` (the rows), both written atomically."""
    from .outputs import atomic_path
    from .report import write_json
    from .tasks import ROW_FIELDS
    counts = {status: sum(r["status"] == status for r in rows) for status in ("ok", "failed", "skipped")}
    write_json(os.path.join(out_dir, SUMMARY_JSON), {"command": protocol, "counts": counts,
                                                     "settings": result_settings(settings), "rows": rows})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(ROW_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in ROW_FIELDS})
    with atomic_path(os.path.join(out_dir, SUMMARY_CSV)) as temporary:
        with open(temporary, "w", newline="") as handle:
            handle.write(text.getvalue())


def exit_status(rows: List[Dict[str, Any]]) -> int:
    """0 when every structure succeeded (or was already done), 1 when any failed."""
    return 1 if any(row["status"] == "failed" for row in rows) else 0


__all__ = ["minimize_many", "SchedulerError", "plan_jobs", "finished_report", "write_summary", "exit_status",
           "default_workers",
           "SUMMARY_JSON", "SUMMARY_CSV"]
