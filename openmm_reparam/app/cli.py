"""The ``openmm-reparam`` command: minimize or relax PDB/mmCIF structures, one or many.

    openmm-reparam minimize IN.pdb -o OUT.pdb [--method auto|gnn|linear|adam|lbfgs|precon|fire|...] [--report r.json]
                   [--plot energy.png] [--md-steps N --trajectory traj.dcd] [--stiffness-modes N] ...
    openmm-reparam minimize 'models/*.pdb' more/ --out-dir DIR [--workers N | --scheduler ADDRESS] [--force]
    openmm-reparam relax IN... (-o OUT | --out-dir DIR)       # AlphaFold-style relax
    openmm-reparam run [--method M] SCRIPT.py [ARGS...]        # an OpenMM script, minimized by us (:mod:`.run`)

With ``-o`` one structure runs in this process, as it always did: a user error (bad input file, unknown force
field or platform, unwritable output, ...) prints one line ``openmm-reparam: error: ...`` on stderr and exits
with status 2; ``--debug`` re-raises it instead. With ``--out-dir`` the inputs run on Dask
(:mod:`.batch`): exit status 0 when every structure succeeded, 1 when any failed (the others are still
written), 2 for a usage error. Every output is written to a temporary file next to its target and renamed into
place once complete.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import fields
from typing import Any, Dict, List, Optional, Sequence

from .. import __version__
from ..core.extras import require
from .arguments import PROG, build_parser, option_value
from .inputs import InputError
from .outputs import OutputError, check_writable
from .pipeline import MinimizeSettings, SettingsError, make_platform
from .prepare import PreparationError, forcefield_files, structure_format
from .progress import ProgressReporter

EXIT_FAILED = 1
EXIT_USER_ERROR = 2
_USER_ERRORS = (PreparationError, OutputError, SettingsError, InputError)


class UserError(Exception):
    """A problem with the command line or its inputs, reported in one line (exit status 2)."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:  # an OpenMM script and its own arguments, untouched (:mod:`.run`)
        from .run import main as run_main
        return run_main(argv[1:])
    args = build_parser(__version__).parse_args(argv)
    from ..core.errors import EngineUnavailableError, InvalidPositionsError, NonFiniteEnergyError
    from ..core.extras import MissingDependencyError
    from .batch import SchedulerError
    from .md import MDError
    import openmm  # an OpenMM error the run could not recover from (the structure, the platform) is one line too
    user_errors = (UserError, NonFiniteEnergyError, InvalidPositionsError, EngineUnavailableError, MDError,
                   SchedulerError, MissingDependencyError, openmm.OpenMMException) + _USER_ERRORS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            if args.out_dir is not None:
                status = run_batch(args)
            else:
                _check_single(args)
                status = run_minimize(args) if args.command == "minimize" else run_relax(args)
        except user_errors as error:
            return _fail(args, error)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
    _print_warnings(caught, args)
    return status


def _print_warnings(caught: List[warnings.WarningMessage], args: argparse.Namespace) -> None:
    """The warnings of a finished run, one line each, once each (an error exit shows only its one line)."""
    if args.quiet:
        return
    seen = set()
    for warning in caught:
        message = " ".join(str(warning.message).split())
        if message not in seen:
            seen.add(message)
            print(f"{PROG}: warning: {message}", file=sys.stderr)


def _fail(args: argparse.Namespace, error: BaseException) -> int:
    if getattr(args, "debug", False):
        raise error
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def _check_single(args: argparse.Namespace) -> None:
    if len(args.input) > 1:
        raise UserError(f"-o takes one input, got {len(args.input)}: use --out-dir DIR for several")
    batch_only = [flag for flag, value in (("--workers", args.workers), ("--scheduler", args.scheduler),
                                           ("--force", args.force), ("--format", args.format)) if value]
    if batch_only:
        raise UserError(f"{', '.join(batch_only)} need --out-dir DIR (batch mode)")


# --- one structure -------------------------------------------------------------------------------------------

def run_minimize(args: argparse.Namespace) -> int:
    """``minimize IN -o OUT``: one structure in this process, with its optional report, plot and MD."""
    from .pipeline import minimize_file
    outputs = _output_paths(args)
    for path in outputs.values():
        check_writable(path)
    if "plot" in outputs:  # before the run, not after it
        require("plot", "matplotlib", purpose="--plot")
    settings = settings_from_args(args, MinimizeSettings)
    make_platform(settings.platform, quiet=True)  # an unknown platform is a usage error before any work
    reporter = _reporter(args)
    try:
        run = minimize_file(args.input[0], outputs["output"], settings, reporter, threads=args.threads or 1,
                            prepared_output=outputs.get("prepared"))
    finally:
        reporter.close()
    data = run.data
    data["md"] = None
    if args.md_steps > 0:
        from .md import run_md
        data["md"] = run_md(run.simulation, args.md_steps, args.md_interval, args.temperature, args.seed,
                            outputs["trajectory"], outputs["md_log"])
    if "report" in outputs:
        from .report import write_json
        write_json(outputs["report"], data)
    if "plot" in outputs:
        from .report import plot_history
        plot_history(run.result.history, outputs["plot"],
                     title=f"{os.path.basename(args.input[0])}: {args.method}")
    if not args.quiet:
        _print_notes(data["preparation"]["changes"])
        _print_minimize_summary(data, outputs)
    return 0


def run_relax(args: argparse.Namespace) -> int:
    """``relax IN -o OUT``: one AlphaFold-style relax in this process."""
    from .relax import RelaxSettings, relax_file
    outputs = _output_paths(args)
    for path in outputs.values():
        check_writable(path)
    settings = settings_from_args(args, RelaxSettings)
    make_platform(settings.platform, quiet=True)
    reporter = _reporter(args)
    try:
        data = relax_file(args.input[0], outputs["output"], settings, reporter, threads=args.threads or 1,
                          prepared_output=outputs.get("prepared"))
    finally:
        reporter.close()
    if "report" in outputs:
        from .report import write_json
        write_json(outputs["report"], data)
    if not args.quiet:
        _print_notes(data["preparation"]["changes"])
        _print_relax_summary(data, outputs)
    return 0


def _reporter(args: argparse.Namespace) -> ProgressReporter:
    """The progress display of a single run (off with --quiet; see :mod:`.progress`), already ticking."""
    reporter = ProgressReporter(enabled=False if args.quiet else None, max_iterations=args.max_iterations,
                                time_budget=args.time_budget)
    reporter.start()
    return reporter


def _output_paths(args: argparse.Namespace) -> Dict[str, str]:
    """Every file this run will write, validated up front (format, distinct names)."""
    outputs = {"output": args.output}
    if args.write_prepared:
        outputs["prepared"] = args.write_prepared
    try:
        for path in (args.output, args.write_prepared or args.output):
            structure_format(path)
    except PreparationError as error:
        raise UserError(str(error)) from None
    if args.report:
        outputs["report"] = args.report
    if getattr(args, "plot", None):
        outputs["plot"] = args.plot
    md_steps = getattr(args, "md_steps", 0)
    if md_steps > 0:
        trajectory = args.trajectory or os.path.splitext(args.output)[0] + "_md.dcd"
        outputs["trajectory"] = trajectory
        outputs["md_log"] = args.md_log or os.path.splitext(trajectory)[0] + ".log"
    elif getattr(args, "trajectory", None) or getattr(args, "md_log", None):
        raise UserError("--trajectory and --md-log need --md-steps N (N > 0)")
    if md_steps > 0 and args.constraints == "none":
        raise UserError("MD with a 2 fs time step needs bond constraints: drop --constraints none")
    real = [os.path.realpath(p) for p in outputs.values()]
    if len(set(real)) != len(real):
        raise UserError("two outputs have the same file name: " + ", ".join(outputs.values()))
    source = os.path.realpath(args.input[0])
    for path in outputs.values():
        if os.path.realpath(path) == source and not args.overwrite:
            raise UserError(f"{path} is the input file: choose another output name, or pass --overwrite to "
                            "replace it")
    return outputs


# --- many structures -----------------------------------------------------------------------------------------

def run_batch(args: argparse.Namespace) -> int:
    """``minimize|relax IN... --out-dir DIR``: every input on Dask; a summary; exit status 0, 1 or 2."""
    from .batch import exit_status, minimize_many
    _check_batch(args)
    settings_class = MinimizeSettings
    if args.command == "relax":
        from .relax import RelaxSettings
        settings_class = RelaxSettings
    settings = settings_from_args(args, settings_class)
    kwargs = {f.name: getattr(settings, f.name) for f in fields(settings_class)}
    rows = minimize_many(args.input, args.out_dir, workers=args.workers, scheduler=args.scheduler,
                         protocol=args.command, threads=args.threads or 1, force=args.force, overwrite=args.overwrite,
                         output_format=args.format, progress=False if args.quiet else None,
                         prepared_dir=args.write_prepared, **kwargs)
    _print_batch_summary(rows, args)
    return exit_status(rows)


def _check_batch(args: argparse.Namespace) -> None:
    single_only = [flag for flag, value in (("--report", args.report), ("--plot", getattr(args, "plot", None)),
                                            ("--md-steps", getattr(args, "md_steps", 0)),
                                            ("--trajectory", getattr(args, "trajectory", None)),
                                            ("--md-log", getattr(args, "md_log", None))) if value]
    if single_only:
        raise UserError(f"{', '.join(single_only)} apply to one input with -o; a batch writes DIR/NAME.json")
    if args.workers is not None and args.scheduler is not None:
        raise UserError("--workers sizes the embedded cluster: it cannot be combined with --scheduler")
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise UserError(f"--out-dir {args.out_dir!r} is not a directory")
    if args.command == "minimize":
        forcefield_files(args.forcefield or "amber14", args.solvent, args.water)  # a usage error, not N failures
    if args.scheduler is None:
        make_platform(args.platform, quiet=True)  # a remote cluster's workers may have platforms this machine lacks


def _print_batch_summary(rows: List[Dict[str, Any]], args: argparse.Namespace) -> None:
    for row in rows:
        if row["status"] == "failed":
            print(f"{PROG}: failed {row['input']}: {row['error']}", file=sys.stderr)
    if args.quiet:
        return
    for row in rows:
        if row["status"] != "failed" and row.get("notes"):
            print(f"{row['name']}: prepared: {row['notes']}")
    counts = {status: sum(r["status"] == status for r in rows) for status in ("ok", "failed", "skipped")}
    note = " (already done with the same settings; --force redoes them)" if counts["skipped"] else ""
    print(f"{len(rows)} structures: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped{note}")
    print(f"wrote {os.path.join(args.out_dir, 'summary.json')} and summary.csv")


# --- settings ------------------------------------------------------------------------------------------------

def settings_from_args(args: argparse.Namespace, settings_class: type) -> Any:
    """The settings dataclass of a command from its arguments (minimizer options checked)."""
    own = {f.name: getattr(args, f.name) for f in fields(settings_class) if hasattr(args, f.name)}
    own.pop("options", None)
    try:
        return settings_class.from_kwargs(options=_minimizer_options(args), **own)
    except (TypeError, ValueError) as error:
        raise UserError(str(error)) from None


def _minimizer_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The dedicated flags, then every ``--option KEY=VALUE``, checked here so that a typo is a one-line user
    error rather than a traceback."""
    from ..run.options import MinimizerOptions
    from ..run.renames import current_options
    try:
        known = MinimizerOptions.known(args.method)
    except ValueError as error:
        raise UserError(str(error)) from None
    # --fine-steps: the coordinate Adam stage, gnn's and linear's fine stage or the whole of method adam
    coordinate_steps = "fine_steps" if "fine_steps" in known or "adam_steps" not in known else "adam_steps"
    options = {"steps": args.steps, coordinate_steps: args.fine_steps, "time_budget": args.time_budget}
    options = {key: value for key, value in options.items() if value is not None}
    for item in args.option:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise UserError(f"--option needs KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = option_value(text.strip())
    try:
        options = current_options(options, known)  # former names: the current ones, with a FutureWarning
        MinimizerOptions.from_kwargs(method=args.method, **options)
    except (TypeError, ValueError) as error:
        raise UserError(f"bad minimizer option: {error}") from None
    return options




# --- summaries -----------------------------------------------------------------------------------------------

def _print_notes(changes: Dict[str, Any]) -> None:
    """What the preparation changed in the structure (chain breaks, removed residues, ...): said, never silent."""
    from .prepare import preparation_notes
    for note in preparation_notes(changes):
        print(f"prepared: {note}")


def _print_minimize_summary(data: Dict[str, Any], outputs: Dict[str, str]) -> None:
    from .report import iterations_text
    before, after = data["energy_before"]["total"], data["energy_after"]["total"]
    rmsd = data["rmsd_to_prepared_input"]
    method = data.get("method_used") or data["settings"]["method"]
    lines = [f"{method}: energy {before:.3f} -> {after:.3f} kJ/mol; RMS force {data['rms_force']:.3g} kJ/mol/nm "
             f"({'converged' if data['converged'] else 'not converged'}); {iterations_text(data)}, "
             f"{data['wall_time']:.1f} s",
             f"RMSD to the prepared input: heavy atoms {_fmt(rmsd['heavy_angstrom'])} A, "
             f"C-alpha {_fmt(rmsd['ca_angstrom'])} A"]
    if not data["converged"] and data.get("held_back_by"):
        lines.append(data["held_back_by"])
    if "stiffness" in data:
        minimum = data["stiffness"].get("is_minimum")
        lines.append("stiffness: a true minimum (no negative-curvature mode)" if minimum else
                     "stiffness: NOT a true minimum (a mode has negative curvature: a saddle point)")
    lines += [f"wrote {path}" for path in outputs.values()]
    print("\n".join(lines))


def _print_relax_summary(data: Dict[str, Any], outputs: Dict[str, str]) -> None:
    before, after = data["violations_before"], data["violations_after"]
    rmsd = data["rmsd_to_prepared_input"]
    lines = [f"violations {before['total']} -> {after['total']} (clashes {before['clashes']} -> "
             f"{after['clashes']}, bond lengths {before['bond_lengths']} -> {after['bond_lengths']}, "
             f"angles {before['bond_angles']} -> {after['bond_angles']}); "
             f"{len(data['outer_iterations'])} outer iteration(s), {data['wall_time']:.1f} s",
             f"force-field energy {data['energy_before']['total_without_restraints']:.3f} -> "
             f"{data['energy_after']['total_without_restraints']:.3f} kJ/mol; heavy-atom RMSD to the input "
             f"{_fmt(rmsd['heavy_angstrom'])} A"]
    moved = max(data.get("residue_displacements", []), key=lambda row: row["max_angstrom"], default=None)
    if moved is not None:
        lines.append(f"largest residue displacement: {moved['residue']} {moved['max_angstrom']:.2f} A")
    lines += [f"wrote {path}" for path in outputs.values()]
    print("\n".join(lines))


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
