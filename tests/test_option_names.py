"""Option names that say what they set, their former names (a FutureWarning each, for one release), and the
RuntimeWarning for an accepted option that changes nothing in the run at hand."""
import contextlib
import io
import json
import os
import warnings

import pytest

import openmm_reparam
from openmm_reparam import MinimizerOptions, minimize
from openmm_reparam.run.registry import options_used
from openmm_reparam.run.renames import OPTION_RENAMES

from conftest import DATA, energy_of, load_peptide, make_context, perturbed


@pytest.fixture(scope="module")
def plw():
    _, system, positions = load_peptide("1plw")
    return system, perturbed(positions, 0.02, seed=3)


def _run(plw, **kwargs):
    """minimize on a fresh Context, with every warning recorded: (result, [(category, message)], start energy)."""
    system, start = plw
    context = make_context(system, start)
    before = energy_of(context)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = minimize(context, **kwargs)
    return result, [(w.category, str(w.message)) for w in caught], before


def _about(caught, category, text):
    return [message for kind, message in caught if kind is category and text in message]


def test_adam_takes_adam_names_and_its_former_fine_names_with_a_warning(plw):
    result, caught, before = _run(plw, method="adam", adam_steps=15, adam_patience=1000, polish=False)
    assert result.stage("adam").iterations == 15 and result.final_energy < before
    assert _about(caught, FutureWarning, "deprecated") == []
    former, caught, _ = _run(plw, method="adam", fine_steps=15, fine_patience=1000, polish=False)
    assert _about(caught, FutureWarning, "deprecated") == ["option 'fine_steps' is deprecated, use 'adam_steps'",
                                                           "option 'fine_patience' is deprecated, use 'adam_patience'"]
    assert former.stage("adam").iterations == 15 and former.final_energy == pytest.approx(result.final_energy)
    assert former.options["adam_steps"] == 15 and not {"fine_steps", "fine_patience"} & set(former.options)


def test_fine_names_stay_current_for_the_fine_stage_of_gnn_and_linear():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        options = MinimizerOptions.from_kwargs(method="linear", fine_steps=7, fine_lr=2e-3)
    assert (options.coordinates.fine_steps, options.fine_lr) == (7, 2e-3)
    with pytest.raises(TypeError, match="option 'adam_steps' is not used by method 'linear'; it is an option of "
                                        "methods auto, adam"):
        MinimizerOptions.from_kwargs(method="linear", adam_steps=7)


def test_a_former_name_and_its_current_one_together_are_refused():
    with pytest.raises(TypeError, match="option 'fine_lr' is the former name of 'adam_lr': give only 'adam_lr'"):
        MinimizerOptions.from_kwargs(method="adam", fine_lr=1e-3, adam_lr=2e-3)


@pytest.mark.parametrize("old,new", sorted(OPTION_RENAMES.items()))
def test_every_former_name_is_translated_with_one_future_warning(old, new):
    method = "precon" if "declash" in old else "adam"
    value = "openmm" if old.endswith("_by") else 3
    with pytest.warns(FutureWarning, match=f"option '{old}' is deprecated, use '{new}'") as caught:
        options = MinimizerOptions.from_kwargs(method=method, **{old: value})
    assert len(caught) == 1 and getattr(options, new) == value and options.to_dict()[new] == value
    assert old not in options.to_dict()


def test_precon_matrix_measured_is_the_finite_difference_k(plw):
    result, caught, before = _run(plw, method="precon", precon_matrix="measured", precon_steps=30)
    assert _about(caught, FutureWarning, "precon_matrix") == [
        "precon_matrix='measured' is deprecated, use precon_matrix='finite-difference'"]
    assert result.options["precon_matrix"] == "finite-difference" and result.final_energy < before
    assert result.stage("precon_setup").energy_evaluations > 2  # finite differences of forces, not bond terms
    bonded, _, _ = _run(plw, method="precon", precon_steps=30)
    assert bonded.stage("precon_setup").energy_evaluations <= 2  # the sine test's μ only


def test_the_polish_projected_lbfgs_and_the_declash_by_their_names(plw):
    result, caught, before = _run(plw, method="precon", declash_steps=4, declash_by="projected", precon_steps=5,
                                  polish_projected_steps=3, polish_rounds=0, polish_iterations=1)
    assert result.stage("declash").iterations == 4 and result.final_energy < before
    assert result.options["polish_projected_steps"] == 3 and _about(caught, FutureWarning, "deprecated") == []
    former, caught, _ = _run(plw, method="precon", precon_declash=4, precon_declash_by="projected",
                             precon_steps=5, finish_steps=3, polish_rounds=0, polish_iterations=1)
    assert len(_about(caught, FutureWarning, "deprecated")) == 3
    assert former.stage("declash").iterations == 4 and former.final_energy == pytest.approx(result.final_energy)


def test_options_used_translates_a_former_name_for_the_method_it_now_has_a_name_for():
    shared = {"fine_steps": 9, "steps": 5, "precon_declash": 2}
    with pytest.warns(FutureWarning):
        assert options_used("adam", shared) == {"adam_steps": 9}
    assert options_used("gnn", shared) == {"fine_steps": 9, "steps": 5}
    with pytest.warns(FutureWarning, match="'precon_declash' is deprecated, use 'declash_steps'"):
        assert options_used("precon", shared) == {"declash_steps": 2}


def test_the_command_line_takes_both_names_and_reports_the_current_one(tmp_path):
    from openmm_reparam.app.cli import main
    report = tmp_path / "report.json"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(["minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", str(tmp_path / "out.pdb"),
                       "--method", "adam", "--platform", "CPU", "--fine-steps", "20", "--option", "fine_lr=2e-3",
                       "--report", str(report)])
    assert status == 0, err.getvalue()
    assert err.getvalue().count("openmm-reparam: warning: option 'fine_lr' is deprecated, use 'adam_lr'\n") == 1
    assert "fine_steps" not in err.getvalue()  # --fine-steps is method adam's adam_steps, not a former name
    data = json.loads(report.read_text())
    options = data["minimizer_options"]
    assert options["adam_lr"] == 2e-3 and options["adam_steps"] == 20 and "fine_lr" not in options
    assert data["energy_after"]["total"] < data["energy_before"]["total"]


def test_the_energy_bridge_keeps_its_former_name_for_a_while(plw):
    system, start = plw
    with pytest.warns(DeprecationWarning, match="ContextEnergy is deprecated, use EnergyBridge"):
        former = openmm_reparam.ContextEnergy
    assert former is openmm_reparam.EnergyBridge
    with pytest.warns(DeprecationWarning):
        from openmm_reparam.core.bridge import ContextEnergy
    context = make_context(system, start)
    assert ContextEnergy(context).energy() == pytest.approx(energy_of(context), rel=1e-9)
    with pytest.raises(AttributeError):
        openmm_reparam.core.bridge.NoSuchName


# ---- options without effect --------------------------------------------------------------------------------
def test_auto_warns_once_for_each_option_of_a_candidate_it_did_not_choose(plw):
    result, caught, before = _run(plw, method="auto", adam_steps=10, precon_steps=40)
    assert result.method == "precon" and result.final_energy < before
    assert _about(caught, RuntimeWarning, "no effect") == [
        "option 'adam_steps' has no effect in this run: auto chose method 'precon' for this System, which does "
        "not use it"]
    assert "adam_steps" not in result.options and result.options["precon_steps"] == 40


def test_the_polish_options_without_a_polish_and_never_worse_on_lbfgs_warn(plw):
    result, caught, _ = _run(plw, method="adam", adam_steps=10, polish=False, polish_rounds=2,
                             polish_projected_steps=5)
    assert result.stage("polish") is None
    assert _about(caught, RuntimeWarning, "no effect") == [
        "option 'polish_projected_steps' has no effect in this run: the polish is off (polish=False)",
        "option 'polish_rounds' has no effect in this run: the polish is off (polish=False)"]
    result, caught, _ = _run(plw, method="lbfgs", never_worse=True)
    assert result.baseline_energy is None and [s.name for s in result.stages] == ["lbfgs"]
    assert _about(caught, RuntimeWarning, "no effect") == [
        "option 'never_worse' has no effect in this run: method 'lbfgs' runs without the polish and the "
        "never_worse baseline"]


def test_precon_options_that_its_configuration_makes_moot_warn(plw):
    result, caught, _ = _run(plw, method="precon", declash_steps=0, declash_by="openmm", precon_cutoff=0.3,
                             precon_steps=20)
    assert result.stage("declash") is None
    assert _about(caught, RuntimeWarning, "no effect") == [
        "option 'declash_by' has no effect in this run: the declash is off (declash_steps=0)",
        "option 'precon_cutoff' has no effect in this run: the bonded K couples the atoms of bond and angle terms; "
        "the cutoff sets the pairs of precon_matrix='finite-difference'"]
    _, caught, _ = _run(plw, method="precon", precon_matrix="finite-difference", precon_cutoff=0.3, precon_steps=5)
    assert _about(caught, RuntimeWarning, "no effect") == []


def test_adam_stage_and_reparametrized_options_that_change_nothing_warn(plw):
    _, caught, _ = _run(plw, method="adam", adam_steps=10, progress_fraction=0.5)
    assert _about(caught, RuntimeWarning, "no effect") == [
        "option 'progress_fraction' has no effect in this run: the progress rule needs both progress_window and "
        "progress_fraction > 0"]
    result, caught, before = _run(plw, method="linear", steps=10, fine_steps=10, n_modes=4, restart_noise=0.1,
                                  reparam_share=0.5, hidden=8, engine="python")
    assert result.final_energy < before
    assert _about(caught, RuntimeWarning, "no effect") == [
        "option 'hidden' has no effect in this run: the linear generator has no network layers and no fit "
        "(X = X0 + V z starts at the start)",
        "option 'reparam_share' has no effect in this run: there is no time_budget to share",
        "option 'restart_noise' has no effect in this run: there are no restarts (restarts=0)"]
    _, caught, _ = _run(plw, method="gnn", steps=5, fine_steps=5, n_modes=4, hidden=8, fit_steps=20, engine="python",
                        time_budget=60.0, reparam_share=0.5)
    assert _about(caught, RuntimeWarning, "no effect") == []


def test_a_shared_option_set_keeps_each_methods_current_name():
    """Scripts that pass one set to several methods (benchmarks) give gnn's ``fine_steps`` beside adam's
    ``adam_steps``: each method takes its own, and no former name is translated over a current one."""
    shared = {"fine_steps": 5, "adam_steps": 7, "never_worse": False}
    assert options_used("adam", shared) == {"adam_steps": 7, "never_worse": False}
    assert options_used("gnn", shared)["fine_steps"] == 5 and "adam_steps" not in options_used("gnn", shared)
    with pytest.warns(FutureWarning, match="option 'fine_steps' is deprecated, use 'adam_steps'"):
        assert options_used("adam", {"fine_steps": 5}) == {"adam_steps": 5}
