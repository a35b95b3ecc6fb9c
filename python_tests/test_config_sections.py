"""The training config's structure: each section validates its own keys, the rules that join sections
live in one function, and the augment section's typed parts read the flat keys users write."""
import dataclasses
import re
import typing

import pytest

from augcore.data.datasets import load_dataset
from augcore.data.transforms import STRONG_OPTION_KEYS, strong_transform_for
from augcore.train.config import (AUGMENT_PARTS, AugmentConfig, ConfigError, MixingSettings, PolicySettings,
                                  TrainConfig, TransformSettings, ViewSettings, config_from_dict, load_config)

# (section, its bad values, the exact message): one row per section and per part of augment
SECTION_ERRORS = [
    ("data", {"label_noise": 2.0}, "data.label_noise: must lie in [0, 1], got 2.0"),
    ("data", {"name": "mnist-ish"}, "data.name: must be one of"),
    ("model", {"weights_skip": ["fc"]}, "model.weights_skip: needs model.weights (a file to load)"),
    ("optim", {"lr": 0.0}, "optim.lr: must be > 0, got 0.0"),
    ("optim", {"name": "adam", "nesterov": True}, "optim.nesterov: applies to sgd only, got optim.name 'adam'"),
    ("schedule", {"epochs": 10, "milestones": [12]},
     "schedule.milestones: must be increasing epochs in (0, 10), got [12]"),
    ("refinement", {"lr": 0.1, "min_lr": 0.2}, "refinement.min_lr: must not exceed refinement.lr=0.1, got 0.2"),
    ("refinement", {"milestones": [5]}, "refinement.milestones: apply to refinement.schedule: multistep, "
                                        "got schedule 'constant'"),
    ("run", {"device": "tpu"}, "run.device: must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    ("augment", {"fraction": 0.0}, "augment.fraction: must lie in (0, 1], got 0.0"),                     # policy
    ("augment", {"mode": "fixed"}, "augment.selection_file: must be set exactly when augment.mode is 'fixed'"),
    ("augment", {"mode": "max_loss_batch", "train_on": "selection"},
     "augment.train_on: max_loss_batch augments inside each batch and trains on the full data; use train_on: full"),
    ("augment", {"policy_options": {"bogus": 1}}, "unknown key(s) ['augment.policy_options.bogus']"),
    ("augment", {"copies": 0}, "augment.copies: must be >= 1, got 0"),                                   # view
    ("augment", {"placement": "prepend"}, "augment.placement: must be one of ('append', 'inplace'), got 'prepend'"),
    ("augment", {"perturb_blur_kernel": 4}, "augment.perturb_blur_kernel: must be an odd number of pixels, got 4"),
    ("augment", {"wu2020_ops": 0}, "augment.wu2020_ops: must be >= 1, got 0"),                           # transforms
    ("augment", {"strong": "bogus"}, "augment.strong: "),
    ("augment", {"batch_aug_prob": 0.5},                                                                 # mixing
     "augment.batch_aug_prob: applies to a batch augmentation; set augment.batch_aug (mixup, cutmix, manifold_mixup)"),
    ("augment", {"manifold_mixup_layers": [1]},
     "augment.manifold_mixup_layers: applies to augment.batch_aug: manifold_mixup, got batch_aug 'none'"),
]
SECTION_CLASSES = typing.get_type_hints(TrainConfig)    # section name -> its dataclass, in order

# configs whose every section is valid on its own, with the exact message of the rule joining them
CROSS_SECTION_ERRORS = [
    ({"refinement": {"enabled": True, "mode": "last", "epochs": 300}, "schedule": {"epochs": 200}},
     "refinement.epochs: 'last' mode needs refinement.epochs < schedule.epochs (300 >= 200)"),
    ({"refinement": {"weaken_epochs": 200}},
     "refinement.weaken_epochs: must lie in [0, 200) (the epochs of strong augmentation before refinement), got 200"),
    ({"refinement": {"weaken_epochs": 5}, "augment": {"strong": "wu2020"}},
     "refinement.weaken_epochs: cannot weaken augment.strong: wu2020 (its copies are made by the policy, "
     "not the data loader)"),
    ({"refinement": {"weaken_epochs": 5}, "augment": {"mode": "influence", "policy_options": {"augmenter": "learned"}}},
     "refinement.weaken_epochs: cannot weaken the influence policy's learned augmentation "
     "(augment.policy_options.augmenter)"),
    ({"augment": {"strong": "wu2020", "mode": "influence", "policy_options": {"augmenter": "learned"}}},
     "augment.strong: wu2020 copies cannot be combined with the influence policy's learned augmentation "
     "(augment.policy_options.augmenter)"),
    ({"augment": {"stats": "in_epoch", "batch_aug": "mixup"}},     # policy x mixing
     "augment.stats: in_epoch statistics need every original, unmixed, in every epoch "
     "(train_on: full, placement: append, batch_aug: none)"),
    ({"augment": {"stats": "in_epoch", "placement": "inplace"}},   # policy x view
     "augment.stats: in_epoch statistics need every original, unmixed, in every epoch "
     "(train_on: full, placement: append, batch_aug: none)"),
]

# the augment keys a checkpoint stores, in order (config.to_dict()): the file format the parts must not change
AUGMENT_KEYS = ["mode", "strong", "batch_aug", "mix_alpha", "batch_aug_prob", "manifold_mixup_layers",
                "autoaugment_policy", "cutout_size", "augmix_severity", "augmix_width", "augmix_depth", "augmix_alpha",
                "augmix_all_ops", "perturb_brightness", "perturb_blur_kernel", "perturb_blur_sigma", "noise_sigma",
                "fraction", "reselect_every", "copies", "weighting", "placement", "train_on", "random_subset_fraction",
                "random_subset_redraw", "select_from", "stats", "candidates", "candidate_choice", "wu2020_ops",
                "selection_file", "policy_options"]


def _sections(raw):
    """The config's sections built from ``raw`` without validating."""
    return {name: cls(**raw.get(name, {})) for name, cls in SECTION_CLASSES.items()}


@pytest.mark.parametrize("section, values, message", SECTION_ERRORS)
def test_each_section_rejects_its_own_bad_values(section, values, message):
    built = _sections({section: values})[section]
    with pytest.raises(ConfigError, match=re.escape(message)) as alone:
        built.validate()
    with pytest.raises(ConfigError) as loaded:     # the loader reports the same message
        config_from_dict({section: values})
    assert str(loaded.value) == str(alone.value)


@pytest.mark.parametrize("raw, message", CROSS_SECTION_ERRORS)
def test_cross_section_rules_live_in_one_function(raw, message, monkeypatch):
    for section in _sections(raw).values():
        section.validate()            # no section alone objects
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw)
    assert str(caught.value) == message
    monkeypatch.setattr(TrainConfig, "_validate_across_sections", lambda self: None)
    config_from_dict(raw)             # without that one function, nothing else enforces the rule


def test_validate_runs_each_section_and_the_cross_rules_once(monkeypatch):
    calls = []
    for name, cls in SECTION_CLASSES.items():
        original = cls.validate
        monkeypatch.setattr(cls, "validate", lambda self, _o=original, _n=name: (calls.append(_n), _o(self))[1])
    original_cross = TrainConfig._validate_across_sections
    monkeypatch.setattr(TrainConfig, "_validate_across_sections",
                        lambda self: (calls.append("across"), original_cross(self))[1])
    config_from_dict({})
    assert calls == ["data", "model", "optim", "schedule", "augment", "refinement", "run", "across"]


def test_augment_parts_partition_the_flat_keys():
    part_fields = [f.name for part in AUGMENT_PARTS for f in dataclasses.fields(part)]
    assert sorted(part_fields) == sorted(AUGMENT_KEYS)        # each key in exactly one part
    assert len(part_fields) == len(set(part_fields))
    assert set(STRONG_OPTION_KEYS) < {f.name for f in dataclasses.fields(TransformSettings)}
    assert [PolicySettings, ViewSettings, TransformSettings, MixingSettings] == list(AUGMENT_PARTS)


def test_parts_read_the_flat_keys_users_write(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("augment: {strong: cutout, cutout_size: 7, copies: 2, batch_aug: cutmix, fraction: 0.3}\n")
    cfg = load_config(path, ["augment.placement=inplace", "augment.policy_options={method: lazy}"])
    a = cfg.augment
    assert (a.transforms.strong, a.transforms.cutout_size) == ("cutout", 7)
    assert (a.view.copies, a.view.placement, a.policy.fraction) == (2, "inplace", 0.3)
    assert a.policy.policy_options == {"method": "lazy"} and a.mixing.batch_aug == "cutmix"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.transforms.cutout_size = 3
    augment = cfg.to_dict()["augment"]
    assert list(augment) == AUGMENT_KEYS and augment["cutout_size"] == 7      # still flat, in the same order
    assert config_from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_mix_prob_is_the_papers_unless_set():
    assert AugmentConfig(batch_aug="cutmix").mixing.mix_prob == 0.5      # Yun et al.
    assert AugmentConfig(batch_aug="mixup").mixing.mix_prob == 1.0
    assert AugmentConfig(batch_aug="cutmix", batch_aug_prob=0.25).mixing.mix_prob == 0.25


def test_strong_transform_from_the_transforms_part_matches_the_section():
    dataset = load_dataset("digits", train=True)
    for augment in (AugmentConfig(strong="cutout", cutout_size=5),
                    AugmentConfig(strong="augmix", augmix_severity=7, augmix_width=2, augmix_depth=2)):
        assert repr(strong_transform_for(augment.transforms, dataset)) == repr(strong_transform_for(augment, dataset))
