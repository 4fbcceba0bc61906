"""A generator of one's own: any torch.nn.Module reparametrizes the coordinates of the gnn/linear methods.

The network here is a small MLP over the slow modes, X = X0 + V · MLP(z), registered by name, passed as a
factory or as a ready module, and run on both engines: the compiled engine runs it as TorchScript (the same
steps as the Python engine), or its stage in Python with a warning saying why when TorchScript cannot compile it.
Its twin in tests/data/mode_mlp_generator.py is named by import path on the command line and in Dask batches.
"""
import contextlib
import io
import json
import os
import re
import shutil
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import openmm_reparam
from openmm_reparam import GeneratorInputs, minimize

from conftest import energy_of, load_peptide, make_context, perturbed, positions_of, solvated_enkephalin

TOLERANCE = 10.0
QUICK = dict(steps=80, fine_steps=80, n_modes=8)


class ModeMLP(nn.Module):
    """X = X0 + V · MLP(z): a latent vector z through two layers onto coefficients of the k slow modes V. The last
    layer starts at zero, so the network starts exactly at X0."""

    def __init__(self, modes: np.ndarray, x0: np.ndarray, width: int = 16, seed: int = 0):
        super().__init__()
        rng = torch.Generator().manual_seed(seed)
        self.register_buffer("modes", torch.as_tensor(modes, dtype=torch.float64))
        self.register_buffer("x0", torch.as_tensor(x0, dtype=torch.float64))
        self.z = nn.Parameter(torch.randn(width, generator=rng, dtype=torch.float64))
        self.hidden = nn.Linear(width, width, dtype=torch.float64)
        self.out = nn.Linear(width, 3 * modes.shape[1], dtype=torch.float64)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self) -> torch.Tensor:
        coefficients = self.out(torch.tanh(self.hidden(self.z))).view(-1, 3)
        return self.x0 + self.modes @ coefficients


class NumpyModeMLP(ModeMLP):
    """The same function through numpy, which TorchScript cannot compile (and autograd does not need here: the
    numpy term is a constant)."""

    def forward(self) -> torch.Tensor:
        return super().forward() + torch.from_numpy(np.zeros((1, 3)))


class Built:
    """A factory that remembers the networks it built (to look at their parameters after the run); the same
    inputs give the same network (nn.Linear draws its start from torch's global generator: seeded here)."""

    def __init__(self):
        self.networks = []

    def __call__(self, inputs: GeneratorInputs) -> nn.Module:
        with torch.random.fork_rng():
            torch.manual_seed(inputs.seed)
            network = ModeMLP(inputs.modes, inputs.positions, seed=inputs.seed)
        self.networks.append((network, [p.detach().clone() for p in network.parameters()]))
        return network


@pytest.fixture
def registered():
    factory = Built()
    openmm_reparam.register_generator("mode_mlp", factory)
    yield factory
    openmm_reparam.unregister_generator("mode_mlp")


@pytest.fixture(scope="module")
def chignolin():
    _, system, positions = load_peptide("5awl")
    return system, perturbed(positions, 0.01, seed=1)


def _changed(network: nn.Module, before) -> bool:
    return any(not torch.equal(p.detach(), b) for p, b in zip(network.parameters(), before))


def test_a_registered_generator_minimizes_on_each_engine(chignolin, registered, engine):
    system, start = chignolin
    context = make_context(system, start)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = minimize(context, TOLERANCE, method="gnn", generator="mode_mlp", engine=engine, **QUICK)
    reparam = result.stage("reparam")
    assert "mode_mlp" in openmm_reparam.generator_names()
    assert reparam.final_energy < reparam.initial_energy and result.final_energy < result.initial_energy
    assert result.converged and result.rms_force <= TOLERANCE
    assert result.generator == "mode_mlp" and reparam.generator == "mode_mlp"
    assert result.stage("fit").iterations == 0  # the network starts at the start: nothing to fit
    (network, before), = registered.networks
    assert _changed(network, before)  # the trained values came back into the user's module (from C++ too)
    # the compiled engine ran the network's TorchScript: every stage on the engine asked for, and no warning
    assert reparam.engine == engine and result.stage("fine").engine == engine and result.engine == engine
    assert not [w for w in caught if "runs on the Python engine" in str(w.message)]


def test_the_engines_take_the_same_first_steps_with_a_network_of_ones_own(chignolin):
    """The same network, the same fit and the same Adam on the same function: the compiled engine's reparam stage
    (the network's TorchScript in libtorch) follows the Python engine's (eager autograd) step for step. Both run
    the same float64 ops in the same order on the same Context (measured: the 20 energies and the trained values
    are identical to the bit); the tolerance leaves room only for a matrix product summed in another order (a
    BLAS with other threads), a relative 1e-16 per step that 20 normalized Adam steps keep far below 1e-9."""
    system, start = chignolin
    if not openmm_reparam.cpp_available():
        pytest.skip("the C++ plugin is not built")
    factory = Built()
    steps = {}
    for engine in ("python", "cpp"):
        result = minimize(make_context(system, start), TOLERANCE, method="gnn", generator=factory, engine=engine,
                          steps=20, fine_steps=0, n_modes=8)
        assert result.stage("reparam").engine == engine and result.stage("reparam").iterations == 20
        steps[engine] = [point.energy for point in result.history if point.stage == "reparam"]
    assert len(steps["cpp"]) == len(steps["python"]) == 20
    assert steps["cpp"][-1] < steps["cpp"][0] - 50.0  # the stage moved: the comparison is not of 20 starts
    np.testing.assert_allclose(steps["cpp"], steps["python"], rtol=1e-9)
    (python_network, _), (cpp_network, start_values) = factory.networks
    for trained_in_python, trained_in_cpp, before in zip(python_network.parameters(), cpp_network.parameters(),
                                                         start_values):
        np.testing.assert_allclose(trained_in_cpp.detach().numpy(), trained_in_python.detach().numpy(),
                                   rtol=1e-7, atol=1e-12)
        assert not torch.equal(trained_in_cpp.detach(), before)


def test_a_network_torchscript_cannot_compile_runs_its_stage_in_python_and_says_why(chignolin):
    system, start = chignolin
    if not openmm_reparam.cpp_available():
        pytest.skip("the C++ plugin is not built")
    def numpy_mlp(inputs: GeneratorInputs) -> nn.Module:
        return NumpyModeMLP(inputs.modes, inputs.positions)

    with pytest.warns(RuntimeWarning, match=r"generator 'numpy_mlp' \(.+\): stage 'reparam' runs on the Python "
                                            r"engine") as caught:
        result = minimize(make_context(system, start), TOLERANCE, method="gnn", engine="cpp", steps=20,
                          fine_steps=40, n_modes=8, generator=numpy_mlp)
    note, = [str(w.message) for w in caught if "runs on the Python engine" in str(w.message)]
    reason = re.search(r"'numpy_mlp' \((.+)\): stage", note).group(1)  # TorchScript's first line
    assert "\n" not in note and len(reason) > 10
    assert result.stage("reparam").engine == "python" and result.stage("fine").engine == "cpp"
    assert result.engine == "cpp+python" and result.final_energy < result.initial_energy


def test_a_ready_network_is_trained_in_place_and_a_factory_is_named(chignolin):
    system, start = chignolin
    context = make_context(system, start)
    directions = np.linalg.qr(np.random.default_rng(0).normal(size=(len(start), 8)))[0]  # any collective moves
    network = ModeMLP(directions, start, seed=3)
    before = [p.detach().clone() for p in network.parameters()]
    with pytest.warns(RuntimeWarning, match="option 'n_modes' has no effect in this run: generator 'ModeMLP' is a "
                                            "ready network: it needs no slow modes"):
        result = minimize(context, TOLERANCE, method="linear", generator=network, engine="python", **QUICK)
    assert _changed(network, before) and result.converged and result.generator == "ModeMLP"
    assert result.stage("slow_modes") is None  # a ready network needs none
    assert result.stage("reparam").final_energy < energy_of(make_context(system, start))

    def shifted(inputs: GeneratorInputs) -> nn.Module:  # starts 0.05 nm off: the fit brings it to the start
        return ModeMLP(inputs.modes, inputs.positions + 0.05)

    context = make_context(system, start)
    result = minimize(context, TOLERANCE, method="gnn", generator=shifted, engine="python", **QUICK)
    assert result.generator == "shifted" and result.stage("fit").iterations > 0
    assert result.stage("reparam").initial_energy == pytest.approx(energy_of(make_context(system, start)), rel=1e-9)
    assert result.converged


def test_a_ready_script_module_is_trained_in_the_compiled_engine(chignolin):
    system, start = chignolin
    if not openmm_reparam.cpp_available():
        pytest.skip("the C++ plugin is not built")
    directions = np.linalg.qr(np.random.default_rng(0).normal(size=(len(start), 8)))[0]
    network = torch.jit.script(ModeMLP(directions, start, seed=3))
    before = [p.detach().clone() for p in network.parameters()]
    result = minimize(make_context(system, start), TOLERANCE, method="linear", generator=network, engine="cpp",
                      **QUICK)
    assert result.stage("reparam").engine == "cpp"
    assert _changed(network, before) and result.converged


def test_bad_generators_are_refused_in_one_line_before_anything_moves(chignolin, registered):
    system, start = chignolin
    context = make_context(system, start)

    n = system.getNumParticles()
    short = ModeMLP(np.eye(n - 1, 4), start[:-1])  # one atom missing
    with pytest.raises(ValueError, match=rf"generator 'ModeMLP': forward\(\) returned shape \({n - 1}, 3\), "
                                         rf"expected \({n}, 3\)") as error:
        minimize(context, method="gnn", generator=short, engine="python")
    assert "\n" not in str(error.value)
    np.testing.assert_array_equal(positions_of(context), positions_of(make_context(system, start)))
    with pytest.raises(TypeError, match="generator must be a registered name, a factory or a torch.nn.Module, got int"):
        minimize(context, method="gnn", generator=42)
    with pytest.raises(ValueError, match=r"generator must be one of \('gnn', 'linear', 'mode_mlp'\) or an import path "
                                         r"package.module:Name, got 'nope'"):
        minimize(context, method="gnn", generator="nope")
    with pytest.raises(ValueError, match="restarts perturb the latent .* not of generator 'mode_mlp'"):
        minimize(context, method="gnn", generator="mode_mlp", restarts=2)
    with pytest.raises(TypeError, match="the factory must return a torch.nn.Module, got ndarray"):
        minimize(context, method="gnn", generator=lambda inputs: inputs.positions)
    with pytest.raises(ValueError, match="generator 'mode_mlp' is already registered"):
        openmm_reparam.register_generator("mode_mlp", registered)


def test_a_generator_of_the_solute_leaves_the_constrained_water_to_the_coordinates(registered, engine):
    system, start = solvated_enkephalin()
    context = make_context(system, start)
    result = minimize(context, TOLERANCE, method="gnn", generator="mode_mlp", engine=engine, steps=30,
                      fine_steps=60, n_modes=6)
    (network, before), = registered.networks
    assert network.x0.shape == (75, 3)  # the solute only: waters and ions move as plain coordinates
    assert _changed(network, before) and result.converged and result.generator == "mode_mlp"
    assert result.stage("reparam").final_energy < result.initial_energy
    assert result.stage("reparam").engine == engine  # compiled: the network's TorchScript beside the solvent


# ---- by import path: the command line and Dask batches ---------------------------------------------------------
DATA = os.path.join(os.path.dirname(__file__), "data")
BY_PATH = "mode_mlp_generator:ModeMLPGenerator"  # tests/data/mode_mlp_generator.py, a class that is its own factory


@pytest.fixture
def importable(monkeypatch):
    """tests/data importable, here and in the processes started from here (Dask's workers)."""
    monkeypatch.syspath_prepend(DATA)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([DATA, os.environ.get("PYTHONPATH", "")]))


def test_a_generator_by_import_path_minimizes_on_each_engine(chignolin, importable, engine):
    system, start = chignolin
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = minimize(make_context(system, start), TOLERANCE, method="gnn", generator=BY_PATH, engine=engine,
                          **QUICK)
    reparam = result.stage("reparam")
    assert reparam.final_energy < reparam.initial_energy and result.converged
    assert result.generator == BY_PATH and result.options["generator"] == BY_PATH
    assert result.stage("fit").iterations == 0  # the class starts at the start
    # resolved where the run is, then as any network: TorchScript on the compiled engine, no fallback
    assert reparam.engine == engine and result.stage("fine").engine == engine
    assert not [w for w in caught if "runs on the Python engine" in str(w.message)]


def _cli(*argv):
    from openmm_reparam.app.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def test_the_command_line_takes_a_generator_by_import_path(importable, tmp_path):
    out, report = tmp_path / "out.pdb", tmp_path / "report.json"
    status, _, err = _cli("minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", out, "--method", "linear",
                          "--platform", "CPU", "--option", "engine=python",
                          "--option", "generator=mode_mlp_generator:mode_mlp",
                          "--steps", 40, "--fine-steps", 40, "--option", "n_modes=6", "--report", report)
    assert status == 0, err
    data = json.loads(report.read_text())
    assert data["energy_after"]["total"] < data["energy_before"]["total"] and data["converged"]
    assert data["minimizer_options"]["generator"] == "mode_mlp_generator:mode_mlp"
    assert {s["name"] for s in data["stages"]} >= {"fit", "reparam", "fine"}
    for spec, message in (("no_such_module:Net", "cannot import module 'no_such_module'"),
                          ("mode_mlp_generator:Nope", "module 'mode_mlp_generator' has no 'Nope'"),
                          ("mode_mlp_generator:NOT_A_GENERATOR", "'NOT_A_GENERATOR' must be a factory or a "
                                                                 "torch.nn.Module class, got int")):
        status, _, err = _cli("minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", tmp_path / "bad.pdb",
                              "--method", "gnn", "--option", f"generator={spec}")
        assert status == 2 and err.count("\n") == 1
        assert err == f"openmm-reparam: error: bad minimizer option: generator {spec!r}: {message}" + \
            err[err.index(message) + len(message):]
        assert not (tmp_path / "bad.pdb").exists()


def widened(inputs: GeneratorInputs) -> nn.Module:
    """A factory of this file: it reaches the batch's workers by pickling."""
    return ModeMLP(inputs.modes, inputs.positions, width=8, seed=inputs.seed)


def test_minimize_many_runs_a_generator_by_import_path_a_pickled_factory_and_a_registered_name(
        importable, registered, tmp_path):
    distributed = pytest.importorskip("distributed")
    from openmm_reparam import minimize_many
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(os.path.join(DATA, "1PLW_model1.pdb"), inputs / "enkephalin.pdb")
    settings = dict(method="gnn", platform="CPU", solvent="none", engine="python", steps=40, fine_steps=40,
                    n_modes=6, never_worse=False, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"OPENMM_CPU_THREADS": "1", "OMP_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster) as client:
        for out, generator, label in ((tmp_path / "by_path", BY_PATH, BY_PATH),
                                      (tmp_path / "pickled", widened, "widened"),
                                      (tmp_path / "registered", "mode_mlp", "mode_mlp")):  # sent with each job
            row, = minimize_many([inputs / "enkephalin.pdb"], out, client=client, generator=generator, **settings)
            assert row["status"] == "ok", row["error"]
            assert row["energy_after"] < row["energy_before"]
            report = json.load(open(row["report"]))
            assert report["minimizer_options"]["generator"] == label
            assert report["stages"][[s["name"] for s in report["stages"]].index("reparam")]["iterations"] > 0
    assert "mode_mlp_generator" in sys.modules  # resolved here too: the options are checked before the batch
    assert registered.networks == []  # the registered factory ran on the worker, on its copy
