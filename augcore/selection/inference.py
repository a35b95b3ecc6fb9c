"""The one inference pass that feeds every selector, and the in-epoch alternative.

``collect_stats`` runs a model in eval mode over a data set and returns its
``InferenceStats``. It works with augcore models (``forward -> (logits,
embedding)``) and with models that return logits only (torchvision, timm, a plain
``nn.Sequential``): the penultimate embedding is then the input of the final
``nn.Linear``, read by a forward hook.

``StatsAccumulator`` gathers the same statistics from the outputs a training loop
already computes, so a re-selection needs no extra pass.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, List, Optional, Protocol, Tuple, Union, runtime_checkable

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler, Subset
from tqdm.auto import tqdm

from augcore.checks import check_choice, check_int
from augcore.models.outputs import EmbeddingReader, find_classifier, logits_of
from augcore.selection.base import InferenceStats

# EmbeddingReader, find_classifier and logits_of live in augcore.models.outputs; named here too,
# where collect_stats' callers have always found them
__all__ = ["BatchReadable", "EmbeddingReader", "StatsAccumulator", "base_indices", "collect_stats", "find_classifier",
           "logits_of"]

AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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


# --------------------------------------------------------------------------- loading

@runtime_checkable
class BatchReadable(Protocol):
    """A data set that can load many items at once (``augcore.data.ImageDataset`` is one):
    ``batch_reader()`` gives ``read(rows) -> (x, y)``, equal to its items at ``rows`` stacked,
    or ``None`` when it cannot (a random per-item transform)."""

    def batch_reader(self) -> Optional[Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]]: ...


def _batch_reader(dataset: Dataset) -> Tuple[Optional[Callable], Optional[Dataset]]:
    """The batch reader of the data set under ``dataset`` (through Subsets) and that data set,
    or (None, None) when it offers none."""
    root = dataset
    while isinstance(root, Subset):
        root = root.dataset
    reader = root.batch_reader() if isinstance(root, BatchReadable) else None
    return (reader, root) if reader is not None else (None, None)


class _Batches(Dataset):
    """Item b is batch b, read at once by a data set's batch reader."""

    def __init__(self, read: Callable, rows: torch.Tensor):
        self.read, self.rows = read, rows

    def __len__(self) -> int:
        return self.rows.numel()

    def __getitem__(self, positions: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.read(self.rows[positions])


def _loader(source: Union[Dataset, DataLoader], batch_size: int, device: torch.device,
            num_workers: int) -> Tuple[DataLoader, torch.Tensor]:
    """An unshuffled loader of (x, y) batches and the base-dataset index of each row."""
    if isinstance(source, DataLoader):
        sampler = source.batch_sampler.sampler if source.batch_sampler is not None else source.sampler
        if not isinstance(sampler, SequentialSampler):
            raise ValueError("collect_stats needs an unshuffled DataLoader (SequentialSampler) to know which "
                             f"dataset index each row is; got a {type(sampler).__name__}. Pass the Dataset instead.")
        if source.drop_last:
            raise ValueError("collect_stats needs every example: the DataLoader has drop_last=True")
        return source, base_indices(source.dataset)
    if not isinstance(source, Dataset):
        raise TypeError(f"collect_stats: expected a torch Dataset or DataLoader, got {type(source).__name__}")
    indices = base_indices(source)
    workers = dict(num_workers=num_workers, pin_memory=device.type == "cuda" and _items_on_cpu(source))
    if num_workers > 0:
        workers.update(prefetch_factor=4)  # keep the model fed while workers prepare the next batches
    read, root = _batch_reader(source)
    if read is not None and len(source):
        rows = indices if root is not source else torch.arange(len(source))
        batches = BatchSampler(SequentialSampler(range(len(source))), batch_size, drop_last=False)
        return DataLoader(_Batches(read, rows), sampler=batches, batch_size=None, **workers), indices
    return DataLoader(source, batch_size=batch_size, shuffle=False, **workers), indices


def _items_on_cpu(dataset: Dataset) -> bool:
    """Pinning applies to CPU tensors only; a data set preloaded on the GPU must not be pinned."""
    if len(dataset) == 0:
        return True
    first = dataset[0]
    x = first[0] if isinstance(first, (tuple, list)) else first
    return not (isinstance(x, torch.Tensor) and x.device.type != "cpu")


# --------------------------------------------------------------------------- the pass

def collect_stats(model: nn.Module, dataset: Union[Dataset, DataLoader], *, batch_size: int = 512,
                  device: Union[str, torch.device] = "cpu", num_workers: int = 0, progress: bool = True,
                  embeddings: bool = True, classifier: Optional[Union[str, nn.Module]] = None,
                  amp: str = "none", channels_last: bool = False) -> InferenceStats:
    """Logits, penultimate embeddings, per-example cross-entropy, labels and dataset
    indices of every example, in one batched pass.

    ``dataset`` yields ``(image, label)`` already under test-time transforms (no
    augmentation), or is an unshuffled DataLoader of ``(x, y)``. The model runs in
    eval mode under ``torch.inference_mode()``; every submodule's train/eval flag
    is restored afterwards. The model must already be on ``device``; the outputs
    stay there (logits and losses float32, embeddings cast to float32). Indices are
    base-dataset indices for a ``Subset`` (see ``base_indices``), else arange(N).

    Embeddings: a model returning ``(logits, embedding)`` (augcore's models) gives
    its embedding. A model returning logits only gets the input of its final
    ``nn.Linear``, found automatically (``find_classifier``) or named by
    ``classifier`` (a submodule name such as ``"fc"``, or the module); naming a
    classifier also overrides a returned embedding. ``embeddings=False`` skips them.

    Speed: a data set offering a batch reader (``BatchReadable``: an augcore
    ``ImageDataset`` whose transform is deterministic per pixel, such as the eval
    transforms ToDtype and Normalize), or a Subset of one, is loaded a batch at a time,
    the transform applied to the whole batch; ``num_workers`` > 0
    prepares the next batches while the model runs. ``amp="bf16"``/``"fp16"``
    runs the forward under autocast (fp16 needs a GPU; bf16 is slower than float32
    on CPUs without native bf16, see bench/README.md) and ``channels_last=True``
    feeds the model NHWC batches (the model's weights are converted for the pass
    and restored). Both change the outputs by rounding only.
    """
    device = torch.device(device)
    batch_size = check_int("batch_size", batch_size, min=1)
    num_workers = check_int("num_workers", num_workers, min=0)
    check_choice("amp", amp, tuple(AMP))
    if amp == "fp16" and device.type == "cpu":
        raise ValueError("amp='fp16' needs a GPU; use amp='bf16' or 'none' on the CPU")
    param = next(iter(model.parameters()), None)
    if param is not None and param.device != device and not (param.device.type == device.type == "cuda"
                                                               and device.index is None):
        raise ValueError(f"the model is on {param.device} but collect_stats was asked for device={device}; "
                         "move the model first (model.to(device)) or pass its device")
    loader, indices = _loader(dataset, batch_size, device, num_workers)

    modes = {m: m.training for m in model.modules()}
    converted: List[torch.Tensor] = []
    logits_parts, emb_parts, label_parts = [], [], []
    source: Optional[EmbeddingReader] = None
    autocast = (torch.autocast(device.type, dtype=AMP[amp]) if AMP[amp] is not None
                else contextlib.nullcontext())
    try:
        source = EmbeddingReader(model, classifier) if embeddings else None
        model.eval()
        if channels_last:  # convert 4-D weights for the pass; put back the ones that were NCHW
            converted = [p for p in model.parameters()
                         if p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last)]
            for p in converted:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast:
            for x, y in tqdm(loader, desc="inference", unit="batch", disable=not progress, leave=False):
                x = x.to(device, non_blocking=True)
                if channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = torch.as_tensor(y).to(device, non_blocking=True)
                logits, emb = source(x) if source is not None else (logits_of(model(x)), None)
                if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
                    raise ValueError(f"the model returned logits of shape {tuple(logits.shape)} for a batch of "
                                     f"{x.shape[0]}; expected ({x.shape[0]}, C)")
                logits_parts.append(logits.float())
                label_parts.append(y.to(torch.int64).reshape(-1))
                if embeddings:
                    emb_parts.append(emb.float().reshape(emb.shape[0], -1))
    finally:
        if source is not None:
            source.close()
        for p in converted:
            p.data = p.data.contiguous()
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


# --------------------------------------------------------------------------- in-epoch statistics

class StatsAccumulator:
    """``InferenceStats`` gathered from a training epoch's own forward passes.

    Create one per epoch, call ``add`` after each training step with the batch's
    dataset indices, logits, labels and (optionally) penultimate embeddings of the
    originals (leave strong copies out), then ``finish`` once the epoch is over::

        acc = StatsAccumulator(len(train_set), num_classes)
        for x, y, index in loader:
            logits, emb = model(x)
            ...
            acc.add(index, logits, y, emb)
        stats = acc.finish()          # every index seen exactly once, else ValueError

    ``indices`` lists the dataset indices the epoch covers (default ``arange(n)``);
    the stats' rows follow that order, as ``collect_stats`` on the same data would.
    ``embed_dim`` fixes the embedding width; ``None`` takes it from the first
    ``add`` that passes embeddings (then every ``add`` must pass them). Buffers live
    on the device of the first ``add``; values are stored detached, in float32.
    """

    def __init__(self, n: int, num_classes: int, embed_dim: Optional[int] = None, *,
                 indices: Optional[torch.Tensor] = None):
        self.n = check_int("n", n, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.embed_dim = None if embed_dim is None else check_int("embed_dim", embed_dim, min=1)
        if indices is None:
            self.indices = torch.arange(self.n, dtype=torch.int64)
        else:
            self.indices = torch.as_tensor(indices).to("cpu", torch.int64).reshape(-1)
            if self.indices.numel() != self.n:
                raise ValueError(f"indices has {self.indices.numel()} entries but n={self.n}")
            if self.indices.numel() and int(self.indices.min()) < 0:
                raise ValueError("indices must be non-negative dataset indices")
            if torch.unique(self.indices).numel() != self.n:
                raise ValueError("indices contains repeated dataset indices")
        size = int(self.indices.max()) + 1 if self.n else 0
        self._row_of = torch.full((size,), -1, dtype=torch.int64)
        self._row_of[self.indices] = torch.arange(self.n)
        self._logits: Optional[torch.Tensor] = None
        self._labels: Optional[torch.Tensor] = None
        self._embeddings: Optional[torch.Tensor] = None
        self._seen: Optional[torch.Tensor] = None
        self._with_embeddings: Optional[bool] = None

    def add(self, indices: Any, logits: torch.Tensor, labels: Any, embeddings: Optional[torch.Tensor] = None) -> None:
        """Records one batch; raises on an index already recorded this epoch."""
        logits = logits.detach()
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"logits must be (B, {self.num_classes}), got shape {tuple(logits.shape)}")
        b = logits.shape[0]
        device = logits.device
        idx = torch.as_tensor(indices).reshape(-1)
        labels = torch.as_tensor(labels).reshape(-1)
        if idx.numel() != b or labels.numel() != b:
            raise ValueError(f"a batch of {b} logits needs {b} indices and {b} labels, got {idx.numel()} indices "
                             f"and {labels.numel()} labels")
        if idx.is_floating_point() or labels.is_floating_point():
            raise TypeError("indices and labels must be integer tensors")
        if (embeddings is not None) != bool(self._with_embeddings) and self._with_embeddings is not None:
            raise ValueError("pass embeddings to every add or to none (the first add "
                             f"{'did' if self._with_embeddings else 'did not'})")
        if embeddings is not None:
            embeddings = embeddings.detach().reshape(b, -1)
            if self.embed_dim is not None and embeddings.shape[1] != self.embed_dim:
                raise ValueError(f"embeddings must be (B, {self.embed_dim}), got shape {tuple(embeddings.shape)}")
        if self._logits is None:
            self._allocate(device, embeddings)
        if b == 0:
            return
        idx_cpu = idx.to("cpu", torch.int64)
        known = (idx_cpu >= 0) & (idx_cpu < self._row_of.numel())
        rows = torch.full_like(idx_cpu, -1)
        rows[known] = self._row_of[idx_cpu[known]]
        if bool((rows < 0).any()):
            bad = idx_cpu[rows < 0][:5].tolist()
            raise ValueError(f"dataset indices {bad} are not among the {self.n} this accumulator covers")
        if torch.unique(rows).numel() != b:
            raise ValueError("a batch repeats a dataset index: record each original once (leave strong copies out)")
        rows_dev = rows.to(self._seen.device)
        if bool(self._seen[rows_dev].any()):
            again = self.indices[rows[self._seen[rows_dev].cpu()]][:5].tolist()
            raise ValueError(f"dataset indices {again} were already recorded this epoch; each original must be "
                             "added exactly once per epoch (call finish() and start a new accumulator)")
        self._seen[rows_dev] = True
        self._logits[rows_dev] = logits.to(self._logits.device, torch.float32)
        self._labels[rows_dev] = labels.to(self._labels.device, torch.int64)
        if embeddings is not None:
            self._embeddings[rows_dev] = embeddings.to(self._embeddings.device, torch.float32)

    def _allocate(self, device: torch.device, embeddings: Optional[torch.Tensor]) -> None:
        self._with_embeddings = embeddings is not None
        if embeddings is not None and self.embed_dim is None:
            self.embed_dim = embeddings.shape[1]
        self._logits = torch.empty(self.n, self.num_classes, dtype=torch.float32, device=device)
        self._labels = torch.empty(self.n, dtype=torch.int64, device=device)
        self._seen = torch.zeros(self.n, dtype=torch.bool, device=device)
        if self._with_embeddings:
            self._embeddings = torch.empty(self.n, self.embed_dim, dtype=torch.float32, device=device)

    @property
    def num_seen(self) -> int:
        return 0 if self._seen is None else int(self._seen.sum())

    def finish(self) -> InferenceStats:
        """The epoch's statistics; raises unless every covered index was added exactly once."""
        if self.num_seen != self.n:
            missing = self.indices[~self._seen.cpu()] if self._seen is not None else self.indices
            raise ValueError(f"{missing.numel()} of {self.n} dataset indices were never recorded this epoch "
                             f"(first: {missing[:5].tolist()}); in-epoch statistics need every original once "
                             "(a full pass without drop_last, originals not replaced by strong copies)")
        labels = self._labels
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}), found "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        losses = torch.nn.functional.cross_entropy(self._logits, labels, reduction="none")
        stats = InferenceStats(logits=self._logits, labels=labels, losses=losses,
                               indices=self.indices.to(self._logits.device), embeddings=self._embeddings)
        self._logits = self._labels = self._embeddings = self._seen = None
        self._with_embeddings = None
        return stats
