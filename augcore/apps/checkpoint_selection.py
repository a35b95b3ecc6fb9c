"""One selection from a trained checkpoint, without training machinery (``augcore select``)."""
from __future__ import annotations

import os
from typing import Optional, Union

from augcore.selection.base import Selection


def select_from_checkpoint(path: Union[str, os.PathLike], *, method: Optional[str] = None,
                           fraction: Optional[float] = None, seed: Optional[int] = None,
                           epoch: Optional[int] = None) -> Selection:
    """Rebuilds the checkpoint's data and model, runs one inference pass and the policy's
    selection. ``method`` defaults to the checkpoint's ``augment.mode`` (its
    ``augment.policy_options`` apply only to that mode); ``fraction``, ``seed`` and
    ``epoch`` default to the checkpoint's."""
    from augcore.config import ConfigError
    from augcore.train.build import build_run
    from augcore.train.checkpoint import load_checkpoint
    from augcore.train.config import config_from_dict
    from augcore.train.policies import POLICIES, PolicyContext, policy_options
    from augcore.train.stats import StatsProvider
    from augcore.train.strategy import SingleProcess

    state = load_checkpoint(path)
    raw = state["config"]
    mode = method or raw["augment"]["mode"]
    if mode not in POLICIES or not POLICIES[mode].selects:
        raise ConfigError(f"--method: {mode!r} selects nothing; choose one of "
                          f"{[name for name, cls in POLICIES.items() if cls.selects]}")
    augment = raw["augment"]
    raw["augment"] = {**augment, "mode": mode, "stats": "eval", "selection_file": None,
                      "policy_options": augment["policy_options"] if mode == augment["mode"] else {}}
    if fraction is not None:
        raw["augment"]["fraction"] = fraction
    if seed is not None:
        raw["run"]["seed"] = seed
    raw["run"]["progress"] = False
    config = config_from_dict(raw)
    parts = build_run(config)
    parts.model.load_state_dict(state["model"])
    strategy = SingleProcess()
    stats = StatsProvider(parts.model, parts.inference_set, parts.train_base.targets, parts.num_classes,
                          strategy=strategy, batch_size=config.run.eval_batch_size, device=parts.device,
                          num_workers=config.data.num_workers)
    ctx = PolicyContext(dataset=parts.train_base, make_view=parts.make_view, strong_view=parts.strong_view,
                            weak=parts.weak,
                        model=parts.model, stats=stats, augment=config.augment, seed=config.run.seed,
                        device=parts.device, strategy=strategy)
    policy = POLICIES[mode](ctx, policy_options(mode, config.augment.policy_options))
    epoch = int(state["epoch"]) if epoch is None else epoch
    rows = policy.candidate_rows()
    model_stats = stats.model_stats(rows) if policy.needs_model_stats else stats.label_stats(rows)
    return policy.select(epoch, model_stats)
