"""The one inference pass that feeds every selector."""
from __future__ import annotations

from typing import Any, Union

import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler
from tqdm.auto import tqdm

from augcore.selection.base import InferenceStats


def base_indices(dataset: Any) -> torch.Tensor:
    """Indices of ``dataset``'s items in its base data set.

    A ``torch.utils.data.Subset`` (nested ones compose) or any data set with an
    ``indices`` attribute maps item i to ``indices[i]``; anything else is arange.
    """
    indices = getattr(dataset, "indices", None)
    if indices is None:
        return torch.arange(len(dataset), dtype=torch.int64)
    indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if indices.numel() != len(dataset):
        raise ValueError(f"{type(dataset).__name__}.indices has {indices.numel()} entries but the data set "
                         f"has {len(dataset)} items")
    inner = getattr(dataset, "dataset", None)
    if inner is not None and getattr(inner, "indices", None) is not None:
        return base_indices(inner)[indices]
    return indices


def _unshuffled_loader(source: Union[Dataset, DataLoader], batch_size: int, device: torch.device,
                       num_workers: int) -> DataLoader:
    if isinstance(source, DataLoader):
        sampler = source.batch_sampler.sampler if source.batch_sampler is not None else source.sampler
        if not isinstance(sampler, SequentialSampler):
            raise ValueError("collect_stats needs an unshuffled DataLoader (SequentialSampler) to know which "
                             f"dataset index each row is; got a {type(sampler).__name__}. Pass the Dataset instead.")
        if source.drop_last:
            raise ValueError("collect_stats needs every example: the DataLoader has drop_last=True")
        return source
    if not isinstance(source, Dataset):
        raise TypeError(f"collect_stats: expected a torch Dataset or DataLoader, got {type(source).__name__}")
    return DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=device.type == "cuda" and _items_on_cpu(source))


def _items_on_cpu(dataset: Dataset) -> bool:
    """Pinning applies to CPU tensors only; a data set preloaded on the GPU must not be pinned."""
    if len(dataset) == 0:
        return True
    first = dataset[0]
    x = first[0] if isinstance(first, (tuple, list)) else first
    return not (isinstance(x, torch.Tensor) and x.device.type != "cpu")


def _split_output(out: Any, embeddings: bool):
    if isinstance(out, (tuple, list)) and len(out) == 2:
        if embeddings and not isinstance(out[1], torch.Tensor):
            raise TypeError(f"collect_stats: the model returned {type(out[1]).__name__} as its embedding; "
                            "pass embeddings=False to collect logits only")
        return out[0], out[1]
    if isinstance(out, torch.Tensor) and not embeddings:
        return out, None
    raise TypeError("collect_stats: the model's forward must return (logits, embedding) "
                    f"(augcore.models convention), got {type(out).__name__}"
                    + (" of length %d" % len(out) if isinstance(out, (tuple, list)) else ""))


def collect_stats(model: torch.nn.Module, dataset: Union[Dataset, DataLoader], *, batch_size: int = 512,
                  device: Union[str, torch.device] = "cpu", num_workers: int = 0, progress: bool = True,
                  embeddings: bool = True) -> InferenceStats:
    """Logits, penultimate embeddings, per-example cross-entropy, labels and dataset
    indices of every example, in one batched pass.

    ``dataset`` yields ``(image, label)`` already under test-time transforms (no
    augmentation), or is an unshuffled DataLoader of ``(x, y)``. The model runs in
    eval mode under ``torch.inference_mode()``; every submodule's train/eval flag
    is restored afterwards. The model must already be on ``device``; the outputs
    stay there (logits and losses float32, embeddings in the model's dtype cast to
    float32). Indices are base-dataset indices for a ``Subset`` (see
    ``base_indices``), else arange(N).
    """
    device = torch.device(device)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    param = next(iter(model.parameters()), None)
    if param is not None and param.device != device and not (param.device.type == device.type == "cuda"
                                                               and device.index is None):
        raise ValueError(f"the model is on {param.device} but collect_stats was asked for device={device}; "
                         "move the model first (model.to(device)) or pass its device")
    loader = _unshuffled_loader(dataset, batch_size, device, num_workers)
    base = loader.dataset
    indices = base_indices(base)

    modes = {m: m.training for m in model.modules()}
    logits_parts, emb_parts, label_parts = [], [], []
    try:
        model.eval()
        with torch.inference_mode():
            for x, y in tqdm(loader, desc="inference", unit="batch", disable=not progress, leave=False):
                x = x.to(device, non_blocking=True)
                y = torch.as_tensor(y).to(device, non_blocking=True)
                logits, emb = _split_output(model(x), embeddings)
                if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
                    raise ValueError(f"the model returned logits of shape {tuple(logits.shape)} for a batch of "
                                     f"{x.shape[0]}; expected ({x.shape[0]}, C)")
                logits_parts.append(logits.float())
                label_parts.append(y.to(torch.int64).reshape(-1))
                if embeddings:
                    emb_parts.append(emb.float().reshape(emb.shape[0], -1))
    finally:
        for m, training in modes.items():
            m.training = training

    if not logits_parts:
        raise ValueError("collect_stats: the data set is empty")
    logits = torch.cat(logits_parts)
    labels = torch.cat(label_parts)
    if logits.shape[0] != indices.numel():
        raise ValueError(f"the loader yielded {logits.shape[0]} examples but the data set has {indices.numel()}")
    if int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]:
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}) (the model's number of classes), "
                         f"found [{int(labels.min())}, {int(labels.max())}]")
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return InferenceStats(logits=logits, labels=labels, losses=losses, indices=indices.to(device),
                          embeddings=torch.cat(emb_parts) if embeddings else None)
