"""The examples run as ordinary scripts (subprocesses, small settings) and produce what they promise."""
import os
import re
import subprocess
import sys

import pytest
from openmm import app

pytest.importorskip("pdbfixer")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
DATA = os.path.join(ROOT, "tests", "data")


def run_example(name, *args, cwd):
    completed = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *map(str, args)], cwd=cwd,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_minimize_pdb_example_on_chignolin(tmp_path):
    stdout = run_example("minimize_pdb.py", "-o", "chignolin_min.pdb", "--steps", 10, "--fine-steps", 10,
                         cwd=tmp_path)
    assert "prepared 166 atoms: removed HOH x12, added 73 hydrogens" in stdout
    initial, final = map(float, re.search(r"gnn: (-?[\d.]+) -> (-?[\d.]+) kJ/mol", stdout).groups())
    assert final < initial
    written = app.PDBFile(str(tmp_path / "chignolin_min.pdb"))
    assert written.topology.getNumAtoms() == 166
    assert [r.id for r in written.topology.residues()] == [str(i) for i in range(1, 11)]


def test_dropin_simulation_example_changes_one_line_and_runs_md(tmp_path):
    source = open(os.path.join(EXAMPLES, "dropin_simulation.py")).read()
    assert "\nopenmm_reparam.minimize(simulation.context)\n" in source  # the drop-in line, verbatim
    assert "\n# simulation.minimizeEnergy()\n" in source
    stdout = run_example("dropin_simulation.py", os.path.join(DATA, "1PLW_model1.pdb"), "--md-steps", 100,
                         "--interval", 25, "--trajectory", "md.dcd", cwd=tmp_path)
    minimized = float(re.search(r"minimized energy: (-?[\d.]+) kJ/mol", stdout).group(1))
    assert minimized < -700  # the prepared start is at about -590 kJ/mol
    rows = [line for line in stdout.splitlines() if re.match(r"^\d+,", line)]
    assert [int(row.split(",")[0]) for row in rows] == [25, 50, 75, 100]
    import mdtraj
    frames = mdtraj.load_dcd(str(tmp_path / "md.dcd"), top=os.path.join(DATA, "1PLW_model1.pdb"))
    assert frames.n_frames == 4


def test_relax_chain_breaks_example_keeps_the_noisy_model_near_the_crystal(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)  # this checkout's openmm_reparam
    completed = subprocess.run([sys.executable, os.path.join(EXAMPLES, "relax_chain_breaks.py"), "-o",
                                str(tmp_path / "relaxed.pdb")], cwd=tmp_path, capture_output=True, text=True,
                               timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    noisy, relaxed = map(float, re.findall(r"RMSD to the crystal ([\d.]+) A", completed.stdout))
    assert 0.3 < noisy < 0.4 and relaxed < 0.5
    assert "chain breaks: 2: ALA A 12 | ARG A 15, LYS A 30 | PHE A 33" in completed.stdout
    assert re.search(r"violations: \d+ -> 0 in", completed.stdout)
    assert app.PDBFile(str(tmp_path / "relaxed.pdb")).topology.getNumResidues() == 36
