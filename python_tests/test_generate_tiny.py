"""generate.model: tiny: an untrained pipeline built once into the cache, loaded like any folder, with a warning."""
import os
import warnings

import pytest
import torch

pytest.importorskip("diffusers")

from augcore.generate.models import load_backend  # noqa: E402
from augcore.generate.tiny import UntrainedModelWarning, build_tiny_img2img, cached_tiny_pipeline  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _copies(backend):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    generators = [torch.Generator().manual_seed(s) for s in (3, 4)]
    return backend.generate(images, ["a photo of a cat", "a photo of a dog"], 2, generators).images


def test_tiny_warns_is_cached_once_and_equals_a_freshly_built_pipeline(cache, tmp_path):
    with pytest.warns(UntrainedModelWarning, match="images it makes are noise"):
        tiny = load_backend("tiny", total_steps=10)
    assert tiny.model_id == "tiny" and tiny.kind == "img2img"
    (folder,) = [p for p in cache.iterdir()]
    assert (folder / "model_index.json").is_file() and folder.name.startswith("tiny-img2img-")
    stamp = (folder / "model_index.json").stat().st_mtime_ns

    with pytest.warns(UntrainedModelWarning):
        again = load_backend("tiny", total_steps=10)
    assert [p.name for p in cache.iterdir()] == [folder.name]   # no rebuild, no staging folder left behind
    assert (folder / "model_index.json").stat().st_mtime_ns == stamp

    # the independent reference: the builder run by hand into another folder, loaded by its path
    by_path = load_backend(build_tiny_img2img(str(tmp_path / "by_hand")), total_steps=10)
    expected = _copies(by_path)
    torch.testing.assert_close(_copies(tiny), expected, rtol=0, atol=0)
    torch.testing.assert_close(_copies(again), expected, rtol=0, atol=0)


def test_tiny_unconditional_and_bad_kind(cache):
    with pytest.warns(UntrainedModelWarning):
        backend = load_backend("tiny", kind="unconditional", total_steps=10)
    assert backend.kind == "unconditional" and backend.model_id == "tiny"
    with pytest.raises(ValueError, match="kind must be one of .* got 'video'"):
        cached_tiny_pipeline("video")


def test_a_local_folder_named_tiny_is_reached_by_its_path(cache, tmp_path, monkeypatch):
    build_tiny_img2img(str(tmp_path / "tiny"))
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedModelWarning)
        backend = load_backend(os.path.join(".", "tiny"), total_steps=10)
    assert backend.model_id == "./tiny" and not cache.exists()
