"""The worker side of a batch: one ``Job`` per structure, and ``run_job``, the Dask task that runs it.

``run_job`` never raises for a problem with its structure: a bad input, a non-finite energy or any other
error becomes a ``failed`` row with a one-line message, so one failure stays one failure. Outputs are written
atomically: the structure's temporary file only replaces the target once its report is written too. Each task
sets its own OpenMM CPU and torch thread counts, so that workers sharing a machine do not oversubscribe it.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

from distributed import WorkerPlugin

from .outputs import atomic_path
from .pipeline import minimize_file, result_settings

PROTOCOLS = ("minimize", "relax")
ROW_FIELDS = ("input", "name", "status", "error", "energy_before", "energy_after", "rmsd_heavy_angstrom",
              "wall_time", "worker", "violations_before", "violations_after", "output", "report", "notes")


@dataclass
class Job:
    """One structure of a batch: where it comes from, where it goes, and how it is made."""
    protocol: str
    input: str
    name: str
    output: str
    report: str
    settings: Any                 # MinimizeSettings or RelaxSettings
    threads: int = 1
    method_plugin: Any = None     # a method registered from outside the package, registered again on the worker
    generator_plugin: Any = None  # (name, factory): a generator registered so, registered again on the worker
    prepared: Optional[str] = None  # where the prepared structure goes (before minimization), if anywhere

    def fingerprint(self) -> Dict[str, Any]:
        """What decides the result: protocol, settings and the input's content (recorded in the report)."""
        data = {"protocol": self.protocol, "input_sha256": file_sha256(self.input),
                "settings": result_settings(self.settings)}
        extras = getattr(self.settings, "extra_forcefields", None)
        if extras:  # an edited ligand template changes the result as an edited input does
            data["extra_forcefields_sha256"] = {path: file_sha256(path) for path in extras}
        return data


def file_sha256(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def run_job(job: Job) -> Dict[str, Any]:
    """Run one job in this process; returns its summary row (status ``ok`` or ``failed``)."""
    import torch
    torch.set_num_threads(int(job.threads))
    if job.method_plugin is not None:
        from ..run.registry import register_method
        register_method(job.method_plugin, replace=True)
    if job.generator_plugin is not None:
        from ..run.registry import register_generator
        register_generator(*job.generator_plugin, replace=True)
    start, worker = time.perf_counter(), worker_name()
    try:
        with atomic_path(job.output) as temporary:
            data = _run(job, temporary)
            data["output"] = os.path.abspath(job.output)
            data["job"] = job.fingerprint()
            data["run"] = {"worker": worker, "wall_time": time.perf_counter() - start, "threads": job.threads}
            from .report import write_json
            write_json(job.report, data)
    except Exception as error:  # every error of one structure is that structure's failure
        return failed_row(job, one_line(error), time.perf_counter() - start, worker)
    return row_from_report(job, data, "ok")


def _run(job: Job, output: str) -> Dict[str, Any]:
    if job.protocol == "relax":
        from .relax import relax_file
        return relax_file(job.input, output, job.settings, threads=job.threads, prepared_output=job.prepared)
    return minimize_file(job.input, output, job.settings, threads=job.threads, prepared_output=job.prepared).data


def row_from_report(job: Job, data: Dict[str, Any], status: str) -> Dict[str, Any]:
    """The summary row of a finished structure, from its report data."""
    from .prepare import preparation_notes
    energy = "total_without_restraints" if job.protocol == "relax" else "total"
    run = data.get("run", {})
    row = dict.fromkeys(ROW_FIELDS)
    row.update(input=job.input, name=job.name, status=status, error="", worker=run.get("worker"),
               wall_time=run.get("wall_time"), output=job.output, report=job.report,
               energy_before=data["energy_before"][energy], energy_after=data["energy_after"][energy],
               rmsd_heavy_angstrom=data["rmsd_to_prepared_input"]["heavy_angstrom"],
               notes="; ".join(preparation_notes(data["preparation"]["changes"])))
    if job.protocol == "relax":
        row.update(violations_before=data["violations_before"]["total"],
                   violations_after=data["violations_after"]["total"])
    return row


def failed_row(job: Job, message: str, wall_time: Optional[float], worker: Optional[str]) -> Dict[str, Any]:
    row = dict.fromkeys(ROW_FIELDS)
    row.update(input=job.input, name=job.name, status="failed", error=message, wall_time=wall_time,
               worker=worker, output=None, report=None)
    return row


def one_line(error: BaseException) -> str:
    """The error as one line: the message of our own errors, ``Type: message`` for the others."""
    from ..core.errors import NonFiniteEnergyError
    from .outputs import OutputError
    from .pipeline import PreparationError, SettingsError
    message = " ".join(str(error).split())
    if isinstance(error, (PreparationError, SettingsError, OutputError, NonFiniteEnergyError)) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def worker_name() -> str:
    """The Dask worker's name, or ``local`` outside a worker."""
    try:
        from distributed import get_worker
        worker = get_worker()
    except ValueError:
        return "local"
    return str(worker.name if worker.name is not None else worker.address)


class Warmup(WorkerPlugin):
    """Imports torch, OpenMM, PDBFixer, mdtraj and this package once per worker, and loads the relax force field,
    before the first task (``Client.register_plugin``)."""

    name = "openmm-reparam-warmup"

    def __init__(self, protocol: str = "minimize"):
        self.protocol = protocol

    def setup(self, worker: Any) -> None:
        import torch  # noqa: F401  (before openmm: openmmtorch's plugin needs libtorch loaded)
        import openmm  # noqa: F401
        import pdbfixer  # noqa: F401  (preparation)
        import mdtraj  # noqa: F401  (RMSD in the reports)
        from . import pipeline  # noqa: F401
        if self.protocol == "relax":
            from .relax import amber99sb
            amber99sb()


__all__ = ["Job", "run_job", "row_from_report", "failed_row", "one_line", "worker_name", "Warmup", "ROW_FIELDS",
           "PROTOCOLS", "file_sha256"]
