"""Per-step overhead of the optimization loop: C++ engine vs Python engine vs one bare force evaluation.

For each protein (default 2JOF and 2WXC, NMR MODEL 1) prepared with PDBFixer + amber14-all.xml +
implicit/obc2.xml, NoCutoff, no constraints (HBonds off, so every step is exactly one force evaluation),
on the CPU platform, it times
  * bare:   one Context::getState(energy + forces), timed in C++ (reparamplugin.timeForceEvaluation);
  * cpp:    one reparametrized Adam step of the compiled engine (generator forward, set positions, forces,
            backprop, clipping, Adam, stage bookkeeping), from a reparam stage of CompiledEngine.adam_stage
            (runAdamStage in C++, libtorch limited to torch_threads = 1);
  * python: the same stage in the reference PythonEngine.adam_stage, with torch's default thread count;
  * python_1t: the same with torch.set_num_threads(1) (the C++ engine limits libtorch to 1 thread while stepping:
            on a few cores torch's OpenMP threads otherwise compete with the OpenMM CPU platform's threads).
The generator is the default GNN (hidden 32, 2 layers) over 30 orthonormal modes; the per-step cost does not
depend on the mode values, so random orthonormal modes replace the slow-mode computation to keep the benchmark
short. Each measurement is repeated in interleaved rounds; the median and the minimum over rounds of the
per-step time are reported (the minimum is the least disturbed by other processes on a shared machine).

    python -m benchmarks overhead [--proteins 2JOF 2WXC] [--steps 50] [--rounds 3] [--json out.json]

Target: cpp / bare <= 1.25 (benchmarks/RESULTS.md#engine-overhead).
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import List, Optional

import numpy as np
import torch  # noqa: F401  (before the plugin)
import openmm
from openmm import app, unit

from openmm_reparam.core.bridge import EnergyBridge
from openmm_reparam.engines import AdamStageSettings, PythonEngine
from openmm_reparam.methods.adam import adam_settings
from openmm_reparam.engines import compiled as cpp_engine
from openmm_reparam.run.options import MinimizerOptions
from openmm_reparam.run.recorder import RunRecorder
from openmm_reparam.reparam.generators import GNNGenerator

from .pdb_source import PDB_SOURCE_DIR



def first_model(path: str) -> str:
    """The text of MODEL 1 of an NMR ensemble (the whole file if it has no MODEL records)."""
    lines, inside, seen = [], False, False
    with open(path) as handle:
        for line in handle:
            if line.startswith("MODEL"):
                if seen:
                    break
                inside = seen = True
                continue
            if line.startswith("ENDMDL"):
                break
            if line.startswith(("ATOM", "HETATM", "TER")) and (inside or not seen):
                lines.append(line)
    return "".join(lines) + "END\n"


def prepare(pdb_id: str):
    """(System, positions in nm) for pdb_id: PDBFixer, amber14 + OBC2, NoCutoff, no constraints."""
    import io
    from pdbfixer import PDBFixer
    fixer = PDBFixer(pdbfile=io.StringIO(first_model(os.path.join(PDB_SOURCE_DIR, f"{pdb_id}.pdb"))))
    fixer.removeHeterogens(keepWater=False)
    fixer.findMissingResidues()
    fixer.missingResidues = {}
    fixer.findNonstandardResidues()
    fixer.replaceNonstandardResidues()
    fixer.findMissingAtoms()
    fixer.addMissingAtoms()
    fixer.addMissingHydrogens(7.0)
    ff = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    system = ff.createSystem(fixer.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    return system, np.array(fixer.positions.value_in_unit(unit.nanometer), dtype=np.float64)


def make_context(system, positions):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions)
    return context


def make_generator(positions: np.ndarray, seed: int = 0) -> GNNGenerator:
    modes = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(positions), 30)))[0]
    generator = GNNGenerator(modes, positions, hidden=32, layers=2, seed=seed)
    generator.fit(positions, steps=20)
    return generator


def stage_settings(steps: int) -> AdamStageSettings:
    """A reparam stage of exactly ``steps`` steps (no early stopping), the other values method gnn's defaults."""
    options = MinimizerOptions.from_kwargs(method="gnn", progress_window=0)
    return adam_settings(options, "reparam", options.lr, steps, 10 ** 6)


def time_stage(engine, system, positions, generator, steps: int) -> float:
    """Seconds per step of one reparam stage of ``engine`` on a fresh CPU Context."""
    context = make_context(system, positions)
    stage = engine.adam_stage(EnergyBridge(context), RunRecorder(), copy.deepcopy(generator), stage_settings(steps))
    return stage.wall_time / stage.iterations


def time_cpp(system, positions, generator, steps: int) -> float:
    return time_stage(cpp_engine.CompiledEngine(), system, positions, generator, steps)


def time_python(system, positions, generator, steps: int) -> float:
    return time_stage(PythonEngine(), system, positions, generator, steps)


def time_bare(system, positions, repeats: int) -> float:
    context = make_context(system, positions)
    return cpp_engine.plugin().timeForceEvaluation(context, repeats)


def run(proteins, steps: int, rounds: int):
    results = []
    for pdb_id in proteins:
        system, positions = prepare(pdb_id)
        generator = make_generator(positions)
        samples = {"bare": [], "cpp": [], "python": [], "python_1t": []}
        default_threads = torch.get_num_threads()
        for _ in range(rounds):
            samples["bare"].append(time_bare(system, positions, steps))
            samples["cpp"].append(time_cpp(system, positions, generator, steps))
            samples["python"].append(time_python(system, positions, generator, steps))
            torch.set_num_threads(1)
            try:
                samples["python_1t"].append(time_python(system, positions, generator, steps))
            finally:
                torch.set_num_threads(default_threads)
        row = {"protein": pdb_id, "atoms": system.getNumParticles(), "steps_per_round": steps, "rounds": rounds}
        for key, values in samples.items():
            row[f"{key}_ms"] = 1e3 * statistics.median(values)
            row[f"{key}_ms_min"] = 1e3 * min(values)
            row[f"{key}_ms_all"] = [1e3 * v for v in values]
        for key in ("cpp", "python", "python_1t"):
            row[f"{key}_over_bare"] = row[f"{key}_ms"] / row["bare_ms"]
            row[f"{key}_over_bare_min"] = row[f"{key}_ms_min"] / row["bare_ms_min"]
        results.append(row)
        print(f"{pdb_id:5s} {row['atoms']:6d} atoms | median (min) ms per step: bare {row['bare_ms']:.3f} "
              f"({row['bare_ms_min']:.3f}) | C++ {row['cpp_ms']:.3f} ({row['cpp_ms_min']:.3f}) = "
              f"{row['cpp_over_bare']:.3f}x ({row['cpp_over_bare_min']:.3f}x) | Python {row['python_ms']:.3f} "
              f"({row['python_ms_min']:.3f}) = {row['python_over_bare']:.2f}x | Python, 1 torch thread "
              f"{row['python_1t_ms']:.3f} ({row['python_1t_ms_min']:.3f}) = {row['python_1t_over_bare']:.2f}x",
              flush=True)
    return results


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks overhead``: print the environment and one line per protein (and write ``--json``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proteins", nargs="+", default=["2JOF", "2WXC"])
    parser.add_argument("--steps", type=int, default=50, help="steps (and bare evaluations) per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not cpp_engine.cpp_available():
        print(cpp_engine.unavailable_reason(), file=sys.stderr)
        return 2
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPU cores",
            "openmm": openmm.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "platform": "CPU", "command": " ".join(["python -m benchmarks overhead"] + argv)}
    print(json.dumps(meta))
    results = run(args.proteins, args.steps, args.rounds)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"meta": meta, "results": results}, handle, indent=2)
    return 0
