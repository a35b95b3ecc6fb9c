"""Config loading: shipped configs validate, bad keys and values are named in the error."""
import os

import pytest

from augcore.train import ConfigError, TrainConfig, config_from_dict, load_config

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")
SHIPPED = ["digits_demo", "cifar10_resnet20_coreset", "caltech256_resnet18", "tinyimagenet_resnet50",
           "cifar10_preact18_sam", "cifar10_preact18_mixup_refine"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load(name):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.yaml"))
    assert isinstance(cfg, TrainConfig)


def test_defaults_are_valid():
    assert config_from_dict({}).augment.mode == "coreset"


@pytest.mark.parametrize("raw, message", [
    ({"optim": {"learning_rate": 0.1}}, r"optim\.learning_rate"),
    ({"optimizer": {"lr": 0.1}}, r"unknown config section.*optimizer"),
    ({"optim": {"lr": "fast"}}, r"optim\.lr: expected a number"),
    ({"optim": {"batch_size": 12.5}}, r"optim\.batch_size: expected an integer"),
    ({"optim": {"nesterov": "yes"}}, r"optim\.nesterov: expected true/false"),
    ({"augment": {"mode": "everything"}}, r"augment\.mode: must be one of"),
    ({"augment": {"fraction": 0.0}}, r"augment\.fraction"),
    ({"augment": {"mode": "max_loss_batch", "train_on": "selection"}}, r"augment\.train_on"),
    ({"schedule": {"epochs": 10, "milestones": [12]}}, r"schedule\.milestones"),
    ({"schedule": {"milestones": "100"}}, r"schedule\.milestones: expected a list"),
    ({"refinement": {"enabled": True, "mode": "last", "epochs": 300}, "schedule": {"epochs": 200}},
     r"refinement\.epochs"),
    ({"run": {"amp": "fp8"}}, r"run\.amp"),
    ({"optim": {"momentum": 0.0, "nesterov": True}}, r"optim\.nesterov"),
    ({"augment": "coreset"}, r"augment: expected a mapping"),
])
def test_bad_configs_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw)


def test_overrides_parse_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim: {lr: 0.1}\nschedule: {epochs: 10}\n")
    cfg = load_config(path, ["optim.lr=0.05", "schedule.milestones=[3, 6]", "refinement.enabled=true",
                             "data.root=null", "augment.selector={method: lazy}"])
    assert cfg.optim.lr == 0.05 and cfg.schedule.milestones == [3, 6] and cfg.refinement.enabled
    assert cfg.data.root is None and cfg.augment.selector == {"method": "lazy"} and cfg.schedule.epochs == 10
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load_config(path, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, ["optim.lr"])
    with pytest.raises(ConfigError, match="the key must be dotted"):
        load_config(path, ["lr=0.1"])


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(listing)
