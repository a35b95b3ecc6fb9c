"""The papers' experiments as a table of protocols (``augcore repro --list``).

A :class:`Protocol` is one table (or one part of a table) of a paper: which runs it
takes (variants x methods x budgets, per seed), the paper-exact preset (data set, model,
epochs, schedule, milestones, learning rate, weight decay, batch size, R), a CPU-scale
preset on the embedded digits data, and the paper's numbers, which ``augcore repro``
prints beside the measured ones. Presets are raw config sections, so every key is
the one ``augcore train`` reads and ``--set`` overrides any of them.

Sources, cited per protocol: the coreset paper (Liu & Mirzasoleiman, NeurIPS 2022) and
its supplement ("Supp."), whose Supp. D.1 gives the optimiser (SGD, momentum 0.9,
learning-rate decay) and per-data-set epochs, learning rates and batch sizes; where it
is silent the values are the released code's (tianyu139/data-efficient-augmentation),
as docs/paper_settings.md records. The refinement paper is He et al., *Data
Augmentation Revisited*.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from augcore.config import ConfigError

__all__ = ["PROTOCOLS", "Protocol", "cell_key", "get_protocol", "merge_sections"]

# ---------------------------------------------------------------------------- presets
# CPU scale: the embedded digits, the small CNN, a few epochs. Every protocol's CPU
# preset starts here and keeps the protocol's own structure (training set, R, budgets).
_CPU = {"data": {"name": "digits"}, "model": {"name": "small_cnn"},
        "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5.0e-4, "batch_size": 64},
        "schedule": {"name": "cosine", "epochs": 15, "milestones": []},
        "augment": {"strong": "autoaugment"},
        "run": {"num_threads": 1, "eval_batch_size": 512}}

# Supp. D.1: CIFAR-10 and variants, 200 epochs; SGD momentum 0.9; the released main.py's
# lr 0.1, weight decay 1e-4, x0.1 at 100 and 150 (the paper gives "learning rate decay"
# only); batch 128 (not stated: ResNet-20's usual CIFAR batch). Strong augmentation:
# Wu et al. 2020 ("We use [7] for CIFAR10/SVHN").
_CIFAR_200 = {"optim": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1.0e-4, "batch_size": 128},
              "schedule": {"name": "multistep", "epochs": 200, "milestones": [100, 150], "gamma": 0.1},
              "augment": {"strong": "wu2020"}}
# Supp. D.1: ImageNet-pretrained ResNet-18 on Caltech-256, 40 epochs from lr 0.001, batch
# 64; the released main.py decays x0.1 at 20 and 30; AutoAugment (ImageNet policy).
_CALTECH_40 = {"data": {"name": "imagefolder", "image_size": 224},
               "model": {"name": "resnet18"},
               "optim": {"lr": 0.001, "momentum": 0.9, "weight_decay": 1.0e-4, "batch_size": 64},
               "schedule": {"name": "multistep", "epochs": 40, "milestones": [20, 30], "gamma": 0.1},
               "augment": {"strong": "autoaugment"}}
# Supp. D.1: ResNet-50 on (Tiny-)ImageNet, "the standard 90 epoch learning schedule" from
# lr 0.1, batch 64; the released main.py decays x0.1 at 30 and 60; AutoAugment.
_R50_90 = {"model": {"name": "resnet50"},
           "optim": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1.0e-4, "batch_size": 64},
           "schedule": {"name": "multistep", "epochs": 90, "milestones": [30, 60], "gamma": 0.1},
           "augment": {"strong": "autoaugment"}}


def merge_sections(*layers: Mapping) -> Dict:
    """Deep-merges raw config mappings, later layers winning key by key (a copy)."""
    out: Dict = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merge_sections(out[key], value)
            else:
                out[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return out


def cell_key(variant: str, method: str, budget: Optional[float]) -> str:
    """The key of one table cell: ``variant/method@budget`` (parts left out when empty)."""
    key = method if budget is None else f"{method}@{budget:g}"
    return f"{variant}/{key}" if variant else key


@dataclass(frozen=True)
class Protocol:
    """One paper table as runs, presets and the paper's numbers.

    ``kind`` says how runs are read: ``selection`` (a selection policy per method and
    budget; the final test top-1 is compared), ``refinement`` (one run per variant; the
    top-1 before the refinement phase and after it are compared). ``metric`` says what the
    paper's numbers are: ``top1`` (%), or ``gain_share`` (Table 4: (acc - W.A.) / (F.A. -
    W.A.), needing the ``none`` and ``full`` runs). ``paper`` maps :func:`cell_key` to the
    paper's number; ``paper_reference`` holds numbers the caption gives (W.A., F.A.).
    """
    name: str
    source: str                      # paper and table
    setting: str                     # one line: data / model, training set, R
    kind: str                        # selection | refinement
    train_on: str                    # full | selection | random_subset
    methods: Tuple[str, ...]
    budgets: Tuple[float, ...]
    reselect_every: int
    paper_preset: Dict
    cpu_preset: Dict
    cpu_budgets: Tuple[float, ...] = ()
    cpu_reselect_every: Optional[int] = None   # R at CPU scale (short runs); None: the paper's
    variants: Dict[str, Dict] = field(default_factory=lambda: {"": {}})
    metric: str = "top1"
    paper: Dict[str, float] = field(default_factory=dict)
    paper_reference: Dict[str, float] = field(default_factory=dict)
    notes: str = ""

    def preset(self, which: str) -> Dict:
        if which not in ("paper", "cpu"):
            raise ConfigError(f"preset: must be 'paper' or 'cpu', got {which!r}")
        return self.paper_preset if which == "paper" else self.cpu_preset

    def reselect_every_for(self, which: str) -> int:
        return self.cpu_reselect_every if which == "cpu" and self.cpu_reselect_every else self.reselect_every

    def budgets_for(self, which: str) -> Tuple[float, ...]:
        return self.cpu_budgets if which == "cpu" and self.cpu_budgets else self.budgets

    def paper_value(self, variant: str, method: str, budget: Optional[float]) -> Optional[float]:
        if method in ("none", "full") and self.metric == "gain_share":
            return self.paper_reference.get("weak" if method == "none" else "full")
        return self.paper.get(cell_key(variant, method, None if method in ("none", "full") else budget))


def _cells(variant: str, budgets, **rows) -> Dict[str, float]:
    """``method=[value per budget]`` rows of a paper table as cell keys (None: not reported)."""
    return {cell_key(variant, method, b): v for method, values in rows.items()
            for b, v in zip(budgets, values) if v is not None}


def _cpu(structure: Dict, **extra) -> Dict:
    return merge_sections(_CPU, structure, extra)


PROTOCOLS: Dict[str, Protocol] = {}


def _register(protocol: Protocol) -> None:
    PROTOCOLS[protocol.name] = protocol


_T1_BUDGETS = (0.001, 0.002, 0.005, 0.01)
_register(Protocol(
    name="coreset-t1-c10-r20", source="coreset paper, Table 1 (C10/R20)",
    setting="CIFAR-10 / ResNet-20: train on the subset + its strong copies, R = 1",
    kind="selection", train_on="selection", methods=("random", "coreset"), budgets=_T1_BUDGETS, reselect_every=1,
    paper_preset=merge_sections({"data": {"name": "cifar10"}, "model": {"name": "resnet20"}}, _CIFAR_200),
    cpu_preset=_cpu({}), cpu_budgets=(0.05, 0.1),
    paper=_cells("", _T1_BUDGETS, random=[33.5, 42.7, 58.7, 74.4], coreset=[37.8, 45.1, 63.9, 74.7]),
    notes="max-loss did not converge (< 15%) in the paper; add --methods max_loss to see it"))
_register(Protocol(
    name="coreset-t1-c10-wrn", source="coreset paper, Table 1 (C10/W2810)",
    setting="CIFAR-10 / WRN-28-10: train on a 1% subset + its strong copies, R = 1",
    kind="selection", train_on="selection", methods=("random", "coreset"), budgets=(0.01,), reselect_every=1,
    paper_preset=merge_sections({"data": {"name": "cifar10"}, "model": {"name": "wrn28_10"}}, _CIFAR_200),
    cpu_preset=_cpu({}), cpu_budgets=(0.05,),
    paper=_cells("", (0.01,), random=[57.7], coreset=[62.1])))
_CAL_BUDGETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
_register(Protocol(
    name="coreset-t1-caltech", source="coreset paper, Table 1 (Cal/R18)",
    setting="Caltech-256 / ImageNet-pretrained ResNet-18 (model.weights): train on the subset + copies, R = 5",
    kind="selection", train_on="selection", methods=("max_loss", "random", "coreset"), budgets=_CAL_BUDGETS,
    reselect_every=5, paper_preset=_CALTECH_40, cpu_preset=_cpu({}), cpu_budgets=(0.1, 0.3),
    paper=_cells("", _CAL_BUDGETS, max_loss=[19.2, 50.6, 71.3, 75.6, 77.3, 78.6],
                 random=[41.5, 61.8, 72.5, 75.7, 77.6, 78.5], coreset=[52.7, 65.4, 73.1, 76.3, 77.7, 78.9]),
    notes="the paper fine-tunes ImageNet weights: pass a local state dict with --set model.weights=FILE"))
_T2_BUDGETS = (0.3, 0.4, 0.5)
_register(Protocol(
    name="coreset-t2-caltech", source="coreset paper, Table 2",
    setting="Caltech-256 / pretrained ResNet-18, strong = Cutout / AugMix / Perturb, train on subset + copies, R = 5",
    kind="selection", train_on="selection", methods=("random", "coreset"), budgets=_T2_BUDGETS, reselect_every=5,
    paper_preset=_CALTECH_40, cpu_preset=_cpu({}), cpu_budgets=(0.3,),
    variants={"cutout": {"augment": {"strong": "cutout"}}, "augmix": {"augment": {"strong": "augmix"}},
              "perturb": {"augment": {"strong": "perturb"}}},
    paper={**_cells("cutout", _T2_BUDGETS, random=[43.32, 62.84, 76.21], coreset=[55.53, 66.10, 76.91]),
           **_cells("augmix", _T2_BUDGETS, random=[40.77, 61.81, 72.17], coreset=[52.72, 64.91, 73.01]),
           **_cells("perturb", _T2_BUDGETS, random=[48.51, 66.20, 75.34], coreset=[58.29, 67.47, 76.50])},
    notes="the paper fine-tunes ImageNet weights: pass a local state dict with --set model.weights=FILE"))
_T3_BUDGETS = (0.2, 0.3, 0.5)
_register(Protocol(
    name="coreset-t3-tinyimagenet", source="coreset paper, Table 3",
    setting="Tiny-ImageNet / ResNet-50: full data + strong copies of the subset, R = 15",
    kind="selection", train_on="full", methods=("random", "max_loss", "coreset"), budgets=_T3_BUDGETS,
    reselect_every=15, paper_preset=merge_sections({"data": {"name": "tiny_imagenet"}}, _R50_90),
    cpu_preset=_cpu({"schedule": {"epochs": 6}}), cpu_budgets=(0.3,), cpu_reselect_every=2,
    paper=_cells("", _T3_BUDGETS, random=[50.97, 52.00, 54.92], max_loss=[51.30, 52.34, 53.37],
                 coreset=[51.99, 54.30, 55.16])))
_T4_BUDGETS = (0.05, 0.1, 0.3)
_T4 = {  # name -> (setting, data section, model, W.A., F.A., random, max-loss, ours)
    "c10": ("CIFAR-10 / ResNet-20", {"name": "cifar10"}, "resnet20", 89.46, 93.50,
            [0.218, 0.399, 0.656], [0.329, 0.478, 0.735], [0.349, 0.515, 0.750]),
    "c10ib": ("long-tailed CIFAR-10 (imbalance factor 100) / ResNet-32",
              {"name": "cifar10", "imbalance_factor": 100.0}, "resnet32", 87.08, 92.48,
              [0.259, 0.452, 0.746], [0.313, 0.396, 0.746], [0.374, 0.494, 0.748]),
    "svhn": ("SVHN / ResNet-32", {"name": "svhn"}, "resnet32", 95.68, 97.07,
             [0.058, 0.367, 0.641], [0.353, 0.497, 0.764], [0.317, 0.483, 0.800]),
}
for _key, (_setting, _data, _model, _weak, _full, _random, _loss, _ours) in _T4.items():
    _register(Protocol(
        name=f"coreset-t4-{_key}", source=f"coreset paper, Table 4 ({_key.upper()})",
        setting=f"{_setting}: full data + strong copies of the subset, R = 20; gains as a share of F.A. - W.A.",
        kind="selection", train_on="full", methods=("none", "full", "random", "max_loss", "coreset"),
        budgets=_T4_BUDGETS, reselect_every=20,
        paper_preset=merge_sections({"data": _data, "model": {"name": _model}}, _CIFAR_200),
        cpu_preset=_cpu({"data": {k: (10.0 if k == "imbalance_factor" else v) for k, v in _data.items()
                                  if k != "name"}, "schedule": {"epochs": 6}}),
        cpu_budgets=(0.3,), cpu_reselect_every=2, metric="gain_share",
        paper=_cells("", _T4_BUDGETS, random=_random, max_loss=_loss, coreset=_ours),
        paper_reference={"weak": _weak, "full": _full},
        notes="the CPU preset of c10ib uses imbalance factor 10: 100 leaves digits' smallest class 1 example"
        if _key == "c10ib" else ""))
_T5_BUDGETS = (0.1, 0.3, 0.5)
_register(Protocol(
    name="coreset-t5-c10-noisy", source="coreset paper, Table 5",
    setting="CIFAR-10 with 50% symmetric label noise / ResNet-20: full data + strong copies, R = 20",
    kind="selection", train_on="full", methods=("random", "max_loss", "coreset"), budgets=_T5_BUDGETS,
    reselect_every=20,
    paper_preset=merge_sections({"data": {"name": "cifar10", "label_noise": 0.5}, "model": {"name": "resnet20"}},
                                _CIFAR_200),
    cpu_preset=_cpu({"data": {"label_noise": 0.5}, "schedule": {"epochs": 6}}), cpu_budgets=(0.3,),
    cpu_reselect_every=2,
    paper=_cells("", _T5_BUDGETS, random=[72.32, 74.46, 75.36], max_loss=[71.83, 72.45, 73.23],
                 coreset=[73.02, 74.67, 76.20]),
    paper_reference={"weak": 70.72, "full": 75.87}))
_T6 = {"tinyimagenet": ((0.1, 0.2, 0.3), {"name": "tiny_imagenet"}, [28.64, 38.97, 44.10], [30.90, 40.88, 46.42]),
       "imagenet": ((0.1, 0.3, 0.5), {"name": "imagefolder", "image_size": 224}, [63.67, 70.39, 72.35],
                    [68.53, 71.99, 73.28])}
_T6_LABEL = {"tinyimagenet": "Tiny-ImageNet", "imagenet": "ImageNet"}
for _key, (_budgets, _data, _random, _ours) in _T6.items():
    _register(Protocol(
        name=f"coreset-t6-{_key}", source=f"coreset paper, Table 6 ({_T6_LABEL[_key]})",
        setting=f"{_T6_LABEL[_key]} / ResNet-50: train on a random subset + strong copies of a same-size random "
                "subset or coreset, R = 15",
        kind="selection", train_on="random_subset", methods=("random", "coreset"), budgets=_budgets,
        reselect_every=15, paper_preset=merge_sections({"data": _data}, _R50_90),
        cpu_preset=_cpu({}), cpu_budgets=(0.1,), cpu_reselect_every=3,
        paper=_cells("", _budgets, random=_random, coreset=_ours)))


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ConfigError(f"protocol: unknown protocol {name!r}; `augcore repro --list` shows them: "
                          f"{', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
