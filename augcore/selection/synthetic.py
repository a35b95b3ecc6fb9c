"""Random but plausible inference statistics, for benchmarks, demos and tests."""
from __future__ import annotations

from typing import Optional, Union

import torch

from augcore.checks import check_bool, check_int
from augcore.selection.base import InferenceStats


def random_stats(num_examples: int, num_classes: int, *, embedding_dim: Optional[int] = None, seed: int = 0,
                 balanced: bool = True, device: Union[str, torch.device] = "cpu") -> InferenceStats:
    """Stats of a half-trained classifier: the true class's logit is raised by a
    per-example margin drawn from a two-component mixture (easy and hard examples),
    so losses are spread and each class has a natural two-cluster structure.

    ``balanced``: every class gets N // C examples (the rest round-robin); otherwise
    labels are drawn uniformly at random. Losses are float32 cross-entropy of the
    float32 logits; indices are arange(N).
    """
    num_examples = check_int("num_examples", num_examples, min=1)
    num_classes = check_int("num_classes", num_classes, min=1)
    if embedding_dim is not None:
        embedding_dim = check_int("embedding_dim", embedding_dim, min=1)
    seed = check_int("seed", seed, min=0)
    balanced = check_bool("balanced", balanced)
    gen = torch.Generator().manual_seed(seed)
    if balanced:
        labels = torch.arange(num_examples) % num_classes
        labels = labels[torch.randperm(num_examples, generator=gen)]
    else:
        labels = torch.randint(0, num_classes, (num_examples,), generator=gen)
    hard = torch.rand(num_examples, generator=gen) < 0.3
    margin = torch.where(hard, torch.randn(num_examples, generator=gen) * 0.7,
                         3.0 + torch.randn(num_examples, generator=gen) * 0.7)
    logits = torch.randn(num_examples, num_classes, generator=gen)
    logits[torch.arange(num_examples), labels] += margin
    embeddings = None
    if embedding_dim is not None:
        class_means = torch.randn(num_classes, embedding_dim, generator=gen)
        embeddings = (class_means[labels] * (1 + hard.float()[:, None])
                      + 0.5 * torch.randn(num_examples, embedding_dim, generator=gen)).relu()
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r} ({exc})") from None
    return InferenceStats(logits=logits.to(device), labels=labels.to(device), losses=losses.to(device),
                          indices=torch.arange(num_examples, device=device),
                          embeddings=None if embeddings is None else embeddings.to(device))
