"""Inputs users bring: bad coordinates are refused before anything runs, chain gaps and removed residues are
said and never bonded shut, outputs never replace inputs, errors are one line, compressed files are read, and
the same input gives the same structure whatever else the process does. Real files, real Contexts."""
import contextlib
import gzip
import io
import json
import os
import random
import shutil
import threading

import numpy as np
import openmm
import pytest
from openmm import app, unit

pytest.importorskip("pdbfixer")

from conftest import make_context, positions_of  # noqa: E402
from openmm_reparam import InvalidPositionsError, minimize  # noqa: E402
from openmm_reparam.app.cli import main  # noqa: E402
from openmm_reparam.app.outputs import atomic_path, remove_temporaries  # noqa: E402
from openmm_reparam.app.prepare import PreparationError, prepare  # noqa: E402
from openmm_reparam.core.validation import position_problem  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
CHIGNOLIN = os.path.join(DATA, "5AWL.pdb")
FAST = ["--platform", "CPU", "--method", "lbfgs"]


def run(*argv):
    """The CLI in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def edited_chignolin(directory, name, edit):
    """5AWL with ``edit(line)`` applied to each ATOM/HETATM line (None drops the line)."""
    lines = []
    for line in open(CHIGNOLIN):
        if line.startswith(("ATOM", "HETATM", "ANISOU")):
            line = edit(line)
        if line is not None:
            lines.append(line)
    path = directory / name
    path.write_text("".join(lines))
    return path


def first_cb(value):
    """An edit putting ``value`` (8 columns) as the x coordinate of the first CB (TYR A 1)."""
    done = []

    def edit(line):
        if line.startswith("ATOM") and line[12:16].strip() == "CB" and not done:
            done.append(True)
            return line[:30] + value + line[38:]
        return line
    return edit


def without_residue(number):
    return lambda line: None if line[22:26].strip() == str(number) and line[17:20] != "HOH" else line


def c_n_distance(path, before, after):
    """C(before)–N(after) distance (Å) in a written PDB file, by residue number."""
    pdb = app.PDBFile(str(path))
    xyz = pdb.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
    atoms = {(a.residue.id, a.name): a.index for a in pdb.topology.atoms()}
    return float(np.linalg.norm(xyz[atoms[(str(before), "C")]] - xyz[atoms[(str(after), "N")]]))


# --- coordinates ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [("     nan", "non-finite coordinate"), ("99999.99", "nm from the nearest")])
@pytest.mark.parametrize("command", ["minimize", "relax"])
def test_a_bad_coordinate_is_one_line_naming_the_atom(tmp_path, value, expected, command):
    path = edited_chignolin(tmp_path, "bad.pdb", first_cb(value))
    status, stdout, stderr = run(command, path, "-o", tmp_path / "out.pdb", *FAST)
    assert status == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith("openmm-reparam: error: ") and "atom CB of TYR A 1" in stderr and expected in stderr
    assert not (tmp_path / "out.pdb").exists()


def test_the_api_refuses_a_nan_or_far_particle_and_leaves_the_context_as_it_was(awl):
    _, system, positions = awl
    for index, bad in ((5, [np.nan, 0.0, 0.0]), (7, [1e4, 0.0, 0.0])):
        start = positions.copy()
        start[index] = bad
        context = make_context(system, positions, "Reference")
        context.setPositions(start * unit.nanometer)
        with pytest.raises(InvalidPositionsError, match=f"particle {index} ") as raised:
            minimize(context)
        assert raised.value.index == index
        np.testing.assert_array_equal(positions_of(context), start)
    # a particle 3 nm out is a hard start, not a corrupt one: it is minimized
    start = positions.copy()
    start[7] += [3.0, 0.0, 0.0]
    context = make_context(system, start, "Reference")
    result = minimize(context, method="lbfgs")
    assert result.final_energy < result.initial_energy and np.isfinite(positions_of(context)).all()


def test_the_far_atom_rule_is_off_in_a_periodic_box_and_with_zero():
    far = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [50.0, 0.0, 0.0]])
    assert position_problem(far)[0] == 2
    assert position_problem(far, periodic=True) is None
    assert position_problem(far, far_atom_distance=0.0) is None
    assert position_problem(far, far_atom_distance=60.0) is None


# --- chain gaps, unknown residues, removed residues ----------------------------------------------------------

def test_minimize_makes_a_gap_two_termini_and_says_so(tmp_path):
    gap = edited_chignolin(tmp_path, "gap.pdb", without_residue(6))
    status, stdout, stderr = run("minimize", gap, "-o", tmp_path / "out.pdb", *FAST)
    assert status == 0, stderr
    assert "1 chain break(s) made termini, not bonded across the gap: GLU A 5 | GLY A 7" in stdout
    assert "removed waters, ions and ligands: HOH x12" in stdout
    assert c_n_distance(tmp_path / "out.pdb", 5, 7) > 2.5  # not pulled shut (it was 3.67 Å)
    names = {(a.residue.id, a.name) for a in app.PDBFile(str(tmp_path / "out.pdb")).topology.atoms()}
    assert {("5", "OXT"), ("7", "H3")} <= names


def test_add_missing_residues_builds_the_gap_from_seqres(tmp_path):
    gap = edited_chignolin(tmp_path, "gap.pdb", without_residue(6))
    status, stdout, _ = run("minimize", gap, "-o", tmp_path / "out.pdb", "--add-missing-residues", *FAST)
    assert status == 0 and "chain break" not in stdout and "missing residues built" in stdout
    residues = [r.name for r in app.PDBFile(str(tmp_path / "out.pdb")).topology.residues() if r.name != "HOH"]
    assert residues[5] == "THR" and len(residues) == 10
    assert c_n_distance(tmp_path / "out.pdb", 5, 6) < 1.5 and c_n_distance(tmp_path / "out.pdb", 6, 7) < 1.5


@pytest.mark.parametrize("command", ["minimize", "relax"])
def test_an_unknown_residue_inside_a_chain_is_refused_by_every_command(tmp_path, command):
    path = edited_chignolin(tmp_path, "unknown.pdb", lambda line: line.replace(" ASP A   3", " XYZ A   3"))
    status, _, stderr = run(command, path, "-o", tmp_path / "out.pdb", *FAST)
    assert status == 2 and "unknown residue XYZ A 3 inside a polymer chain" in stderr


def test_a_batch_applies_the_same_rules_and_says_what_changed(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    edited_chignolin(inputs, "gap.pdb", without_residue(6))
    edited_chignolin(inputs, "unknown.pdb", lambda line: line.replace(" ASP A   3", " XYZ A   3"))
    with gzip.open(inputs / "plain.pdb.gz", "wt") as handle:
        handle.write(open(CHIGNOLIN).read())
    status, stdout, stderr = run("minimize", inputs, "--out-dir", tmp_path / "out", "--workers", 1, *FAST)
    assert status == 1
    rows = {row["name"]: row for row in json.load(open(tmp_path / "out" / "summary.json"))["rows"]}
    assert rows["unknown"]["status"] == "failed" and "unknown residue XYZ A 3" in rows["unknown"]["error"]
    assert rows["gap"]["status"] == "ok" and "GLU A 5 | GLY A 7" in rows["gap"]["notes"]
    assert "gap: prepared: 1 chain break(s) made termini" in stdout
    assert rows["plain"]["status"] == "ok" and (tmp_path / "out" / "plain.pdb").exists()


# --- outputs ----------------------------------------------------------------------------------------------

def test_an_output_never_replaces_its_input_without_overwrite(tmp_path):
    path = tmp_path / "in.pdb"
    shutil.copy(CHIGNOLIN, path)
    original = path.read_bytes()
    status, _, stderr = run("minimize", path, "-o", path, *FAST)
    assert status == 2 and "is the input file" in stderr and "--overwrite" in stderr
    assert path.read_bytes() == original
    status, _, stderr = run("minimize", tmp_path, "--out-dir", tmp_path, *FAST)
    assert status == 2 and "a folder the inputs come from" in stderr and sorted(os.listdir(tmp_path)) == ["in.pdb"]
    status, _, _ = run("minimize", path, "-o", path, "--overwrite", "--quiet", *FAST)
    assert status == 0 and path.read_bytes() != original and app.PDBFile(str(path)).topology.getNumAtoms() > 150


def test_a_writer_killed_before_writing_leaves_nothing_and_leftovers_are_cleared(tmp_path):
    target = tmp_path / "out.pdb"
    with atomic_path(target) as temporary:
        assert not os.path.exists(temporary)  # reserved, not created
        leftover = temporary
        with open(temporary, "w") as handle:
            handle.write("partial")
    assert target.read_text() == "partial" and not os.path.exists(leftover)
    stale = tmp_path / ".out.pdb.0123456789ab.tmp.pdb"
    stale.write_text("")
    assert remove_temporaries(target) == [str(stale)] and sorted(os.listdir(tmp_path)) == ["out.pdb"]


# --- errors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra,expected", [
    (["--option", "polish_projected_steps=abc"], "option polish_projected_steps must be an integer, got 'abc'"),
    (["--option", "never_worse=maybe"], "option never_worse must be true or false"),
])
def test_bad_option_values_are_one_line(tmp_path, extra, expected):
    status, _, stderr = run("minimize", CHIGNOLIN, "-o", tmp_path / "out.pdb", *FAST, *extra)
    assert status == 2 and stderr.count("\n") == 1 and expected in stderr


def test_an_unreachable_scheduler_is_one_line_and_runs_nothing(tmp_path):
    status, stdout, stderr = run("minimize", CHIGNOLIN, "--out-dir", tmp_path / "out", "--scheduler",
                                 "tcp://127.0.0.1:9", *FAST)
    assert status == 2 and stderr.count("\n") == 1, stderr
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in stderr
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize("text,expected", [
    ("ATOM      1  N   TYR A   1      xx\n", "line 1: an ATOM record of 34 columns"),
    ("ATOM      1  N   TYR A   1      11.x4  21.029  12.167  1.00 10.53           N\n",
     "line 1: unreadable coordinates"),
    ("data_x\nloop_\n_cell.length_a\n", "no _atom_site records"),
])
def test_malformed_files_name_what_is_wrong(tmp_path, text, expected):
    path = tmp_path / ("bad.cif" if text.startswith("data_") else "bad.pdb")
    path.write_text(text)
    with pytest.raises(PreparationError, match=expected):
        prepare(path)


def test_a_residue_without_heavy_atoms_is_refused(tmp_path):
    """A hydrogen record with a mistyped residue number becomes a residue of its own, which PDBFixer would build
    in full from nothing (its relaxation of it ran for minutes); it is named instead."""
    def edit(line):
        return line[:22] + "6303" + line[26:] if line.startswith("ATOM") and line[12:16].strip() == "H1" else line
    source = os.path.join(DATA, "1PLW_model1.pdb")
    path = tmp_path / "moved_h.pdb"
    path.write_text("".join(edit(line) for line in open(source)))
    with pytest.raises(PreparationError, match="residue TYR A 6303 has no heavy atom"):
        prepare(path)


def test_a_rebuilt_atom_never_lands_on_another(tmp_path):
    """Without THR A 8's OG1, PDBFixer rebuilds it 0.09 nm from CG2 and, for some random numbers, Modeller then
    relaxes its hydrogen onto CG2 (0.001 nm: a singularity the minimization falls into, to -1e8 kJ/mol). The
    preparation places the atoms anew until no added atom sits on another."""
    path = edited_chignolin(tmp_path, "no_og1.pdb", lambda line: None if line.startswith("ATOM") and
                            line[12:16].strip() == "OG1" and line[22:26].strip() == "8" else line)
    for seed in (0, 3):  # seeds whose first placement puts HG1 onto CG2
        prepared = prepare(path, seed=seed)
        xyz = np.asarray(prepared.positions.value_in_unit(unit.nanometer))
        distances = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1) + np.eye(len(xyz))
        assert distances.min() > 0.07 and prepared.changes["placement_attempts"] > 1
        assert prepared.changes["missing_atoms_added"] == {"THR A 8": ["OG1"]}


def test_a_gzip_compressed_input_gives_the_plain_files_structure(tmp_path):
    compressed = tmp_path / "5awl.pdb.gz"
    with gzip.open(compressed, "wb") as handle:
        handle.write(open(CHIGNOLIN, "rb").read())
    plain, packed = prepare(CHIGNOLIN), prepare(compressed)
    np.testing.assert_array_equal(np.asarray(packed.positions.value_in_unit(unit.nanometer)),
                                  np.asarray(plain.positions.value_in_unit(unit.nanometer)))


# --- reproducibility --------------------------------------------------------------------------------------

def test_preparation_is_the_same_while_another_thread_draws_from_the_global_random(tmp_path):
    """Modeller places hydrogens with random numbers: a thread drawing from Python's global generator meanwhile
    (as a Dask worker's machinery does) must not change the prepared structure."""
    reference = np.asarray(prepare(CHIGNOLIN).positions.value_in_unit(unit.nanometer))
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()
    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        disturbed = [np.asarray(prepare(CHIGNOLIN).positions.value_in_unit(unit.nanometer)) for _ in range(2)]
    finally:
        stop.set()
        thread.join()
    for positions in disturbed:
        np.testing.assert_array_equal(positions, reference)


def test_batches_on_one_or_two_workers_equal_single_runs(tmp_path):
    """Same outputs, byte for byte, whatever the number of workers and the order the jobs run in, and equal to
    one ``-o`` run of each input (both default to one CPU thread per structure)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(CHIGNOLIN, inputs / "chignolin.pdb")
    edited_chignolin(inputs, "rebuilt.pdb", lambda line: None if line.startswith("ATOM") and line[22:26].strip()
                     == "3" and line[12:16].strip() not in ("N", "CA", "C", "O", "CB") else line)
    (inputs / "garbage.pdb").write_text("not a structure\n")
    options = ["--platform", "CPU", "--method", "precon"]
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        run("minimize", inputs, "--out-dir", out, "--workers", workers, *options)
        outputs[workers] = {name: atom_records(out / f"{name}.pdb") for name in ("chignolin", "rebuilt")}
    for name in ("chignolin", "rebuilt"):
        single = tmp_path / f"{name}_single.pdb"
        status, _, _ = run("minimize", inputs / f"{name}.pdb", "-o", single, "--quiet", *options)
        assert status == 0
        assert outputs[1][name] == outputs[2][name] == atom_records(single), name


def atom_records(path):
    """The ATOM/HETATM lines of a written PDB file (its REMARK carries the date)."""
    return [line for line in open(path) if line.startswith(("ATOM", "HETATM"))]
