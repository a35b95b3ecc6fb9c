"""FID of synthetic copies against the real images they copy (the paper's Table 6), offline.

The Fréchet Inception Distance is computed by torchmetrics' ``FrechetInceptionDistance``
(InceptionV3 from torch-fidelity) from a local weights file: ``weights`` is torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` (the TF FID network in PyTorch format), which
the user places on disk; nothing is downloaded, and without the file nothing is computed.
Images are resized to 299x299 with TensorFlow 1.x's bilinear rule (torch-fidelity's, the
standard FID's; torchmetrics' antialiased default is not used). Needs the optional extra
``augcore[fid]`` (torchmetrics, torch-fidelity).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Union

import torch

from augcore.checks import check_choice, check_int, check_path_exists

from .imaging import check_image
from .store import SyntheticStore

FEATURES = (64, 192, 768, 2048)   # InceptionV3 layers torchmetrics offers; 2048 (pool3) is the standard FID


def _require_fid():
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        import torch_fidelity  # noqa: F401
    except ImportError as exc:
        raise ImportError("FID needs torchmetrics and torch-fidelity: pip install 'augcore[fid]'") from exc
    return FrechetInceptionDistance


def _as_batch(name: str, images: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
    """uint8 (N, 3, H, W) from a uint8 tensor or a sequence of (C, H, W) images; grayscale repeated to RGB."""
    items = list(images.unbind(0)) if isinstance(images, torch.Tensor) and images.dim() == 4 else list(images)
    if len(items) < 2:
        raise ValueError(f"{name}: at least 2 images are needed for a covariance, got {len(items)}")
    for i, image in enumerate(items):
        check_image(image, i)
    if len({tuple(im.shape) for im in items}) != 1:
        raise ValueError(f"{name}: images must share one shape, got {sorted({tuple(im.shape) for im in items})}")
    batch = torch.stack(items)
    return batch.repeat(1, 3, 1, 1) if batch.shape[1] == 1 else batch


def frechet_inception_distance(real, fake, *, weights: str, feature: int = 2048, batch_size: int = 50,
                               device: Union[str, torch.device] = "cpu") -> float:
    """FID between two sets of uint8 images ((N, C, H, W) tensors or sequences of (C, H, W), C = 1 or 3).

    ``weights``: the path of torch-fidelity's InceptionV3 weights file (see the module docstring).
    ``feature``: the InceptionV3 layer (2048, the standard FID, or 64 / 192 / 768).
    """
    metric_cls = _require_fid()
    weights = check_path_exists("weights (InceptionV3 weights file)", weights)
    feature = check_choice("feature", feature, FEATURES)
    batch_size = check_int("batch_size", batch_size, min=1)
    real, fake = _as_batch("real", real), _as_batch("fake", fake)
    # torchmetrics keeps the feature sums and covariances in float64
    metric = metric_cls(feature=feature, feature_extractor_weights_path=weights, antialias=False).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, images.shape[0], batch_size):
            metric.update(images[start:start + batch_size].to(device), real=is_real)
    return float(metric.compute())


def store_fid(base, store: Union[str, SyntheticStore], *, weights: str, steps: Optional[Sequence[int]] = None,
              feature: int = 2048, batch_size: int = 50, device: Union[str, torch.device] = "cpu") -> Dict[int, float]:
    """Per kept step, the FID between its copies and the original images they were made from
    (``base``: the data set the store was generated from). ``steps``: default every stored step."""
    store = store if isinstance(store, SyntheticStore) else SyntheticStore(store)
    records = store.records()
    stored = sorted({r["step"] for r in records})
    chosen = stored if steps is None else sorted(set(steps))
    missing = sorted(set(chosen) - set(stored))
    if missing:
        raise ValueError(f"steps {missing} are not in the store (it has {stored})")
    image = base.image if hasattr(base, "image") else (lambda i: base[i][0])
    out = {}
    for step in chosen:
        kept = sorted((r for r in records if r["step"] == step), key=lambda r: r["source"])
        out[step] = frechet_inception_distance([image(r["source"]) for r in kept],
                                               [store.load_image(r) for r in kept], weights=weights,
                                               feature=feature, batch_size=batch_size, device=device)
    return out
