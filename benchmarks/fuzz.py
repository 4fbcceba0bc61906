"""``python -m benchmarks fuzz``: seeded mutations of the shipped structure files through ``openmm-reparam
minimize``. Every mutated input must end in exit status 0 with a readable, finite structure written, or exit
status 2 with one line on stderr: never a traceback, a crash or a hang.

    python -m benchmarks fuzz --cases 3000 --seed 0 --json benchmarks/out/fuzz.json

Mutations (one to three per input, chosen by the seed): truncated lines, shifted columns, random bytes, NaN,
infinite and huge numbers in a coordinate, duplicated, dropped or swapped records, a renamed residue or atom, a
changed chain id or residue number, a garbage line, a file cut short; on the PDB and PDBx/mmCIF files in
``tests/data``. The command runs in a worker process that takes one case at a time; a case that outlives its
time limit is a hang (the worker is killed and a new one goes on), a worker that dies is a crash.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [os.path.join(ROOT, "tests", "data", name) for name in ("1PLW_model1.pdb", "1PLW_model1.cif", "5AWL.pdb")]
#: The command's settings: the default method on the CPU platform (the platform is not what is fuzzed).
COMMAND = ["minimize", "--platform", "CPU", "--threads", "1"]
HANG_SECONDS = 120.0
ANSWER = b"FUZZ-ANSWER "
_ATOMS = ("ATOM", "HETATM")


@dataclass
class Outcome:
    """What one mutated input did: ``verdict`` ok (exit 0, valid structure), refused (exit 2, one line) or a
    failure: traceback, bad-exit, bad-output, crash, hang."""
    index: int
    source: str
    mutations: List[str]
    verdict: str
    status: Optional[int]
    stderr: str
    seconds: float


# --- mutations ------------------------------------------------------------------------------------------------

def _rows(lines: List[str], rng: random.Random) -> List[int]:
    """The lines a mutation may hit: mostly atom records (ATOM/HETATM, in PDB and PDBx alike), sometimes any."""
    atoms = [i for i, line in enumerate(lines) if line.startswith(_ATOMS)]
    return atoms if atoms and rng.random() < 0.8 else list(range(len(lines)))


def _replace_field(line: str, rng: random.Random, value: str, pdb: bool) -> str:
    """``line`` with one coordinate replaced by ``value`` (a PDB column field, or a PDBx token)."""
    if pdb and len(line) >= 54:
        start = rng.choice((30, 38, 46))
        return line[:start] + value.rjust(8)[:8] + line[start + 8:]
    tokens = line.split(" ")
    numeric = [i for i, token in enumerate(tokens) if _is_number(token)]
    if numeric:
        tokens[rng.choice(numeric)] = value
    return " ".join(tokens)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return "." in token
    except ValueError:
        return False


def mutate(text: str, rng: random.Random, pdb: bool) -> (str, List[str]):
    """``text`` with one to three seeded mutations; returns (text, their names)."""
    lines = text.splitlines(keepends=True)
    names = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        rows = _rows(lines, rng)
        if not rows:
            break
        i = rng.choice(rows)
        name, operation = rng.choice(list(MUTATIONS.items()))
        lines = operation(lines, i, rng, pdb)
        names.append(name)
    return "".join(lines), names


def _truncate_line(lines, i, rng, pdb):
    lines[i] = lines[i][:rng.randrange(len(lines[i]) + 1)] + "\n"
    return lines


def _shift_columns(lines, i, rng, pdb):
    at = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:at] + " " + lines[i][at:] if rng.random() < 0.5 else lines[i][:at] + lines[i][at + 1:]
    return lines


def _random_bytes(lines, i, rng, pdb):
    chars = list(lines[i])
    for _ in range(rng.randint(1, 4)):
        if chars:
            chars[rng.randrange(len(chars))] = chr(rng.randrange(1, 256))
    lines[i] = "".join(chars)
    return lines


def _bad_number(lines, i, rng, pdb):
    value = rng.choice(("nan", "NaN", "inf", "-inf", "1e300", "99999.99", "-9999.99", "1e6", "0.0"))
    lines[i] = _replace_field(lines[i], rng, value, pdb)
    return lines


def _duplicate(lines, i, rng, pdb):
    lines.insert(i, lines[i])
    return lines


def _drop(lines, i, rng, pdb):
    del lines[i]
    return lines


def _swap(lines, i, rng, pdb):
    j = rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return lines


def _rename(lines, i, rng, pdb):
    name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
    line = lines[i]
    if pdb and len(line) > 26:
        field = rng.choice(((17, 20), (12, 16), (21, 22), (22, 26)))  # residue, atom, chain id, residue number
        value = str(rng.randrange(-999, 9999)) if field == (22, 26) else name
        lines[i] = line[:field[0]] + value.rjust(field[1] - field[0])[:field[1] - field[0]] + line[field[1]:]
    else:
        tokens = line.split()
        if len(tokens) > 5:
            tokens[rng.randrange(2, 6)] = name
            lines[i] = " ".join(tokens) + "\n"
    return lines


def _garbage_line(lines, i, rng, pdb):
    lines.insert(i, "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(0, 90))) + "\n")
    return lines


def _cut_file(lines, i, rng, pdb):
    return lines[:i]


MUTATIONS: Dict[str, Callable] = {
    "truncated line": _truncate_line, "shifted columns": _shift_columns, "random bytes": _random_bytes,
    "bad number": _bad_number, "duplicated record": _duplicate, "dropped record": _drop, "swapped records": _swap,
    "renamed field": _rename, "garbage line": _garbage_line, "file cut short": _cut_file,
}


# --- running ----------------------------------------------------------------------------------------------

def make_cases(count: int, seed: int, directory: str) -> List[Dict[str, object]]:
    """``count`` mutated files in ``directory``, round-robin over :data:`SOURCES`."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    texts = {source: open(source).read() for source in SOURCES}
    cases = []
    for index in range(count):
        source = SOURCES[index % len(SOURCES)]
        text, names = mutate(texts[source], rng, pdb=source.endswith(".pdb"))
        path = os.path.join(directory, f"case{index:05d}{os.path.splitext(source)[1]}")
        with open(path, "w", encoding="latin-1", errors="replace") as handle:
            handle.write(text)
        cases.append({"index": index, "source": os.path.basename(source), "mutations": names, "path": path,
                      "output": os.path.join(directory, f"case{index:05d}_out.pdb")})
    return cases


class Worker:
    """A ``python -m benchmarks fuzz --worker`` process: one JSON case in on stdin, one answer line out (lines
    OpenMM's C++ code prints on the same stdout are skipped)."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks", "fuzz", "--worker"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=dict(os.environ, PYTHONPATH=ROOT))
        self.pending = b""

    def ask(self, case: Dict[str, object], timeout: float) -> Optional[dict]:
        """The worker's answer; None when it died or ran past ``timeout`` (then it is killed)."""
        self.process.stdin.write((json.dumps(case) + "\n").encode())
        self.process.stdin.flush()
        deadline = time.perf_counter() + timeout
        while True:
            line, _, rest = self.pending.partition(b"\n")
            if _ and line.startswith(ANSWER):
                self.pending = rest
                return json.loads(line[len(ANSWER):])
            if _:
                self.pending = rest
                continue
            left = deadline - time.perf_counter()
            ready = select.select([self.process.stdout], [], [], max(0.0, left))[0] if left > 0 else []
            chunk = os.read(self.process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.close()
                return None
            self.pending += chunk

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def run_cases(cases: Sequence[Dict[str, object]], timeout: float = HANG_SECONDS,
              log: Optional[Callable[[str], None]] = None) -> List[Outcome]:
    """Each case through the command in a worker process; a dead or hung worker is replaced."""
    outcomes, worker = [], None
    for case in cases:
        worker = worker or Worker()
        start = time.perf_counter()
        answer = worker.ask(case, timeout)
        seconds = time.perf_counter() - start
        if answer is None:
            dead = worker.process.returncode not in (None, -9) and seconds < timeout
            answer = {"verdict": "crash" if dead else "hang", "status": worker.process.returncode, "stderr": ""}
            worker = None
        outcome = Outcome(case["index"], case["source"], case["mutations"], answer["verdict"], answer["status"],
                          answer["stderr"], seconds)
        outcomes.append(outcome)
        if log is not None and outcome.verdict not in ("ok", "refused"):
            log(f"[fuzz] case {outcome.index} ({outcome.source}: {', '.join(outcome.mutations)}): "
                f"{outcome.verdict}: {outcome.stderr[-300:]}")
    if worker is not None:
        worker.close()
    return outcomes


def judge(case: Dict[str, object], status: Optional[int], stderr: str, escaped: Optional[str]) -> str:
    """The verdict of one run of the command (see :class:`Outcome`)."""
    if escaped is not None or "Traceback" in stderr:
        return "traceback"
    if status == 2:
        lines = stderr.splitlines()
        return "refused" if len(lines) == 1 and lines[0].startswith("openmm-reparam: error: ") else "bad-exit"
    if status != 0:
        return "bad-exit"
    return "ok" if valid_structure(str(case["output"])) else "bad-output"


def valid_structure(path: str) -> bool:
    """Whether ``path`` is a PDB file OpenMM reads back, with atoms and finite coordinates (its reader's warnings,
    such as the duplicate atoms of a duplicated residue the output keeps, are not printed)."""
    import warnings
    import numpy as np
    from openmm import app, unit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pdb = app.PDBFile(path)
        xyz = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    except Exception:  # noqa: BLE001 - any failure to read it back means the output is not valid
        return False
    return pdb.topology.getNumAtoms() > 0 and bool(np.isfinite(np.asarray(xyz)).all())


def serve() -> None:
    """The worker: run each case from stdin through the command in this process."""
    import contextlib
    import io
    import traceback
    import torch  # noqa: F401  (before openmm)
    from openmm_reparam.app.cli import main
    for line in sys.stdin:
        case = json.loads(line)
        out, err, escaped = io.StringIO(), io.StringIO(), None
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(COMMAND[:1] + [str(case["path"]), "-o", str(case["output"]), "--quiet"] + COMMAND[1:])
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # noqa: BLE001 - an escaped exception is exactly what is looked for
                status, escaped = None, traceback.format_exc()
        verdict = judge(case, status, err.getvalue(), escaped)
        answer = {"verdict": verdict, "status": status, "stderr": escaped or err.getvalue()}
        sys.__stdout__.write(ANSWER.decode() + json.dumps(answer) + "\n")
        sys.__stdout__.flush()


def summary(outcomes: Sequence[Outcome]) -> Dict[str, object]:
    counts: Dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.verdict] = counts.get(outcome.verdict, 0) + 1
    times = sorted(o.seconds for o in outcomes)
    return {"cases": len(outcomes), "verdicts": counts, "failures": [asdict(o) for o in outcomes
                                                                     if o.verdict not in ("ok", "refused")],
            "median_seconds": times[len(times) // 2] if times else None, "max_seconds": times[-1] if times else None}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=HANG_SECONDS, help="seconds before a case is a hang")
    parser.add_argument("--dir", default="benchmarks/out/fuzz", help="where the mutated files are written")
    parser.add_argument("--json", default=None, help="write the summary here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        serve()
        return 0
    start = time.perf_counter()
    outcomes = run_cases(make_cases(args.cases, args.seed, args.dir), args.timeout,
                         log=lambda message: print(message, file=sys.stderr, flush=True))
    result = dict(summary(outcomes), seed=args.seed, wall_seconds=time.perf_counter() - start,
                  command="python -m benchmarks fuzz " + " ".join(sys.argv[2:] if argv is None else argv))
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}, indent=1))
    return 0 if not result["failures"] else 1

