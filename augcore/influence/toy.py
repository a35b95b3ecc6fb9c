"""The paper's 2-D toy experiment (Lee et al., CVPR 2020, Fig. 3), seeded and CPU-fast.

Two Gaussian classes; a 3-layer ReLU network (2 -> 16 -> 16 -> 2, the last linear layer
is ``classifier``) trained on them; the validation set also holds a mode of class 1 that
the training set lacks (see :func:`make_toy_data`), so some validation points are
misclassified. With s_val fixed from
the validation loss, a :class:`~augcore.influence.transforms.TranslationAugmenter` E
learns per-point translations t(x) that lower the predicted validation loss. The paper's
observation, measured here: translations point toward misclassified validation points of
the same class.

Statistic: ``fraction_toward`` = share of training points (with a non-negligible
translation) whose translation has a positive cosine with the direction to the nearest
misclassified validation point of their class.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from augcore.checks import check_bool, check_int, check_number
from augcore.influence.learner import train_augmenter
from augcore.io import atomic_savefig
from augcore.influence.scores import LastLayerInfluence
from augcore.influence.transforms import TranslationAugmenter


class ToyNet(nn.Module):
    """3 layers; forward returns (logits, embedding) like augcore models."""

    def __init__(self, hidden: int = 16, num_classes: int = 2):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.classifier(h), h


def make_toy_data(num_train: int, num_val: int, generator: torch.Generator, spread: float = 0.35,
                  unseen_mode: Tuple[float, float] = (-0.4, 1.3), unseen_share: float = 0.3):
    """Two Gaussian classes at (-1, 0) and (1, 0); a share of the validation set of class 1
    comes from a mode the training set never shows (``unseen_mode``), on class 0's side of
    the boundary the network learns, so those validation points are misclassified.

    Returns (train x, train y, val x, val y).
    """
    centres = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    y = torch.randint(2, (num_train,), generator=generator)
    x = centres[y] + spread * torch.randn(num_train, 2, generator=generator)
    val_y = torch.randint(2, (num_val,), generator=generator)
    val_centres = centres[val_y].clone()
    unseen = (val_y == 1) & (torch.rand(num_val, generator=generator) < unseen_share)
    val_centres[unseen] = torch.tensor(unseen_mode)
    val_x = val_centres + spread * torch.randn(num_val, 2, generator=generator)
    return x, y, val_x, val_y


@dataclass
class ToyResult:
    fraction_toward: float           # share of translations pointing toward a same-class misclassified val point
    num_considered: int              # training points with a misclassified same-class val point and |t| > 1e-3
    fraction_toward_by_class: Dict[int, float]  # the same, per class that has misclassified val points
    num_misclassified_val: int
    predicted_influence_end: float   # mean I_aug(z, z + t(z)) after training E (it is 0 at the start)
    mean_shift: float
    history: List[Dict[str, float]] = field(default_factory=list)
    plot_path: Optional[str] = None


def _toward_statistic(x: torch.Tensor, y: torch.Tensor, shift: torch.Tensor, val_x: torch.Tensor,
                      val_y: torch.Tensor, misclassified: torch.Tensor) -> Tuple[float, int, Dict[int, float]]:
    """(pooled fraction, points considered, fraction per class) of translations with a positive
    cosine to the nearest misclassified validation point of their class."""
    positive, considered, by_class = 0, 0, {}
    for cls in (0, 1):
        targets = val_x[misclassified & (val_y == cls)]
        rows = (y == cls) & (shift.norm(dim=1) > 1e-3)
        if len(targets) == 0 or not bool(rows.any()):
            continue
        nearest = targets[torch.cdist(x[rows], targets).argmin(1)]
        cosine = torch.nn.functional.cosine_similarity(shift[rows], nearest - x[rows], dim=1)
        by_class[cls] = float((cosine > 0).float().mean())
        positive += int((cosine > 0).sum())
        considered += int(rows.sum())
    return (positive / considered if considered else float("nan")), considered, by_class


def _save_plot(path: str, model: ToyNet, x, y, shift, val_x, val_y, misclassified) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = torch.cat([x, val_x]).min(0).values - 0.5, torch.cat([x, val_x]).max(0).values + 0.5
    gx, gy = torch.meshgrid(torch.linspace(float(lo[0]), float(hi[0]), 200),
                            torch.linspace(float(lo[1]), float(hi[1]), 200), indexing="xy")
    with torch.no_grad():
        prob = torch.softmax(model(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))[0], 1)[:, 1].view(200, 200)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.contourf(gx, gy, prob, levels=20, cmap="coolwarm", alpha=0.25)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1)
    colours = ["tab:blue", "tab:red"]
    for cls in (0, 1):
        ax.scatter(*x[y == cls].T, s=14, c=colours[cls], label=f"train, class {cls}")
        ax.scatter(*val_x[(val_y == cls) & ~misclassified].T, s=18, marker="^", facecolors="none",
                   edgecolors=colours[cls], linewidths=0.6)
        ax.scatter(*val_x[(val_y == cls) & misclassified].T, s=50, marker="^", c=colours[cls],
                   edgecolors="k", label=f"misclassified val, class {cls}")
    ax.quiver(x[:, 0], x[:, 1], shift[:, 0], shift[:, 1], angles="xy", scale_units="xy", scale=1, width=0.003)
    ax.set_title("learned translations (arrows) vs misclassified validation points (filled triangles)")
    ax.legend(fontsize=7, loc="lower left")
    try:
        atomic_savefig(fig, path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def run_toy_experiment(seed: int = 0, *, num_train: int = 200, num_val: int = 200, classifier_steps: int = 100,
                       augmenter_epochs: int = 60, max_shift: float = 1.0, regularisation: float = 0.1,
                       augmenter_lr: float = 0.01, damping: float = 0.01,
                       plot_path: Optional[Union[str, os.PathLike]] = None, progress: bool = False) -> ToyResult:
    """Runs the experiment (a few seconds on one CPU core) and optionally saves the plot.

    The classifier is trained briefly (``classifier_steps`` full-batch Adam steps), so its
    training points are not all saturated: with fully confident points the last-layer
    gradients vanish and E gets no signal. E's translations may reach ``max_shift``: the
    influence landscape is not convex in x, and the paper's picture needs moves of the
    order of the class spread.
    """
    seed = check_int("seed", seed, min=0)
    num_train = check_int("num_train", num_train, min=2)
    num_val = check_int("num_val", num_val, min=1)
    classifier_steps = check_int("classifier_steps", classifier_steps, min=0)
    augmenter_epochs = check_int("augmenter_epochs", augmenter_epochs, min=1)
    max_shift = check_number("max_shift", max_shift, min=0.0)
    regularisation = check_number("regularisation", regularisation, min=0.0)
    augmenter_lr = check_number("augmenter_lr", augmenter_lr, min=0.0, min_inclusive=False)
    damping = check_number("damping", damping, min=0.0)
    progress = check_bool("progress", progress)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y, val_x, val_y = make_toy_data(num_train, num_val, generator)

    model = ToyNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(classifier_steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x)[0], y).backward()
        optimiser.step()
    model.eval()

    with torch.no_grad():
        train_logits, train_embeddings = model(x)
        val_logits, val_embeddings = model(val_x)
    misclassified = val_logits.argmax(1) != val_y
    influence = LastLayerInfluence(model.classifier.weight, model.classifier.bias, train_embeddings, train_logits,
                                   damping=damping)
    influence.fit(val_embeddings, val_y, val_logits, reduction="mean")

    augmenter = TranslationAugmenter(2, max_shift=max_shift)
    history = train_augmenter(augmenter, model, influence, x, y, epochs=augmenter_epochs, batch_size=64,
                              lr=augmenter_lr, regularisation=regularisation, seed=seed, progress=progress)
    with torch.no_grad():
        shift = augmenter(x)[1]["shift"]
        moved_logits, moved_embeddings = model(x + shift)
        end = influence.augmentation(train_embeddings, moved_embeddings, y, train_logits, moved_logits)
    fraction, considered, by_class = _toward_statistic(x, y, shift, val_x, val_y, misclassified)
    path = None
    if plot_path is not None:
        path = os.fspath(plot_path)
        _save_plot(path, model, x, y, shift, val_x, val_y, misclassified)
    return ToyResult(fraction_toward=fraction, num_considered=considered, fraction_toward_by_class=by_class,
                     num_misclassified_val=int(misclassified.sum()), predicted_influence_end=float(end.mean()), mean_shift=float(shift.norm(dim=1).mean()),
                     history=history, plot_path=path)
