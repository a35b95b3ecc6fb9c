"""The generation driver: faithful synthetic copies of the selected (slow-learnable) images.

Follows the paper (Nguyen et al., "Do We Need All the Synthetic Data?"): each selected image is noised to level s
of T = 100 and denoised for s steps by a text-conditioned model with the prompt
"a photo of a {class}" and guidance scale 3; one full denoise per kept s. The default
kept steps (40, 50, 70, 80) give amplification factor k = 5 (k counts the original);
(50,) is the paper's best for k = 2.

Work is cut into units: for each kept step, the sorted selected indices in chunks of
``batch_size``. Units are what shards split (round robin) and what a resumed run skips.
Each image has its own random generator seeded from (seed, source index, step), so
a resumed or sharded run makes the same images as one uninterrupted run.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from augcore.checks import IndexOutOfRangeError, check_choice, check_int, check_int_list

from .imaging import check_image, from_model_space, to_model_space
from .models import INITS
from .schedule import check_steps, strength_for_steps
from .store import SyntheticStore, image_relpath

PAPER_PROMPT = "a photo of a {class}"
PAPER_STEPS = (40, 50, 70, 80)          # k = 5 on CIFAR-10 and CIFAR-100 (App. F.1, Table 4)
# k -> kept steps: Table 6's best for k = 2, Table 4's Tiny-ImageNet k = 4 and CIFAR k = 5
PAPER_STEPS_FOR_K = {2: (50,), 4: (50, 70, 80), 5: PAPER_STEPS}


class MissingClassNameError(ValueError):
    """A selected image's class has no name to put in the prompt."""


@dataclass(frozen=True)
class WorkUnit:
    step: int
    unit: int                   # index of the chunk within its step
    sources: Tuple[int, ...]    # dataset indices, ascending


@dataclass
class GenerationReport:
    generated: int              # images made by this call
    skipped: int                # images of this shard already in the store
    seconds: float
    shard: Tuple[int, int]
    root: str

    @property
    def images_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0


def derive_seed(seed: int, source: int, step: int) -> int:
    """A 63-bit seed from (seed, source index, step); stable across processes and machines."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(source)}:{int(step)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def parse_shard(shard: Optional[str | Tuple[int, int]]) -> Tuple[int, int]:
    """``"i/n"`` or (i, n); None means torch.distributed's (rank, world size), or (0, 1)."""
    if shard is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1
    if isinstance(shard, str):
        try:
            index, count = (int(part) for part in shard.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {shard!r}") from None
    else:
        index, count = check_int_list("shard", shard, length=2)
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"shard i/n needs n >= 1 and 0 <= i < n, got {index}/{count}")
    return int(index), int(count)


def plan_units(sources: Sequence[int], steps: Sequence[int], batch_size: int) -> List[WorkUnit]:
    """All units of a run, step by step, each a chunk of the ascending source indices."""
    batch_size = check_int("batch_size", batch_size, min=1)
    ordered = sorted(set(check_int_list("sources", sources, min=0)))
    return [WorkUnit(step, u, tuple(ordered[start:start + batch_size]))
            for step in steps for u, start in enumerate(range(0, len(ordered), batch_size))]


def shard_units(units: Sequence[WorkUnit], shard: Tuple[int, int]) -> List[WorkUnit]:
    index, count = shard
    return [unit for i, unit in enumerate(units) if i % count == index]


def check_prompt_template(template: str) -> str:
    """``template`` must be a string whose only placeholder is ``{class}``."""
    if not isinstance(template, str):
        raise TypeError(f"prompt_template must be a string such as {PAPER_PROMPT!r}, got {template!r}")
    try:
        template.format(**{"class": "x"})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"prompt_template may hold one placeholder, {{class}}; {template!r} fails: "
                         f"{type(exc).__name__}: {exc}") from None
    return template


def class_prompt(template: str, class_names: Optional[Sequence[str]], label: int) -> str:
    """``template`` with the name of class ``label``; raises when the class has no name."""
    if class_names is None:
        raise MissingClassNameError("the dataset has no class names (``classes``); pass class_names for the prompt")
    if not 0 <= label < len(class_names):
        raise MissingClassNameError(f"class {label} has no name for the prompt: only {len(class_names)} class "
                                    "names are known")
    name = class_names[label]
    if not isinstance(name, str) or not name.strip():
        raise MissingClassNameError(f"class {label} has no name for the prompt (got {name!r})")
    return template.format(**{"class": name.strip().replace("_", " ")})


def _raw_image(dataset, index: int) -> torch.Tensor:
    # ImageDataset.image skips the training transform; any (image, label) dataset also works.
    return dataset.image(index) if hasattr(dataset, "image") else dataset[index][0]


def _label(dataset, index: int) -> int:
    targets = getattr(dataset, "targets", None)
    return int(targets[index]) if targets is not None else int(dataset[index][1])


def _check_indices(indices) -> List[int]:
    """Dataset indices from a tensor, array or list (a ``Selection``'s ``indices``); integers only."""
    if isinstance(indices, torch.Tensor):
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise TypeError(f"indices must be integer dataset indices, got a {indices.dtype} tensor")
        return indices.reshape(-1).tolist()
    if hasattr(indices, "indices") and isinstance(getattr(indices, "indices"), torch.Tensor):
        raise TypeError("indices: pass selection.indices, not the Selection itself")
    return check_int_list("indices", indices.reshape(-1) if hasattr(indices, "reshape") else indices)


def _sources_digest(sources: Sequence[int]) -> str:
    return hashlib.sha256(",".join(str(s) for s in sources).encode()).hexdigest()[:16]


def generate_copies(dataset, indices, backend, out_dir: str, *, steps: Sequence[int] = PAPER_STEPS,
                    seed: int = 0, batch_size: int = 8, shard=None, class_names: Optional[Sequence[str]] = None,
                    prompt_template: str = PAPER_PROMPT, progress: bool = True,
                    init: str = "image") -> GenerationReport:
    """Makes the synthetic copies of ``dataset[indices]`` at each of ``steps`` into ``out_dir``.

    ``indices``: dataset indices (e.g. ``Selection.indices``); ``backend``: from
    :func:`augcore.generate.models.load_backend`. Resumes what ``out_dir`` already holds;
    ``shard`` ("i/n") does one share of the units. ``init="noise"`` (the paper's Fig. 5b
    ablation) starts every copy from pure noise and denoises all T steps; each kept step
    then only names one copy (its seed). A class-conditional back end is given each
    image's dataset label. Returns what this call did.
    """
    from tqdm.auto import tqdm

    missing = [a for a in ("generate", "total_steps", "conditional", "resolution", "channels") if not hasattr(backend, a)]
    if missing:
        raise TypeError(f"backend must come from augcore.generate.load_backend (it lacks {', '.join(missing)}), "
                        f"got {type(backend).__name__}")
    if not hasattr(dataset, "__len__"):
        raise TypeError(f"dataset must be a data set of (image, label) items, got {type(dataset).__name__}")
    steps = check_steps(steps, backend.total_steps)
    init = check_choice("init", init, INITS)
    sources = sorted(set(_check_indices(indices)))
    if sources and (sources[0] < 0 or sources[-1] >= len(dataset)):
        raise IndexOutOfRangeError(f"indices (selected dataset indices) must lie in [0, {len(dataset)}), got range "
                                   f"[{sources[0]}, {sources[-1]}]")
    seed = check_int("seed", seed, min=0)
    batch_size = check_int("batch_size", batch_size, min=1)
    if backend.conditional:
        check_prompt_template(prompt_template)
    shard = parse_shard(shard)
    if class_names is None:
        class_names = getattr(dataset, "classes", None)
    labels = {s: _label(dataset, s) for s in sources}
    if getattr(backend, "class_conditional", False):   # refused before anything is written
        outside = [s for s in sources if not 0 <= labels[s] < backend.num_classes]
        if outside:
            raise ValueError(f"dataset item {outside[0]}: class {labels[outside[0]]} is outside the model's "
                             f"num_class_embeds = {backend.num_classes} classes ({len(outside)} selected items)")
    prompts = {s: class_prompt(prompt_template, class_names, labels[s]) for s in sources} if backend.conditional else {}

    store = SyntheticStore(out_dir)
    store.open_for_writing({
        "model": backend.model_id, "kind": backend.kind, "scheduler": backend.scheduler_name,
        "total_steps": backend.total_steps, "guidance_scale": backend.guidance_scale,
        "prompt_template": prompt_template if backend.conditional else None, "seed": int(seed),
        "batch_size": int(batch_size), "sources": _sources_digest(sources), "num_sources": len(sources),
        # stores written before init existed have no key and hold image-initialised copies
        **({"init": init} if init != "image" else {})})

    units = shard_units(plan_units(sources, steps, batch_size), shard)
    todo = [u for u in units if not store.unit_done(u.step, u.unit, u.sources)]
    skipped = sum(len(u.sources) for u in units) - sum(len(u.sources) for u in todo)
    bar = tqdm(total=sum(len(u.sources) for u in units), initial=skipped, unit="img", disable=not progress,
               desc=f"generate shard {shard[0]}/{shard[1]}")
    start, generated = time.perf_counter(), 0
    try:
        for unit in todo:
            images = [_raw_image(dataset, s) for s in unit.sources]
            for s, image in zip(unit.sources, images):
                check_image(image, s)
            out_size = tuple(images[0].shape[-2:])
            out_channels = images[0].shape[0]
            seeds = [derive_seed(seed, s, unit.step) for s in unit.sources]
            batch_prompts = [prompts[s] for s in unit.sources] if backend.conditional else None
            batch_labels = [labels[s] for s in unit.sources] if getattr(backend, "class_conditional", False) else None
            result = backend.generate(to_model_space(images, backend.resolution, backend.channels), batch_prompts,
                                      unit.step, [torch.Generator().manual_seed(x) for x in seeds],
                                      labels=batch_labels, init=init)
            copies = from_model_space(result.images, out_size, out_channels)
            records = [_record(backend, s, labels[s], class_names, unit.step, seed_s, prompts.get(s),
                               result.denoise_steps, result.first_timestep, copy, init)
                       for s, seed_s, copy in zip(unit.sources, seeds, copies)]
            store.write_unit(unit.step, unit.unit, list(copies), records)
            generated += len(unit.sources)
            bar.update(len(unit.sources))
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    store.consolidate()
    return GenerationReport(generated, skipped, seconds, shard, store.root)


def _record(backend, source: int, label: int, class_names, step: int, seed: int, prompt: Optional[str],
            denoise_steps: int, first_timestep: int, image: torch.Tensor, init: str) -> Dict[str, Any]:
    name = class_names[label] if class_names is not None and 0 <= label < len(class_names) else None
    strength = strength_for_steps(step, backend.total_steps) if init == "image" else None
    return {"source": source, "label": label, "class_name": name, "step": step, "total_steps": backend.total_steps,
            "init": init, "strength": strength, "denoise_steps": denoise_steps,
            "first_timestep": first_timestep, "seed": seed, "model": backend.model_id, "kind": backend.kind,
            "scheduler": backend.scheduler_name, "prompt": prompt, "guidance_scale": backend.guidance_scale,
            "file": image_relpath(source, step), "shape": list(image.shape)}
