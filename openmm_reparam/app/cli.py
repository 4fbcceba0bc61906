"""The ``openmm-reparam`` command: prepare a PDB/mmCIF file, minimize it, report, and optionally run MD after.

    openmm-reparam minimize IN.pdb -o OUT.pdb [--method gnn|cg|adam|lbfgs] [--report report.json]
                   [--plot energy.png] [--md-steps N --trajectory traj.dcd] ...

User errors (bad input file, unknown force field or platform, unwritable output, ...) print one line
``openmm-reparam: error: ...`` on stderr and exit with status 2; ``--debug`` re-raises them instead. Every output
is written to a temporary file next to its target and renamed into place once complete.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from typing import Any, Dict, Optional, Sequence

import openmm
from openmm import app, unit

from .. import __version__
from ..optimize.options import DEPRECATED_METHODS, METHODS
from .outputs import OutputError, atomic_path, check_writable
from .prepare import FORCEFIELDS, SOLVENTS, PreparationError, prepare, structure_format, write_structure
from .progress import ProgressReporter
from .restraints import DEFAULT_STIFFNESS, RESTRAINT_CHOICES, add_position_restraints

PROG = "openmm-reparam"
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the command line or its inputs, reported in one line (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one subcommand, ``minimize``)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Energy minimization for OpenMM by neural-network "
                                     "reparametrization over slow modes.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    m = commands.add_parser("minimize", help="prepare, minimize and report on a PDB/mmCIF structure",
                            description="Prepare a structure with PDBFixer, minimize it and write the result.")
    m.add_argument("input", metavar="IN", help="input structure (.pdb/.ent or .cif/.mmcif)")
    m.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="minimized structure; format from the extension (.pdb or .cif)")
    run = m.add_argument_group("minimization")
    run.add_argument("--method", choices=METHODS + tuple(DEPRECATED_METHODS), default="gnn",
                     help="minimizer (default: %(default)s; cg is the deprecated name of linear)")
    run.add_argument("--tolerance", type=_positive_float, default=10.0,
                     help="RMS force tolerance in kJ/mol/nm (default: %(default)s)")
    run.add_argument("--max-iterations", type=_nonnegative_int, default=0,
                     help="cap on iterations over all stages (0: no cap; default)")
    run.add_argument("--seed", type=int, default=0, help="random seed (generator, MD velocities; default 0)")
    run.add_argument("--steps", type=_nonnegative_int, default=None, help="max steps of the reparametrized stage")
    run.add_argument("--fine-steps", type=_nonnegative_int, default=None, help="max steps of the fine stage")
    run.add_argument("--time-budget", type=_positive_float, default=None,
                     help="seconds for the reparametrized and fine stages together")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="any other minimizer option, e.g. --option n_modes=10 --option never_worse=false "
                     "(repeatable; see openmm_reparam.options.MinimizerOptions)")
    run.add_argument("--platform", default=None, help="OpenMM platform (Reference, CPU, CUDA, OpenCL; "
                     "default: the fastest available)")
    prep = m.add_argument_group("preparation")
    prep.add_argument("--forcefield", default="amber14",
                      help=f"force field: {', '.join(FORCEFIELDS)} (default: %(default)s)")
    prep.add_argument("--solvent", choices=SOLVENTS, default="obc2",
                      help="none, implicit (obc2, gbn2) or explicit water (tip3p); default: %(default)s")
    prep.add_argument("--ph", type=float, default=7.0, help="pH for the added hydrogens (default: %(default)s)")
    prep.add_argument("--model", type=_positive_int, default=1, help="model of a multi-model file (default: 1)")
    prep.add_argument("--add-missing-residues", action="store_true", help="build residues missing inside chains")
    prep.add_argument("--keep-water", action="store_true", help="keep crystallographic waters")
    prep.add_argument("--keep-heterogens", action="store_true",
                      help="keep ligands and other heterogens (the force field must have templates for them)")
    prep.add_argument("--padding", type=_positive_float, default=1.0, help="water padding for tip3p, nm")
    prep.add_argument("--constraints", choices=("hbonds", "none"), default="hbonds",
                      help="bond constraints of the System (default: hbonds, needed for 2 fs MD)")
    prep.add_argument("--restrain", choices=RESTRAINT_CHOICES, default="none",
                      help="harmonic positional restraints on heavy atoms or C-alpha (default: none)")
    prep.add_argument("--restraint-stiffness", type=_nonnegative_float, default=DEFAULT_STIFFNESS,
                      help="restraint stiffness, kJ/mol/nm^2 (default: %(default)s = 10 kcal/mol/A^2)")
    out = m.add_argument_group("outputs")
    out.add_argument("--report", metavar="JSON", help="write a JSON report")
    out.add_argument("--plot", metavar="PNG", help="write a PNG of energy vs iteration and wall time")
    out.add_argument("--quiet", action="store_true", help="no progress display and no summary")
    out.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    md = m.add_argument_group("molecular dynamics after minimization")
    md.add_argument("--md-steps", type=_nonnegative_int, default=0, help="Langevin MD steps (2 fs) after minimizing")
    md.add_argument("--temperature", type=_positive_float, default=300.0, help="MD temperature, K (default 300)")
    md.add_argument("--trajectory", metavar="DCD", help="MD trajectory (default: OUT stem + _md.dcd)")
    md.add_argument("--md-interval", type=_positive_int, default=500, help="steps between saved frames and log lines")
    md.add_argument("--md-log", metavar="TXT", help="StateDataReporter log (default: trajectory stem + .log)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return run_minimize(args)
    except (UserError, PreparationError, OutputError) as error:
        return _fail(args, error)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        from ..core.errors import NonFiniteEnergyError
        if isinstance(error, NonFiniteEnergyError):
            return _fail(args, error)
        raise


def _fail(args: argparse.Namespace, error: BaseException) -> int:
    if getattr(args, "debug", False):
        raise error
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def run_minimize(args: argparse.Namespace) -> int:
    """The ``minimize`` command."""
    outputs = _output_paths(args)
    for path in outputs.values():
        check_writable(path)
    platform = _platform(args.platform)
    options = _minimizer_options(args)

    start = time.perf_counter()
    prepared = prepare(args.input, forcefield=args.forcefield, solvent=args.solvent, ph=args.ph, model=args.model,
                       add_missing_residues=args.add_missing_residues, keep_water=args.keep_water,
                       keep_heterogens=args.keep_heterogens, padding=args.padding,
                       constraints=app.HBonds if args.constraints == "hbonds" else None, seed=args.seed)
    topology, system, reference = prepared.topology, prepared.system, prepared.positions
    restraint = add_position_restraints(system, topology, reference, args.restrain, args.restraint_stiffness)
    from .report import assign_force_groups, energy_summary, force_statistics
    groups = assign_force_groups(system)
    integrator = openmm.LangevinMiddleIntegrator(args.temperature * unit.kelvin, 1.0 / unit.picosecond,
                                                 2.0 * unit.femtoseconds)
    integrator.setRandomNumberSeed(args.seed)
    simulation = app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(reference)
    preparation_time = time.perf_counter() - start
    energy_before = energy_summary(simulation.context, groups)
    forces_before = force_statistics(simulation.context)

    reporter = ProgressReporter(enabled=False if args.quiet else None, max_iterations=args.max_iterations,
                                time_budget=args.time_budget)
    from ..optimize.orchestrator import minimize
    try:
        result = minimize(simulation.context, args.tolerance, args.max_iterations, reporter, method=args.method,
                          seed=args.seed, **options)
    finally:
        reporter.close()

    positions = simulation.context.getState(getPositions=True).getPositions()
    with atomic_path(outputs["output"]) as temporary:
        write_structure(topology, positions, temporary, fmt=structure_format(outputs["output"]))
    energy_after = energy_summary(simulation.context, groups)
    forces_after = force_statistics(simulation.context)

    md_summary = _run_md(args, simulation, outputs) if args.md_steps > 0 else None
    from .report import package_versions, rmsd_to_reference, stage_table, write_json
    data = {
        "input": os.path.abspath(args.input), "output": os.path.abspath(outputs["output"]), "command": "minimize",
        "settings": _settings(args, prepared, restraint, simulation),
        "preparation": {"changes": prepared.changes, "atoms": topology.getNumAtoms(),
                        "residues": topology.getNumResidues(), "periodic": prepared.periodic,
                        "wall_time": preparation_time},
        "energy_unit": "kJ/mol", "force_unit": "kJ/mol/nm",
        "energy_before": energy_before, "energy_after": energy_after,
        "rms_force": result.rms_force, "max_force": result.max_force, "converged": result.converged,
        "tolerance": result.tolerance,
        "forces_before_raw": forces_before, "forces_after_raw": forces_after,
        "rmsd_to_prepared_input": rmsd_to_reference(topology, reference, positions),
        "iterations": result.iterations, "energy_evaluations": result.energy_evaluations,
        "wall_time": result.wall_time, "stages": stage_table(result), "selected": result.selected,
        "baseline_energy": result.baseline_energy, "interrupted": result.interrupted,
        "minimizer_options": result.options, "md": md_summary, "versions": package_versions(),
    }
    if "report" in outputs:
        write_json(outputs["report"], data)
    if "plot" in outputs:
        from .report import plot_history
        plot_history(result.history, outputs["plot"], title=f"{os.path.basename(args.input)}: {args.method}")
    if not args.quiet:
        _print_summary(data, outputs)
    return 0


def _output_paths(args: argparse.Namespace) -> Dict[str, str]:
    """Every file this run will write, validated up front (format, distinct names)."""
    try:
        structure_format(args.output)
    except PreparationError as error:
        raise UserError(str(error)) from None
    outputs = {"output": args.output}
    if args.report:
        outputs["report"] = args.report
    if args.plot:
        outputs["plot"] = args.plot
    if args.md_steps > 0:
        trajectory = args.trajectory or os.path.splitext(args.output)[0] + "_md.dcd"
        outputs["trajectory"] = trajectory
        outputs["md_log"] = args.md_log or os.path.splitext(trajectory)[0] + ".log"
    elif args.trajectory or args.md_log:
        raise UserError("--trajectory and --md-log need --md-steps N (N > 0)")
    if args.md_steps > 0 and args.constraints == "none":
        raise UserError("MD with a 2 fs time step needs bond constraints: drop --constraints none")
    real = [os.path.realpath(p) for p in outputs.values()]
    if len(set(real)) != len(real):
        raise UserError("two outputs have the same file name: " + ", ".join(outputs.values()))
    return outputs


def _platform(name: Optional[str]) -> Optional[openmm.Platform]:
    if name is None:
        return None
    try:
        return openmm.Platform.getPlatformByName(name)
    except openmm.OpenMMException:
        available = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
        raise UserError(f"unknown platform {name!r}; available: {', '.join(available)}") from None


def _minimizer_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Options for ``minimize``: the dedicated flags, then every ``--option KEY=VALUE``, checked here so that a
    typo is a one-line user error rather than a traceback."""
    from ..optimize.options import MinimizerOptions
    options = {"steps": args.steps, "fine_steps": args.fine_steps, "time_budget": args.time_budget}
    options = {key: value for key, value in options.items() if value is not None}
    for item in args.option:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise UserError(f"--option needs KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = _option_value(text.strip())
    try:
        MinimizerOptions.from_kwargs(**options)
    except (TypeError, ValueError) as error:
        raise UserError(f"bad minimizer option: {error}") from None
    return options


def _option_value(text: str) -> Any:
    """``true``/``false``/``none``, an int, a float, or the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _run_md(args: argparse.Namespace, simulation: app.Simulation, outputs: Dict[str, str]) -> Dict[str, Any]:
    """Langevin MD from the minimized Context, writing the DCD and the log atomically."""
    simulation.context.setVelocitiesToTemperature(args.temperature * unit.kelvin, args.seed)
    simulation.currentStep = 0
    start = time.perf_counter()
    with ExitStack() as stack:
        dcd_path = stack.enter_context(atomic_path(outputs["trajectory"]))
        log_path = stack.enter_context(atomic_path(outputs["md_log"]))
        dcd = app.DCDReporter(dcd_path, args.md_interval)
        log = app.StateDataReporter(log_path, args.md_interval, step=True, time=True, potentialEnergy=True,
                                    kineticEnergy=True, totalEnergy=True, temperature=True, speed=True)
        simulation.reporters[:] = [dcd, log]
        try:
            simulation.step(args.md_steps)
        except openmm.OpenMMException as error:
            raise UserError(f"MD failed after minimization: {' '.join(str(error).split())}") from None
        finally:
            simulation.reporters[:] = []
            dcd._out.close()
            log._out.close()
    state = simulation.context.getState(getEnergy=True)
    return {"steps": args.md_steps, "temperature_K": args.temperature, "friction_per_ps": 1.0, "timestep_fs": 2.0,
            "interval": args.md_interval, "frames": args.md_steps // args.md_interval,
            "trajectory": os.path.abspath(outputs["trajectory"]), "log": os.path.abspath(outputs["md_log"]),
            "final_potential_energy": state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            "wall_time": time.perf_counter() - start}


def _settings(args: argparse.Namespace, prepared, restraint, simulation: app.Simulation) -> Dict[str, Any]:
    """The exact settings: every command-line value, the preparation settings, and what they resolved to."""
    settings = {key: value for key, value in vars(args).items() if key not in ("command",)}
    settings["preparation"] = prepared.settings
    settings["restrained_atoms"] = 0 if restraint is None else restraint.getNumParticles()
    settings["platform_used"] = simulation.context.getPlatform().getName()
    return settings


def _print_summary(data: Dict[str, Any], outputs: Dict[str, str]) -> None:
    before, after = data["energy_before"]["total"], data["energy_after"]["total"]
    rmsd = data["rmsd_to_prepared_input"]
    lines = [f"energy {before:.3f} -> {after:.3f} kJ/mol; RMS force {data['rms_force']:.3g} kJ/mol/nm "
             f"({'converged' if data['converged'] else 'not converged'}); {data['iterations']} iterations, "
             f"{data['wall_time']:.1f} s",
             f"RMSD to the prepared input: heavy atoms {_fmt(rmsd['heavy_angstrom'])} A, "
             f"C-alpha {_fmt(rmsd['ca_angstrom'])} A"]
    lines += [f"wrote {path}" for path in outputs.values()]
    print("\n".join(lines))


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _bounded(kind: type, minimum: float, strict: bool):
    """An argparse type: a number of ``kind`` that is > minimum (strict) or >= minimum."""
    def parse(text: str):
        value = _number(text, kind)
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return value
    return parse


_positive_float = _bounded(float, 0, strict=True)
_nonnegative_float = _bounded(float, 0, strict=False)
_positive_int = _bounded(int, 1, strict=False)
_nonnegative_int = _bounded(int, 0, strict=False)


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a valid {kind.__name__}: {text!r}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
