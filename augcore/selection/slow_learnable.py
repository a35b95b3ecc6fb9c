"""Slow-learnable examples (targeted synthetic augmentation, Nguyen et al.): per class,
2-means on the model outputs; the cluster with the higher mean loss is selected."""
from __future__ import annotations

import time

import torch

from augcore.checks import check_choice, check_int
from augcore.seeds import cpu_generator
from augcore.selection._common import require_nonempty_classes
from augcore.selection.base import InferenceStats
from augcore.selection.kmeans import batched_kmeans
from augcore.selection.selector import SELECTORS, BaseSelector, Picks

FEATURES = ("probs", "logits", "embeddings")


@SELECTORS.register("slow_learnable")
class SlowLearnableSelector(BaseSelector):
    """Per class, split the examples in two by 2-means and select the whole cluster
    with the higher mean loss (the "slow-learnable" part, about 30% of CIFAR-10 at the
    separating epoch). The selected fraction is an outcome, reported as
    ``info["fraction"]`` (and per class as ``info["class_fractions"]``).

    ``features``: "probs" (softmax of the logits, default: the paper clusters the
    model's output probabilities), "logits", or "embeddings" (penultimate layer).
    All classes are clustered at once (``batched_kmeans``) with k-means++
    initialisation and ``restarts`` restarts, in float64. A class whose outputs do
    not split (one cluster empty: all its points coincide) contributes nothing; such
    classes are listed in ``info["unsplit_classes"]``. Unit weights; indices in the
    order of the stats rows.
    """

    def __init__(self, *, features: str = "probs", restarts: int = 10, max_iter: int = 300):
        self.features = check_choice("features", features, FEATURES)
        self.restarts = check_int("restarts", restarts, min=1)
        self.max_iter = check_int("max_iter", max_iter, min=1)

    @property
    def needs_embeddings(self) -> bool:
        return self.features == "embeddings"

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int) -> Picks:
        t0 = time.perf_counter()
        sizes = require_nonempty_classes(stats, "SlowLearnableSelector")
        labels = stats.labels.to(torch.int64)
        if self.features == "probs":
            x = torch.softmax(stats.logits.to(torch.float64), 1)
        elif self.features == "logits":
            x = stats.logits
        else:
            x = stats.embeddings
        c = stats.num_classes
        km = batched_kmeans(x, labels, k=2, num_groups=c, restarts=self.restarts, max_iter=self.max_iter,
                            generator=cpu_generator(seed, epoch, self.method))
        t1 = time.perf_counter()

        # mean loss of each (class, cluster), float64; empty clusters never win
        slot = labels * 2 + km.labels
        loss_sum = torch.zeros(2 * c, dtype=torch.float64, device=labels.device)
        loss_sum.index_add_(0, slot, stats.losses.to(torch.float64))
        counts = km.counts.reshape(-1).to(labels.device)
        mean_loss = (loss_sum / counts.clamp_min(1)).view(c, 2)
        slow = mean_loss.argmax(1)
        split = (km.counts > 0).all(1).to(labels.device)
        chosen = (km.labels == slow[labels]) & split[labels]
        rows = chosen.nonzero().flatten()
        budgets = torch.bincount(labels[rows].cpu(), minlength=c)
        return Picks(
            rows, budgets=budgets, timings={"kmeans": t1 - t0},
            info={"features": self.features,
                  "class_fractions": (budgets.to(torch.float64) / sizes).tolist(),
                  "cluster_mean_loss": mean_loss.cpu().tolist(),
                  "inertia": km.inertia.cpu().tolist(),
                  "iterations": km.iterations.cpu().tolist(),
                  "unsplit_classes": (~split).nonzero().flatten().cpu().tolist()})
