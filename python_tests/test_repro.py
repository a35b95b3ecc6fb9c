"""`augcore repro` as a table of protocols: every preset is a valid config, every protocol runs
at CPU scale, gain shares follow their definition, --set reaches every run."""
import json

import pytest

from augcore.cli import main
from augcore.config import ConfigError
from augcore.train.config import config_from_dict
from augcore.train.protocols import PROTOCOLS, cell_key, merge_sections
from augcore.train.repro import ALIASES, ReproSettings, _runs, run_config, run_repro, summarize


def test_list_shows_every_protocol_with_its_source(capsys):
    assert main(["repro", "--list"]) == 0
    out = capsys.readouterr().out
    for spec in PROTOCOLS.values():
        assert spec.name in out and spec.source in out
    for alias in ALIASES:
        assert alias in out


@pytest.mark.parametrize("name", list(PROTOCOLS))
@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_every_run_of_every_preset_is_a_valid_config(name, preset):
    settings = ReproSettings(protocol=name, preset=preset, seeds=1).check()
    runs = _runs(settings)
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
    assert gain["per_seed"] == [2.0, 3.0] and gain["seeds_coreset_ahead"] == 2


def test_set_reaches_every_run_and_grid_keys_are_refused():
    settings = ReproSettings(protocol="table1", overrides=["optim.weight_decay=0.0", "schedule.gamma=0.5"]).check()
    for run in _runs(settings):
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


@pytest.mark.parametrize("name", list(PROTOCOLS))
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
