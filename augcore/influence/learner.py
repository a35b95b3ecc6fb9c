"""Training the augmentation estimator E by back-propagating influence through a fixed classifier.

Per mini-batch: x~ = T(x; E(x)), forward through the frozen model to (logits~, h~), and
minimise

    mean_i I_aug(z_i, z~_i) + regularisation * mean_i |T params_i|^2,

where I_aug = I_up,loss(z~) - I_up,loss(z) uses the s_val of a fitted
:class:`~augcore.influence.scores.LastLayerInfluence`, fixed while E learns (as in the
paper). I_up,loss(z) does not depend on E, so "replace" and "append" objectives have the
same gradient; the logged value is I_aug. Only the augmenter's trainable parameters are
updated: with :class:`~augcore.influence.generator.GeneratorAugmenter` (the paper's E and
frozen G) that is E alone, trained as App. B says (Adam, lr 0.01, betas (0.9, 0.99),
regularisation 0: G's adversarial pre-training keeps its transforms realistic). The
light :class:`~augcore.influence.transforms.ImageAugmenter` has no G; its magnitude
penalty (``regulariser``) and bounded heads keep its transforms small instead.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Tuple, Union

import torch
from tqdm.auto import tqdm

from augcore.checks import check_bool, check_int, check_number
from augcore.influence.scores import LastLayerInfluence
from augcore.models.outputs import EmbeddingReader


def train_augmenter(augmenter: torch.nn.Module, model: torch.nn.Module, influence: LastLayerInfluence,
                    inputs: torch.Tensor, labels: torch.Tensor, *, epochs: int = 10, batch_size: int = 128,
                    lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), regularisation: float = 1.0,
                    seed: int = 0, log_path: Optional[Union[str, os.PathLike]] = None,
                    progress: bool = True) -> List[Dict[str, float]]:
    """Trains ``augmenter`` (E and its heads) in place; returns one record per epoch.

    ``model`` is any classifier (``nn.Module``): its logits and penultimate embedding are read
    as ``augcore.models.EmbeddingReader`` reads them (the returned pair, else the input of the
    final ``nn.Linear``), that layer being ``influence``'s; its parameters are not updated.
    ``log_path``: optional JSON-lines file, one record per epoch (epoch, influence,
    penalty, loss). Returns the same records. ``regularisation`` > 0 needs an augmenter with a
    ``regulariser(params)`` method (the light ones).
    """
    for name, t in (("inputs", inputs), ("labels", labels)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not isinstance(influence, LastLayerInfluence):
        raise TypeError(f"influence must be a fitted LastLayerInfluence, got {type(influence).__name__}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a classifier nn.Module, got {type(model).__name__}")
    if inputs.dim() == 0 or labels.dim() == 0 or inputs.shape[0] != labels.shape[0] or inputs.shape[0] == 0:
        raise ValueError(f"inputs ({tuple(inputs.shape)}) and labels ({tuple(labels.shape)}) must be non-empty and "
                         "of equal length")
    epochs = check_int("epochs", epochs, min=1)
    batch_size = check_int("batch_size", batch_size, min=1)
    lr = check_number("lr", lr, min=0.0, min_inclusive=False)
    regularisation = check_number("regularisation", regularisation, min=0.0)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    betas = tuple(check_number(f"betas[{i}]", b, min=0.0, max=1.0, max_inclusive=False) for i, b in enumerate(betas))
    has_regulariser = callable(getattr(augmenter, "regulariser", None))
    if regularisation > 0 and not has_regulariser:
        raise ValueError(f"regularisation={regularisation:g} needs an augmenter with a regulariser(params) method; "
                         f"{type(augmenter).__name__} has none (pass regularisation=0)")
    trainable = [p for p in augmenter.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{type(augmenter).__name__} has no trainable parameters")
    seed = check_int("seed", seed, min=0)
    progress = check_bool("progress", progress)
    influence._require_fit()
    frozen = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    for p in frozen:
        p.requires_grad_(False)  # gradients flow to the inputs only
    model.eval()
    read = EmbeddingReader(model)
    optimiser = torch.optim.Adam(trainable, lr=lr, betas=betas)
    generator = torch.Generator().manual_seed(seed)
    records: List[Dict[str, float]] = []
    try:
        for epoch in tqdm(range(epochs), desc="train E", disable=not progress):
            order = torch.randperm(inputs.shape[0], generator=generator)
            totals = {"influence": 0.0, "penalty": 0.0, "loss": 0.0}
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size].to(inputs.device)
                x, y = inputs[rows], labels[rows]
                with torch.no_grad():
                    logits, embedding = read(x)
                    base = influence.up_loss(embedding, y, logits)
                augmented, params = augmenter(x)
                aug_logits, aug_embedding = read(augmented)
                influence_term = (influence.up_loss(aug_embedding, y, aug_logits) - base).mean()
                penalty = augmenter.regulariser(params).mean() if has_regulariser else influence_term.new_zeros(())
                loss = influence_term + regularisation * penalty
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                share = len(rows) / len(order)
                totals["influence"] += share * influence_term.item()
                totals["penalty"] += share * penalty.item()
                totals["loss"] += share * loss.item()
            record = {"epoch": epoch, **totals}
            records.append(record)
            if log_path is not None:
                with open(log_path, "a") as fh:
                    fh.write(json.dumps(record) + "\n")  # appended per epoch: a log, not state to resume
    finally:
        read.close()
        for p in frozen:
            p.requires_grad_(True)
        if was_training:
            model.train()
    return records
