"""Targeted synthetic augmentation: real generation with tiny random diffusers pipelines on the CPU."""
import json
import math
import os

import pytest
import torch
from hypothesis import given, settings, strategies as st

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from augcore.generate import (MissingClassNameError, NotADiffusersPipelineError, StoreMismatchError,
                              SyntheticAugmentedDataset, SyntheticStore, UpsampledDataset, derive_seed,
                              generate_copies, load_backend, parse_shard, plan_units, shard_units,
                              steps_run_for_strength, strength_for_steps)
from augcore.generate.imaging import from_model_space, to_model_space
from augcore.generate.schedule import partial_timesteps
from augcore.generate.tiny import build_tiny_img2img, build_tiny_unconditional, tiny_image_batch

T = 10            # total steps in tests (the paper's 100 costs 10x more on the CPU)
STEPS = (3, 5)


class TinyDataset(torch.utils.data.Dataset):
    """(uint8 image, label) items with class names, like augcore.data.ImageDataset."""

    def __init__(self, n=10, channels=3, size=(12, 12), classes=("cat", "dog", "car"), seed=0):
        self.images = tiny_image_batch(n, channels, size, seed=seed)
        self.targets = torch.arange(n) % len(classes)
        self.classes = list(classes)
        self.image_size, self.channels = size, channels

    def __len__(self):
        return len(self.targets)

    def image(self, i):
        return self.images[i]

    def __getitem__(self, i):
        return self.images[i], int(self.targets[i])


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(1)   # the tests run beside other jobs; 1 thread is steadier


@pytest.fixture(scope="session")
def sd_path(tmp_path_factory):
    return build_tiny_img2img(str(tmp_path_factory.mktemp("tiny_sd")), resolution=16)


@pytest.fixture(scope="session")
def unc_path(tmp_path_factory):
    return build_tiny_unconditional(str(tmp_path_factory.mktemp("tiny_unc")), resolution=16, scheduler="ddpm")


@pytest.fixture(scope="session")
def sd(sd_path):
    return load_backend(sd_path, total_steps=T)


@pytest.fixture(scope="session")
def unc(unc_path):
    return load_backend(unc_path, total_steps=T)


def _count_unet_calls(unet):
    calls = []
    handle = unet.register_forward_pre_hook(lambda mod, args: calls.append(1))
    return calls, handle


def _store_images(root):
    store = SyntheticStore(root)
    return {(r["source"], r["step"]): store.load_image(r) for r in store.records()}


# ----------------------------------------------------------------------------- strength mapping

@settings(max_examples=300, deadline=None)
@given(st.integers(1, 1000).flatmap(lambda t: st.tuples(st.just(t), st.integers(1, t))))
def test_strength_runs_exactly_s_steps_and_is_s_over_t_or_just_above(ts):
    total, s = ts
    strength = strength_for_steps(s, total)
    assert 0.0 < strength <= 1.0
    assert steps_run_for_strength(strength, total) == s
    # s / T itself, or the first float above it that makes diffusers run s steps
    assert strength == s / total or (strength > s / total
                                     and steps_run_for_strength(math.nextafter(strength, 0.0), total) == s - 1)
    assert abs(strength - s / total) < 1e-12


def test_naive_strength_would_lose_a_step_where_ours_does_not():
    # the reason for the exact mapping: 22 * (15 / 22) truncates to 14 in float64
    assert steps_run_for_strength(15 / 22, 22) == 14
    assert steps_run_for_strength(strength_for_steps(15, 22), 22) == 15


@pytest.mark.parametrize("s", [1, 4, 7, 10])
def test_diffusers_get_timesteps_agrees_with_the_mapping(sd, s):
    pipe = sd.pipeline
    pipe.scheduler.set_timesteps(T)
    full = pipe.scheduler.timesteps.clone()
    timesteps, n = pipe.get_timesteps(T, strength_for_steps(s, T), "cpu")
    assert n == s and len(timesteps) == s
    assert torch.equal(timesteps, full[T - s:])
    assert torch.equal(partial_timesteps(pipe.scheduler, s, T), full[T - s:])


@pytest.mark.parametrize("which", ["sd", "unc"])
@pytest.mark.parametrize("s", [2, 6])
def test_number_of_denoising_steps_run_equals_s(request, which, s):
    backend = request.getfixturevalue(which)
    unet = backend.pipeline.unet if which == "sd" else backend.unet
    calls, handle = _count_unet_calls(unet)
    try:
        out = backend.generate(torch.rand(2, backend.channels, 16, 16), ["a photo of a cat"] * 2, s,
                               [torch.Generator().manual_seed(i) for i in range(2)])
    finally:
        handle.remove()
    assert len(calls) == s                   # one UNet call per step (guidance batches cond + uncond)
    assert out.denoise_steps == s
    sched = backend.pipeline.scheduler if which == "sd" else backend.scheduler
    sched.set_timesteps(T)
    assert out.first_timestep == int(sched.timesteps[T - s])
    assert out.images.shape == (2, backend.channels, 16, 16)


def test_unconditional_noising_is_the_closed_form(unc):
    """The UNet's first input is sqrt(abar_t) x + sqrt(1 - abar_t) eps, eps from the image's generator."""
    x01 = torch.rand(2, 3, 16, 16)
    seeds = [11, 12]
    seen = []
    handle = unc.unet.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    try:
        out = unc.generate(x01, None, 4, [torch.Generator().manual_seed(x) for x in seeds])
    finally:
        handle.remove()
    abar = unc.scheduler.alphas_cumprod[out.first_timestep].double()
    eps = torch.stack([torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(x)) for x in seeds]).double()
    expected = abar.sqrt() * (x01.double() * 2 - 1) + (1 - abar).sqrt() * eps
    torch.testing.assert_close(seen[0].double(), expected, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- images in and out

def test_resize_round_trip_keeps_smooth_images():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 12), torch.linspace(0, 1, 12), indexing="ij")
    img = (torch.stack([yy, xx, (yy + xx) / 2]) * 255).round().to(torch.uint8)
    x = to_model_space([img], 48, 3)
    assert x.shape == (1, 3, 48, 48) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    back = from_model_space(x, (12, 12), 3)[0]
    assert back.dtype == torch.uint8 and back.shape == img.shape
    assert (back.int() - img.int()).abs().max() <= 3


def test_grayscale_goes_to_rgb_and_back_to_luma():
    gray = tiny_image_batch(1, 1, (8, 8))[0]
    x = to_model_space([gray], 8, 3)
    assert torch.equal(x[0, 0], x[0, 1]) and torch.equal(x[0, 1], x[0, 2])
    assert torch.equal(from_model_space(x, (8, 8), 1)[0], gray)


@pytest.mark.parametrize("channels,size", [(3, (12, 12)), (1, (8, 8))])
def test_img2img_copies_have_the_dataset_shape_and_all_kept_steps(sd, tmp_path, channels, size):
    data = TinyDataset(n=6, channels=channels, size=size)
    report = generate_copies(data, [4, 1, 2], sd, str(tmp_path / "out"), steps=STEPS, batch_size=2, progress=False)
    assert report.generated == 6 and report.skipped == 0
    records = SyntheticStore(tmp_path / "out").records()
    assert [(r["source"], r["step"]) for r in records] == [(s, t) for s in (1, 2, 4) for t in STEPS]
    for r in records:
        img = SyntheticStore(tmp_path / "out").load_image(r)
        assert img.dtype == torch.uint8 and tuple(img.shape) == (channels, *size)
        assert r["prompt"] == f"a photo of a {data.classes[int(data.targets[r['source']])]}"
        assert r["denoise_steps"] == r["step"] and r["seed"] == derive_seed(0, r["source"], r["step"])
        assert r["guidance_scale"] == 3.0 and r["model"] == sd.model_id
    assert os.path.exists(tmp_path / "out" / "manifest.jsonl")


def test_same_seed_same_images_other_seed_other_images(unc, tmp_path):
    data = TinyDataset(n=4)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        generate_copies(data, [0, 3], unc, str(tmp_path / name), steps=(4,), seed=seed, batch_size=2, progress=False)
    a, b, c = (_store_images(tmp_path / n) for n in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ----------------------------------------------------------------------------- resume and shards

class _DiesAfter:
    """Wraps a backend and raises after ``n`` batches, like a run killed mid-way."""

    def __init__(self, backend, n):
        self.backend, self.left = backend, n

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def generate(self, *args, **kwargs):
        if self.left == 0:
            raise KeyboardInterrupt("killed")
        self.left -= 1
        return self.backend.generate(*args, **kwargs)


def test_resume_after_a_kill_loses_and_duplicates_nothing(unc, tmp_path):
    data = TinyDataset(n=8)
    picked, steps = [0, 2, 3, 5, 7], (2, 4)
    full = generate_copies(data, picked, unc, str(tmp_path / "full"), steps=steps, batch_size=2, progress=False)
    with pytest.raises(KeyboardInterrupt):
        generate_copies(data, picked, _DiesAfter(unc, 2), str(tmp_path / "cut"), steps=steps, batch_size=2,
                        progress=False)
    assert len(SyntheticStore(tmp_path / "cut").records()) == 4            # two batches of two committed
    # a kill between a unit's images and its manifest part: the images are there, the part is not
    os.unlink(tmp_path / "cut" / "parts" / "s002-u000001.jsonl")
    resumed = generate_copies(data, picked, unc, str(tmp_path / "cut"), steps=steps, batch_size=2, progress=False)
    assert resumed.skipped == 2 and resumed.generated == full.generated - 2 == 8
    want, got = _store_images(tmp_path / "full"), _store_images(tmp_path / "cut")
    assert sorted(got) == sorted(want) == sorted((s, t) for s in picked for t in steps)
    assert all(torch.equal(want[k], got[k]) for k in want)
    again = generate_copies(data, picked, unc, str(tmp_path / "cut"), steps=steps, batch_size=2, progress=False)
    assert again.generated == 0 and again.skipped == 10


def test_resume_redoes_a_part_that_lost_records_and_a_damaged_image(unc, tmp_path):
    data = TinyDataset(n=8)
    picked, steps = [0, 2, 3, 5, 7], (2, 4)
    generate_copies(data, picked, unc, str(tmp_path / "full"), steps=steps, batch_size=2, progress=False)
    cut = tmp_path / "cut"
    generate_copies(data, picked, unc, str(cut), steps=steps, batch_size=2, progress=False)
    part = cut / "parts" / "s004-u000001.jsonl"
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:-1]))                       # the part lost its last record
    image = cut / "images" / "s002" / "00000007.png"
    image.write_bytes(image.read_bytes()[:-5])                   # an image lost its tail
    with pytest.warns(UserWarning, match="redone"):
        resumed = generate_copies(data, picked, unc, str(cut), steps=steps, batch_size=2, progress=False)
    assert resumed.generated == 2 + 1 and resumed.skipped == 10 - 3   # the two damaged units, redone whole
    records = SyntheticStore(cut).records()
    keys = [(r["source"], r["step"]) for r in records]
    assert sorted(keys) == sorted((s, t) for s in picked for t in steps) and len(set(keys)) == len(keys)
    want, got = _store_images(tmp_path / "full"), _store_images(cut)
    assert all(torch.equal(want[k], got[k]) for k in want)
    manifest = [json.loads(line) for line in (cut / "manifest.jsonl").read_text().splitlines()]
    assert sorted((r["source"], r["step"]) for r in manifest) == sorted(keys)


def test_resume_with_other_settings_is_refused(unc, tmp_path):
    data = TinyDataset(n=4)
    generate_copies(data, [1], unc, str(tmp_path), steps=(2,), seed=0, progress=False)
    with pytest.raises(StoreMismatchError, match="seed"):
        generate_copies(data, [1], unc, str(tmp_path), steps=(2,), seed=1, progress=False)


def test_shards_cover_everything_exactly_once(unc, tmp_path):
    data = TinyDataset(n=9)
    picked, steps = [0, 1, 4, 5, 8], (2, 3)
    generate_copies(data, picked, unc, str(tmp_path / "one"), steps=steps, batch_size=2, progress=False)
    done = [generate_copies(data, picked, unc, str(tmp_path / "many"), steps=steps, batch_size=2, shard=f"{i}/3",
                            progress=False).generated for i in range(3)]
    assert sum(done) == len(picked) * len(steps) and min(done) > 0
    want, got = _store_images(tmp_path / "one"), _store_images(tmp_path / "many")
    assert sorted(got) == sorted(want)
    assert all(torch.equal(want[k], got[k]) for k in want)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 500), max_size=60), st.integers(1, 7), st.integers(1, 5), st.integers(1, 4))
def test_shard_plan_is_a_partition(sources, batch, num_steps, num_shards):
    steps = list(range(1, num_steps + 1))
    units = plan_units(sources, steps, batch)
    items = [(s, u.step) for u in units for s in u.sources]
    assert sorted(items) == sorted((s, t) for s in set(sources) for t in steps)
    sharded = [(s, u.step) for i in range(num_shards) for u in shard_units(units, (i, num_shards)) for s in u.sources]
    assert sorted(sharded) == sorted(items)


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError):
            parse_shard(bad)


# ----------------------------------------------------------------------------- datasets for training

@pytest.fixture(scope="module")
def filled_store(tmp_path_factory, unc_path):
    backend = load_backend(unc_path, total_steps=T)
    data = TinyDataset(n=7)
    root = str(tmp_path_factory.mktemp("store"))
    generate_copies(data, [1, 4, 6], backend, root, steps=(2, 3, 5, 6), batch_size=3, progress=False)
    return data, root


def test_combined_dataset_holds_originals_then_copies_at_chosen_steps(filled_store):
    data, root = filled_store
    combined = SyntheticAugmentedDataset(data, root, steps=[3, 6])
    assert combined.k == 3 and len(combined) == len(data) + 3 * 2
    store = SyntheticStore(root)
    by_key = {(r["source"], r["step"]): r for r in store.records()}
    for i in range(len(data)):
        image, label = combined[i]
        assert torch.equal(image, data.images[i]) and label == int(data.targets[i]) and not combined.is_synthetic[i]
    copies = [(int(combined.source[i]), combined.records[i - len(data)]["step"]) for i in range(len(data), len(combined))]
    assert sorted(copies) == sorted((s, t) for s in (1, 4, 6) for t in (3, 6))
    for i in range(len(data), len(combined)):
        image, label = combined[i]
        source = int(combined.source[i])
        assert combined.is_synthetic[i] and label == int(data.targets[source])
        assert torch.equal(image, store.load_image(by_key[(source, combined.records[i - len(data)]["step"])]))
        assert image.dtype == torch.uint8 and image.shape == data.images[source].shape
    flipped = combined.with_transform(lambda im: im.flip(-1))
    assert torch.equal(flipped[len(data)][0], combined[len(data)][0].flip(-1))
    assert torch.bincount(combined.targets, minlength=3).sum() == len(combined)


def test_combined_dataset_k_picks_steps_and_checks_completeness(filled_store, tmp_path):
    data, root = filled_store
    assert SyntheticAugmentedDataset(data, root, k=5).steps == (2, 3, 5, 6)
    assert len(SyntheticAugmentedDataset(data, root).records) == 12
    with pytest.raises(ValueError, match="k - 1"):
        SyntheticAugmentedDataset(data, root, k=3)
    with pytest.raises(ValueError, match="not in the store"):
        SyntheticAugmentedDataset(data, root, steps=[4])


def test_combined_dataset_refuses_a_store_missing_whole_units(unc, tmp_path):
    data = TinyDataset(n=7)
    generate_copies(data, [1, 4, 6], unc, str(tmp_path), steps=(2, 3), batch_size=2, progress=False)
    for step in (2, 3):  # the unit holding item 6, at every step: each step still holds the same items
        os.unlink(tmp_path / "parts" / f"s{step:03d}-u000001.jsonl")
    with pytest.raises(ValueError, match="holds copies of 2 of the 3 selected images"):
        SyntheticAugmentedDataset(data, str(tmp_path))


def test_upsample_baseline_counts(filled_store):
    data, _ = filled_store
    picked = [1, 4, 6]
    for k in (1, 2, 5):
        up = UpsampledDataset(data, picked, k=k)
        counts = torch.bincount(up.source, minlength=len(data))
        assert len(up) == len(data) + len(picked) * (k - 1)
        assert all(int(counts[i]) == (k if i in picked else 1) for i in range(len(data)))
        for i in range(len(up)):
            image, label = up[i]
            assert torch.equal(image, data.images[int(up.source[i])]) and label == int(data.targets[up.source[i]])


# ----------------------------------------------------------------------------- clear errors

def test_a_folder_that_is_not_a_pipeline_is_named(tmp_path):
    with pytest.raises(NotADiffusersPipelineError, match="model_index.json"):
        load_backend(str(tmp_path))
    with pytest.raises(NotADiffusersPipelineError, match="not a folder"):
        load_backend(str(tmp_path / "missing"))
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", '
                                               '"UNet2DConditionModel"]}')
    with pytest.raises(NotADiffusersPipelineError, match="could not load"):
        load_backend(str(tmp_path))


def test_a_class_without_a_name_is_refused(sd, tmp_path):
    data = TinyDataset(n=3, classes=("cat", "", "car"))
    with pytest.raises(MissingClassNameError, match="class 1"):
        generate_copies(data, [0, 1], sd, str(tmp_path), steps=(2,), progress=False)
    data.classes = ["cat"]
    with pytest.raises(MissingClassNameError, match="class 2"):
        generate_copies(data, [2], sd, str(tmp_path), steps=(2,), progress=False)


@pytest.mark.parametrize("bad,match", [(lambda im: im.float(), "uint8"),
                                       (lambda im: torch.cat([im, im[:1]]), "C, H, W"),
                                       (lambda im: im[0], "C, H, W")])
def test_images_of_the_wrong_mode_are_refused(unc, tmp_path, bad, match):
    data = TinyDataset(n=2)
    data.images = [bad(im) for im in data.images]
    with pytest.raises(ValueError, match=match):
        generate_copies(data, [0], unc, str(tmp_path), steps=(2,), progress=False)


def test_images_of_different_sizes_in_one_batch_are_refused(unc, tmp_path):
    data = TinyDataset(n=2)
    data.images = [data.images[0], data.images[1][:, :8, :8]]
    with pytest.raises(ValueError, match="share a shape"):
        generate_copies(data, [0, 1], unc, str(tmp_path), steps=(2,), batch_size=2, progress=False)


def test_an_unwritable_output_folder_is_named(unc, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="not writable"):
        generate_copies(TinyDataset(n=2), [0], unc, str(blocker / "out"), steps=(2,), progress=False)


def test_steps_out_of_range_are_refused(unc, tmp_path):
    with pytest.raises(ValueError, match="steps"):
        generate_copies(TinyDataset(n=2), [0], unc, str(tmp_path), steps=(T + 1,), progress=False)
