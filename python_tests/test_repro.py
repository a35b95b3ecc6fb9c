"""`augcore repro` as a table of protocols: every preset is a valid config, every protocol runs
at CPU scale with the paper's numbers beside the measured ones, gain shares and paired differences
follow their definitions, --set reaches every run of every runner, bad input exits 2 in one line."""
import json

import pytest
import yaml

from augcore.apps.cli import main
from augcore.config import ConfigError
from augcore.train.config import config_from_dict
from augcore.apps.protocols import PROTOCOLS, cell_key, merge_sections
from augcore.apps.repro import (ALIASES, ReproSettings, format_summary, planned_runs, refine_config, run_config,
                                 run_repro, summarize)

BY_RUNNER = {runner: [name for name, spec in PROTOCOLS.items() if spec.runner == runner]
             for runner in ("train", "refine", "generate", "labelled")}


def test_list_shows_every_protocol_with_its_source(capsys):
    assert main(["repro", "--list"]) == 0
    out = capsys.readouterr().out
    for spec in PROTOCOLS.values():
        assert spec.name in out and spec.source in out
    for alias in ALIASES:
        assert alias in out


@pytest.mark.parametrize("name", BY_RUNNER["train"])
@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_every_run_of_every_preset_is_a_valid_config(name, preset):
    settings = ReproSettings(protocol=name, preset=preset, seeds=1).check()
    runs = planned_runs(settings)
    assert runs
    for variant, method, budget, seed in runs:
        config = config_from_dict(run_config(settings, method, budget, seed, variant))
        assert config.augment.mode == method and config.augment.fraction == budget
        assert config.augment.train_on == settings.spec.train_on
        assert config.augment.reselect_every == settings.spec.reselect_every_for(preset)
        if preset == "cpu":
            assert config.data.name == "digits"
    if preset == "paper":   # the paper preset is the paper's data set, not the embedded digits
        assert config.data.name != "digits"


def test_paper_numbers_are_attached_to_their_cells():
    t1 = PROTOCOLS["coreset-t1-c10-r20"]
    assert t1.paper_value("", "coreset", 0.005) == 63.9 and t1.paper_value("", "random", 0.001) == 33.5
    t2 = PROTOCOLS["coreset-t2-caltech"]
    assert t2.paper_value("augmix", "coreset", 0.4) == 64.91
    t4 = PROTOCOLS["coreset-t4-svhn"]
    assert t4.paper_value("", "none", 0.3) == 95.68 and t4.paper_value("", "full", 0.3) == 97.07
    assert t4.paper_value("", "coreset", 0.3) == 0.800
    assert t4.paper_value("", "coreset", 0.2) is None   # a budget the paper does not report


def test_gain_share_and_paired_gain_follow_their_definitions():
    settings = ReproSettings(protocol="coreset-t4-c10", budgets=(0.3,), seeds=2).check()
    top1 = {("none", 0): 80.0, ("none", 1): 82.0, ("full", 0): 90.0, ("full", 1): 92.0,
            ("random", 0): 84.0, ("random", 1): 85.0, ("coreset", 0): 86.0, ("coreset", 1): 88.0}
    rows = [{"variant": "", "method": m, "budget": 0.3, "seed": s, "last_top1": v, "selection_time": 0.0,
             "train_time": 1.0} for (m, s), v in top1.items()]
    summary = summarize(rows, settings)
    cells = summary["cells"]
    # (mean top-1 - mean weak-only) / (mean full - mean weak-only), computed by hand
    assert cells["coreset@0.3"]["gain_share"] == pytest.approx((87.0 - 81.0) / (91.0 - 81.0))
    assert cells["random@0.3"]["gain_share"] == pytest.approx((84.5 - 81.0) / (91.0 - 81.0))
    assert cells["coreset@0.3"]["paper"] == 0.750 and cells["none"]["paper"] == 89.46
    gain = summary["coreset_minus_random"]["0.3"]
    assert gain["per_seed"] == [2.0, 3.0] and gain["seeds_ahead"] == 2


def test_set_reaches_every_run_and_grid_keys_are_refused():
    settings = ReproSettings(protocol="table1", overrides=["optim.weight_decay=0.0", "schedule.gamma=0.5"]).check()
    for run in planned_runs(settings):
        raw = run_config(settings, run[1], run[2], run[3], run[0])
        assert raw["optim"]["weight_decay"] == 0.0 and raw["schedule"]["gamma"] == 0.5
    with pytest.raises(ConfigError, match="augment.fraction"):
        ReproSettings(protocol="table1", overrides=["augment.fraction=0.5"]).check()
    with pytest.raises(ConfigError, match="unknown protocol 'table9'"):
        ReproSettings(protocol="table9").check()


def test_cli_bad_protocol_and_bad_set_exit_2_with_one_line(capsys):
    assert main(["repro", "--protocol", "table1", "--set", "run.seed=3", "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.seed" in err[0]


def test_merge_sections_is_deep_and_copies():
    base = {"optim": {"lr": 0.1, "momentum": 0.9}, "schedule": {"milestones": [1, 2]}}
    merged = merge_sections(base, {"optim": {"lr": 0.05}})
    assert merged == {"optim": {"lr": 0.05, "momentum": 0.9}, "schedule": {"milestones": [1, 2]}}
    merged["schedule"]["milestones"].append(3)
    assert base["schedule"]["milestones"] == [1, 2]
    assert cell_key("augmix", "coreset", 0.3) == "augmix/coreset@0.3" and cell_key("", "none", None) == "none"


@pytest.mark.parametrize("name", BY_RUNNER["train"])
def test_every_protocol_runs_at_cpu_scale(name, tmp_path):
    """One seed, one epoch, the protocol's first CPU budget and variant: the whole grid of methods."""
    spec = PROTOCOLS[name]
    settings = ReproSettings(protocol=name, seeds=1, epochs=1, budgets=spec.budgets_for("cpu")[:1],
                             variants=list(spec.variants)[:1], out=str(tmp_path), progress=False, keep_runs=False,
                             overrides=["data.num_workers=0"])
    summary = run_repro(settings, echo=lambda text: None)
    assert {c["method"] for c in summary["cells"].values()} == set(spec.methods)
    assert all(0.0 <= c["top1_mean"] <= 100.0 for c in summary["cells"].values())
    saved = json.loads((tmp_path / f"{name}_summary.json").read_text())
    assert saved["protocol"] == name and saved["cells"].keys() == summary["cells"].keys()


# ---------------------------------------------------------------------------- the refinement paper's Table 1
@pytest.mark.parametrize("name", BY_RUNNER["refine"])
@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_every_refinement_run_is_a_valid_config_with_its_variant(name, preset):
    settings = ReproSettings(protocol=name, preset=preset, seeds=1).check()
    spec = settings.spec
    assert [run.variant for run in planned_runs(settings)] == list(spec.variants)
    for run in planned_runs(settings):
        config = config_from_dict(refine_config(settings, run.variant, 0))
        assert config.refinement.enabled and config.run.seed == 0
        variant = spec.variant_config(run.variant, preset)["augment"]
        assert config.augment.mode == variant["mode"] and config.augment.batch_aug == variant.get("batch_aug", "none")
        if preset == "paper":
            assert config.data.name in ("cifar10", "cifar100") and config.schedule.epochs in (400, 1800)


def test_refinement_paper_numbers_are_table_1s():
    # read off the paper's Table 1: (augmentation, w/ refinement)
    assert PROTOCOLS["refine-t1-preact18-c100"].paper_value("mixup", "refined", None) == 80.8
    assert PROTOCOLS["refine-t1-preact18-c100"].paper_value("mixup", "augment", None) == 78.8
    assert PROTOCOLS["refine-t1-wrn-c10"].paper_value("autoaugment", "refined", None) == 97.5
    assert PROTOCOLS["refine-t1-shake-c100"].paper_value("cutmix", "augment", None) == 84.5
    assert "manifold_mixup" not in PROTOCOLS["refine-t1-shake-c100"].variants   # no Shake-Shake row
    # '-' in the paper, or a setting augcore's refinement does not run (no crop/flip at all)
    assert PROTOCOLS["refine-t1-wrn-c100"].paper_value("moderate", "refined", None) is None
    assert PROTOCOLS["refine-t1-preact18-c10"].paper_value("moderate", "refined", None) is None
    wrn = PROTOCOLS["refine-t1-wrn-c10"]
    assert wrn.variant_config("autoaugment", "paper")["model"]["dropout"] == 0.3
    assert "model" not in wrn.variant_config("autoaugment", "cpu")


@pytest.mark.parametrize("name", BY_RUNNER["refine"])
def test_every_refinement_protocol_runs_at_cpu_scale_reading_both_accuracies_from_its_log(name, tmp_path):
    """One seed, one augmentation epoch and one refinement epoch, Mixup (every Table 1 model has it)."""
    settings = ReproSettings(protocol=name, variants=["mixup"], seeds=1, epochs=1, out=str(tmp_path), progress=False,
                             overrides=["data.num_workers=0", "refinement.epochs=1"])
    summary = run_repro(settings, echo=lambda text: None)
    log = [json.loads(line) for line in (tmp_path / f"{name}_mixup_seed0" / "metrics.jsonl").read_text().splitlines()]
    assert [row["phase"] for row in log] == ["augment", "refine"]
    cells = summary["cells"]
    assert cells["mixup/augment"]["top1"] == [log[0]["test_top1"]]
    assert cells["mixup/refined"]["top1"] == [log[1]["test_top1"]]
    spec = PROTOCOLS[name]
    for method in ("augment", "refined"):
        assert cells[f"mixup/{method}"]["paper"] == spec.paper[f"mixup/{method}"]
    assert summary["refined_minus_augment"]["mixup"]["per_seed"] == [log[1]["test_top1"] - log[0]["test_top1"]]
    text = format_summary(summary, settings)
    assert f"{spec.paper['mixup/refined']:.2f}" in text and "refined - augment mixup" in text


# ---------------------------------------------------------------------------- the targeted-synthetic paper
def test_synthetic_protocols_carry_table_5_and_say_figure_only():
    t5 = PROTOCOLS["synthetic-t5-c10"]
    assert [t5.paper_value("sgd", "upsample", k) for k in (2, 3, 4, 5)] == [4.79, 5.01, 5.04, 4.98]
    assert [t5.paper_value("sgd", "synthetic", k) for k in (2, 3, 4, 5)] == [4.57, 4.52, 4.45, 4.42]
    assert PROTOCOLS["synthetic-t5-tinyimagenet"].paper_value("sgd", "synthetic", 4) == 30.64
    fig2 = PROTOCOLS["synthetic-fig2-c100"]
    assert fig2.paper_in_figure and fig2.metric == "error"
    assert fig2.paper == {"sgd/synthetic@5": 20.00}   # Table 5's; every other cell is figure only
    assert fig2.levels_for("synthetic", "paper") == (5,) and fig2.levels_for("upsample", "paper") == (2,)
    assert PROTOCOLS["synthetic-fig2-tinyimagenet"].levels_for("synthetic", "cpu") == (4,)


@pytest.mark.parametrize("name", BY_RUNNER["generate"])
def test_synthetic_presets_are_valid_pipeline_configs(name):
    from augcore.generate.pipeline import pipeline_config
    from augcore.apps.repro_generate import copy_steps, pipeline_raw

    with pytest.raises(ConfigError, match="generate.model"):   # the paper's GLIDE is the user's to supply
        ReproSettings(protocol=name, preset="paper").check()
    settings = ReproSettings(protocol=name, preset="paper", overrides=["generate.model=/models/glide"]).check()
    config = pipeline_config(pipeline_raw(settings))
    assert config.train["model"]["name"] == "preact_resnet18" and config.train["schedule"]["epochs"] == 200
    assert config.train["optim"]["weight_decay"] == 5e-4 and config.generate.total_steps == 100
    assert copy_steps(settings, 5, 100) == (40, 50, 70, 80) and copy_steps(settings, 2, 100) == (50,)
    assert copy_steps(settings, 4, 100) == (50, 70, 80)
    cpu = ReproSettings(protocol=name).check()
    assert pipeline_config(pipeline_raw(cpu)).train["data"]["name"] == "digits"
    assert copy_steps(cpu, 5, 10) == (4, 5, 7, 8)


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory):
    """One output folder for the generate protocols: they share one preparation (separate, select, generate)."""
    return tmp_path_factory.mktemp("synthetic")


# the smallest settings: one epoch, 5% random selection (so generation is short), SGD, the first k
_SYN_SMOKE = ["select.method=random", "select.fraction=0.05", "train.data.num_workers=0"]


@pytest.mark.parametrize("name", BY_RUNNER["generate"])
def test_every_synthetic_protocol_runs_at_cpu_scale(name, shared_out):
    spec = PROTOCOLS[name]
    budgets = None if "fig2" in name else [2]
    settings = ReproSettings(protocol=name, seeds=1, epochs=1, variants=["sgd"], budgets=budgets,
                             out=str(shared_out), progress=False, overrides=_SYN_SMOKE)
    summary = run_repro(settings, echo=lambda text: None)
    cells = summary["cells"]
    assert {c["method"] for c in cells.values()} == set(spec.methods)
    for key, cell in cells.items():
        assert cell["paper"] == spec.paper.get(key) and cell["error_mean"] == pytest.approx(100 - cell["top1_mean"])
    text = format_summary(summary, settings)
    assert "test error (%)" in text and "noise" in text
    for key, cell in cells.items():   # the paper's number beside ours, or "figure only"
        line = next(line for line in text.splitlines() if line.startswith(f"sgd       {cell['method']} "))
        assert f"{cell['error_mean']:.2f}" in line
        assert (f"{cell['paper']:.2f}" if cell["paper"] is not None else "figure only") in line
    if name == "synthetic-fig2-c10":
        assert "4.79" in text and "4.42" in text and cells["sgd/none"]["paper"] is None
    saved = json.loads((shared_out / f"{name}_summary.json").read_text())
    assert saved["cells"].keys() == cells.keys()


def test_synthetic_arms_get_their_optimiser_seed_and_copies(shared_out):
    """SAM's rho, the seed and k's steps reach the retrain (its config.yaml and training_data.json)."""
    settings = ReproSettings(protocol="synthetic-fig2-c10", seeds=1, epochs=1, variants=["sam"],
                             methods=["synthetic"], out=str(shared_out), progress=False, overrides=_SYN_SMOKE)
    run_repro(settings, echo=lambda text: None)
    prepared = next(p for p in shared_out.iterdir() if p.name.startswith("targeted_synthetic_"))
    arm = prepared / "sam_synthetic_k5_seed0"
    config = yaml.safe_load((arm / "config.yaml").read_text())
    assert config["optim"]["sam_rho"] == 0.1 and config["run"]["seed"] == 0 and config["schedule"]["epochs"] == 1
    facts = json.loads((arm / "training_data.json").read_text())
    assert facts["k"] == 5 and facts["steps"] == [4, 5, 7, 8] and facts["method"] == "synthetic"


# ---------------------------------------------------------------------------- the influence paper
def test_influence_protocols_hold_the_papers_tables():
    from augcore.apps.labelled_fraction import PAPER_TABLES, UNVERIFIED

    for name, dataset in (("influence-t1-mnist", "mnist"), ("influence-t2-cifar10", "cifar10")):
        spec = PROTOCOLS[name]
        for fraction, row in PAPER_TABLES[dataset].items():
            for method, value in row.items():
                key = cell_key("", method, fraction)
                assert (spec.paper if method in spec.methods else spec.paper_other)[key] == value
                assert (key in spec.paper_unverified) == ((dataset, fraction, method) in UNVERIFIED)


@pytest.mark.parametrize("name", BY_RUNNER["labelled"])
def test_labelled_presets_and_set(name):
    from augcore.apps.repro_labelled import labelled_settings, training_config

    paper = labelled_settings(ReproSettings(protocol=name, preset="paper").check())
    assert (paper.dataset, paper.model) == (("mnist", "allconv") if "mnist" in name else ("cifar10", "resnet56"))
    assert paper.fractions == PROTOCOLS[name].budgets
    settings = ReproSettings(protocol=name, overrides=["labelled.generator_steps=7", "optim.weight_decay=0.0"])
    chosen = labelled_settings(settings.check())
    assert chosen.dataset == "digits" and chosen.generator_steps == 7
    run = planned_runs(settings)[0]
    assert config_from_dict(training_config(settings, chosen, run)).optim.weight_decay == 0.0
    # a changed setting gets its own folder (its own G)
    assert chosen.out != labelled_settings(ReproSettings(protocol=name).check()).out


@pytest.mark.parametrize("name", BY_RUNNER["labelled"])
def test_every_labelled_protocol_runs_at_cpu_scale(name, tmp_path):
    spec = PROTOCOLS[name]
    settings = ReproSettings(protocol=name, seeds=1, epochs=1, budgets=[0.1], out=str(tmp_path), progress=False,
                             keep_runs=False,
                             overrides=["labelled.generator_steps=4", "labelled.generator_batch_size=32",
                                        "labelled.generator_critic_steps=1", "data.num_workers=0"])
    summary = run_repro(settings, echo=lambda text: None)
    cells = summary["cells"]
    assert set(cells) == {cell_key("", m, 0.1) for m in spec.methods}
    for key, cell in cells.items():
        assert cell["paper"] == spec.paper[key]
    text = format_summary(summary, settings)
    assert f"{spec.paper['proposed@0.1']:.2f}" in text and "ratner_mf" in text


# ---------------------------------------------------------------------------- --set and bad input, every runner
@pytest.mark.parametrize("argv, named", [
    (["--protocol", "refine-t1-wrn-c10", "--set", "refinement.enabled=false"], "refinement.enabled"),
    (["--protocol", "refine-t1-wrn-c10", "--set", "refinement.epochz=3"], "refinement.epochz"),
    (["--protocol", "refine-t1-wrn-c10", "--budgets", "0.5"], "budgets"),
    (["--protocol", "synthetic-fig2-c10", "--set", "retrain.k=3"], "retrain.k"),
    (["--protocol", "synthetic-fig2-c10", "--set", "train.optim.lrr=0.1"], "optim.lrr"),
    (["--protocol", "synthetic-fig2-c10", "--set", "separate.epochz=1"], "separate.epochz"),
    (["--protocol", "synthetic-t5-c10", "--budgets", "2.5"], "budgets"),
    (["--protocol", "synthetic-t5-c10", "--budgets", "7"], "k = 7"),
    (["--protocol", "synthetic-fig2-c10", "--strong", "cutout"], "strong"),
    (["--protocol", "influence-t1-mnist", "--set", "labelled.nope=1"], "labelled.nope"),
    (["--protocol", "influence-t1-mnist", "--set", "optim.wd=0"], "optim.wd"),
    (["--protocol", "influence-t1-mnist", "--set", "labelled.seeds=3"], "labelled.seeds"),
    (["--protocol", "coreset-t4-c10", "--set", "optimm.lr=0.1"], "optimm"),
])
def test_cli_bad_input_for_each_runner_exits_2_with_one_line_before_running(argv, named, capsys, tmp_path):
    assert main(["repro", *argv, "--seeds", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and err[0].startswith("augcore repro: error:")
    assert not list(tmp_path.iterdir())   # refused before any run


def test_cli_unknown_protocol_exits_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["repro", "--protocol", "table9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "table9" in err[0]


def test_set_reaches_the_refinement_and_pipeline_configs():
    from augcore.apps.repro_generate import pipeline_raw

    refine = ReproSettings(protocol="refine-t1-shake-c100", overrides=["refinement.epochs=3"]).check()
    assert refine_config(refine, "mixup", 0)["refinement"]["epochs"] == 3
    synthetic = ReproSettings(protocol="synthetic-t5-c100", epochs=2,
                              overrides=["train.optim.weight_decay=0.0", "select.restarts=1"]).check()
    raw = pipeline_raw(synthetic)
    assert raw["train"]["optim"]["weight_decay"] == 0.0 and raw["select"]["restarts"] == 1
    assert raw["train"]["schedule"]["epochs"] == 2 and raw["separate"]["epoch"] == 1
    # the preparation folder follows the shared config, not the arms (retrain) or the progress bar
    assert pipeline_raw(synthetic)["out"] == raw["out"]
    assert raw["out"] != pipeline_raw(ReproSettings(protocol="synthetic-t5-c100"))["out"]
