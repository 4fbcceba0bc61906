"""Seeded mutations of the shipped PDB and PDBx/mmCIF files through ``openmm-reparam minimize``
(:mod:`benchmarks.fuzz`; the benchmark runs thousands): every one ends in exit status 0 with a valid structure
written, or exit status 2 with one line on stderr; never a traceback, a crash or a hang."""
import os

import pytest

pytest.importorskip("pdbfixer")

from benchmarks import fuzz  # noqa: E402

CASES = int(os.environ.get("OPENMM_REPARAM_FUZZ_CASES", "300"))


def test_mutated_inputs_end_in_a_structure_or_one_line(tmp_path):
    outcomes = fuzz.run_cases(fuzz.make_cases(CASES, seed=0, directory=str(tmp_path)), timeout=180.0)
    verdicts = fuzz.summary(outcomes)["verdicts"]
    failures = [f"case {o.index} ({o.source}: {', '.join(o.mutations)}): {o.verdict}: {o.stderr[-400:]}"
                for o in outcomes if o.verdict not in ("ok", "refused")]
    assert not failures, f"{verdicts}\n" + "\n".join(failures)
    assert verdicts.get("ok", 0) > CASES // 10 and verdicts.get("refused", 0) > CASES // 10  # both paths taken


def test_the_mutations_are_seeded():
    import random
    text = open(fuzz.SOURCES[0]).read()
    first = fuzz.mutate(text, random.Random(5), pdb=True)
    assert fuzz.mutate(text, random.Random(5), pdb=True) == first and first[0] != text
