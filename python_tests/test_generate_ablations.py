"""Targeted synthetic augmentation's ablations and model kinds (Nguyen et al.): the selection
methods, pure-noise initialisation, pixel-space back ends (class-conditional UNet2DModel,
DeepFloyd-IF-style img2img without a VAE), the retrain's own augmentation, the mini-batch
gradient variance, and the shipped configs. Tiny random models: their images are noise."""
import copy
import json

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from augcore.config import ConfigError  # noqa: E402
from augcore.configs import resolve_config  # noqa: E402
from augcore.generate import SyntheticStore, generate_copies, load_backend, resolve_steps  # noqa: E402
from augcore.generate.models import NotADiffusersPipelineError  # noqa: E402
from augcore.generate.pipeline import (SelectConfig, pipeline_config, prepare, run_pipeline,  # noqa: E402
                                       select_examples)
from augcore.generate.schedule import partial_timesteps, strength_for_steps  # noqa: E402
from augcore.generate.tiny import (UNTRAINED_NOTICE, UntrainedModelWarning,  # noqa: E402
                                   build_tiny_class_conditional, build_tiny_pixel_img2img, build_tiny_unconditional)
from augcore.selection import (HighLossSelector, MisclassifiedSelector, RandomSelector,  # noqa: E402
                               SlowLearnableSelector, random_stats)
from augcore.train.metrics import minibatch_gradient_variance  # noqa: E402

T = 10


class ImageItems(torch.utils.data.Dataset):
    """(uint8 (3, H, W) image, label) items of three named classes, labels 0, 1, 2, 0, ..."""

    def __init__(self, n, size):
        self.images = torch.randint(0, 256, (n, 3, *size), generator=torch.Generator().manual_seed(0),
                                    dtype=torch.uint8)
        self.targets = torch.arange(n) % 3
        self.classes = ["cat", "dog", "car"]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.images[i], int(self.targets[i])


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cc_path(tmp_path_factory):
    return build_tiny_class_conditional(str(tmp_path_factory.mktemp("tiny_cc")), num_classes=3, resolution=16)


@pytest.fixture(scope="module")
def if_path(tmp_path_factory):
    return build_tiny_pixel_img2img(str(tmp_path_factory.mktemp("tiny_if")), resolution=16)


def _gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


# ------------------------------------------------------------------ selection methods
def test_select_methods_are_the_library_selectors():
    stats = random_stats(600, 6, seed=3)
    slow = SlowLearnableSelector(features="probs", restarts=3).select(stats, epoch=2, seed=5)
    cfg = SelectConfig(restarts=3)
    pick = lambda method, **kw: select_examples(SelectConfig(method=method, restarts=3, **kw), stats,  # noqa: E731
                                                epoch=2, seed=5)
    assert torch.equal(select_examples(cfg, stats, epoch=2, seed=5).indices, slow.indices)
    fraction = len(slow) / len(stats)
    for method, selector in (("high_loss", HighLossSelector), ("random", RandomSelector)):
        got = pick(method)   # same size as the slow-learnable selection (the paper's equal-cost comparison)
        assert len(got) == len(slow) and got.info["size_from"] == "slow_learnable"
        assert torch.equal(got.indices, selector(fraction).select(stats, epoch=2, seed=5).indices)
        assert len(pick(method, fraction=0.1)) == 60
    assert torch.equal(pick("misclassified").indices, MisclassifiedSelector().select(stats).indices)
    assert torch.equal(pick("all").indices, torch.arange(600))


def test_select_config_errors_name_the_key():
    raw = {"separate": {"epoch": 1}}
    with pytest.raises(ConfigError, match="select.method: must be one of"):
        pipeline_config({**raw, "select": {"method": "coreset"}})
    with pytest.raises(ConfigError, match="select.fraction: sets the size of high_loss and random"):
        pipeline_config({**raw, "select": {"method": "slow_learnable", "fraction": 0.3}})
    with pytest.raises(ConfigError, match="select.fraction: must lie in"):
        pipeline_config({**raw, "select": {"method": "random", "fraction": 1.5}})
    with pytest.raises(ConfigError, match="generate.init: must be one of"):
        pipeline_config({**raw, "generate": {"init": "zeros"}})


# ------------------------------------------------------------------ pixel-space back ends
def test_pure_noise_init_is_diffusers_own_ddpm_sampler(tmp_path):
    from diffusers import DDPMPipeline

    path = build_tiny_unconditional(str(tmp_path / "unc"), resolution=8, scheduler="ddpm")
    backend = load_backend(path, total_steps=T)
    out = backend.generate(torch.rand(2, 3, 8, 8), None, 3, _gens(1, 2), init="noise")
    assert out.denoise_steps == T and out.first_timestep == 900
    reference = DDPMPipeline.from_pretrained(path)(batch_size=2, generator=_gens(1, 2), num_inference_steps=T,
                                                   output_type="np").images
    torch.testing.assert_close(out.images, torch.from_numpy(reference).permute(0, 3, 1, 2), rtol=0, atol=1e-6)


def test_class_conditional_unet_follows_each_images_label(cc_path, tmp_path):
    from diffusers import DDPMPipeline, UNet2DModel

    backend = load_backend(cc_path, total_steps=T)
    assert backend.kind == "class_conditional" and backend.num_classes == 3 and backend.resolution == 16
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    both = backend.generate(images, None, 4, _gens(7, 8), labels=[0, 2]).images
    alone = [backend.generate(images[i:i + 1], None, 4, _gens(s), labels=[c]).images
             for i, (s, c) in enumerate(((7, 0), (8, 2)))]
    torch.testing.assert_close(both, torch.cat(alone), rtol=0, atol=1e-5)   # labels routed per image
    other = backend.generate(images, None, 4, _gens(7, 8), labels=[1, 1]).images
    assert (other - both).abs().max() > 1e-3                                 # and they condition the model

    # with its class embedding zeroed it is the unconditional UNet: diffusers' DDPM sampler is the reference
    with torch.no_grad():
        backend.unet.class_embedding.weight.zero_()
    twin = UNet2DModel.from_config({**backend.unet.config, "num_class_embeds": None})
    missing, unexpected = twin.load_state_dict(backend.unet.state_dict(), strict=False)
    assert not missing and unexpected == ["class_embedding.weight"]
    DDPMPipeline(unet=twin, scheduler=backend.scheduler).save_pretrained(str(tmp_path / "twin"))
    reference = DDPMPipeline.from_pretrained(str(tmp_path / "twin"))(
        generator=_gens(3), num_inference_steps=T, output_type="np").images
    got = backend.generate(images[:1], None, 2, _gens(3), labels=[2], init="noise").images
    torch.testing.assert_close(got, torch.from_numpy(reference).permute(0, 3, 1, 2), rtol=0, atol=1e-6)


def test_class_conditional_refusals(cc_path, tmp_path):
    backend = load_backend(cc_path, total_steps=T)
    with pytest.raises(ValueError, match="labels .* are required"):
        backend.generate(torch.rand(1, 3, 16, 16), None, 2, _gens(0))
    with pytest.raises(ValueError, match="class 3 is outside the model's num_class_embeds = 3"):
        backend.generate(torch.rand(1, 3, 16, 16), None, 2, _gens(0), labels=[3])
    with pytest.raises(NotADiffusersPipelineError, match="asked for a unconditional model"):
        load_backend(cc_path, kind="unconditional", total_steps=T)
    plain = build_tiny_unconditional(str(tmp_path / "plain"), resolution=8)
    with pytest.raises(NotADiffusersPipelineError, match="asked for a class_conditional model"):
        load_backend(plain, kind="class_conditional", total_steps=T)


def test_pixel_space_img2img_without_vae_runs_the_pipeline_at_unet_resolution(if_path):
    from diffusers import IFImg2ImgPipeline

    backend = load_backend(if_path, total_steps=T)
    assert type(backend.pipeline).__name__ == "IFImg2ImgPipeline"
    assert backend.pixel_space and backend.resolution == 16          # unet.sample_size, no VAE factor
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    prompts = ["a photo of a cat", "a photo of a dog"]
    out = backend.generate(images, prompts, 3, _gens(1, 2))
    timesteps = partial_timesteps(backend.pipeline.scheduler, 3, T)
    assert out.denoise_steps == 3 and out.first_timestep == int(timesteps[0])
    # the reference: the pipeline called by hand on [-1, 1] tensors (its own convention)
    pipe = IFImg2ImgPipeline.from_pretrained(if_path)
    pipe.set_progress_bar_config(disable=True)
    raw = pipe(prompt=prompts, image=images * 2 - 1, strength=strength_for_steps(3, T), num_inference_steps=T,
               guidance_scale=3.0, generator=_gens(1, 2), output_type="pt", clean_caption=False).images
    torch.testing.assert_close(out.images, ((raw + 1) / 2).clamp(0, 1), rtol=0, atol=1e-6)
    noise = backend.generate(images, prompts, 3, _gens(1, 2), init="noise")
    assert noise.denoise_steps == T and type(backend._text2image).__name__ == "IFPipeline"


def test_driver_passes_labels_and_records_the_noise_init(cc_path, tmp_path):
    data = ImageItems(n=6, size=(12, 12))
    backend = load_backend(cc_path, total_steps=T)
    generate_copies(data, [0, 4, 5], backend, str(tmp_path / "s"), steps=(2, 3), batch_size=2, progress=False,
                    init="noise")
    store = SyntheticStore(tmp_path / "s")
    assert store.settings()["init"] == "noise"
    records = store.records()
    assert {(r["source"], r["label"]) for r in records} == {(0, 0), (4, 1), (5, 2)}
    assert all(r["init"] == "noise" and r["strength"] is None and r["denoise_steps"] == T for r in records)
    # the copy of item 5 is its class's sample from noise: a lone call with label 2 gives the same image
    (rec,) = [r for r in records if r["source"] == 5 and r["step"] == 3]
    alone = backend.generate(torch.zeros(1, 3, 16, 16), None, 3, _gens(rec["seed"]), labels=[2], init="noise")
    from augcore.generate.imaging import from_model_space
    assert torch.equal(store.load_image(rec), from_model_space(alone.images, (12, 12), 3)[0])
    with pytest.raises(Exception, match="init"):   # a store of noise copies is not resumed as image copies
        generate_copies(data, [0, 4, 5], backend, str(tmp_path / "s"), steps=(2, 3), batch_size=2, progress=False)


def test_k_picks_the_papers_steps():
    stored = (40, 50, 70, 80)
    assert resolve_steps(stored, None, 5) == (40, 50, 70, 80)      # CIFAR, Table 4
    assert resolve_steps(stored, None, 4) == (50, 70, 80)          # Tiny-ImageNet, Table 4
    assert resolve_steps(stored, None, 2) == (50,)                 # Table 6's best for k = 2
    with pytest.raises(ValueError, match="cannot choose k - 1 = 2 steps"):
        resolve_steps(stored, None, 3)                              # the paper names no steps for k = 3


# ------------------------------------------------------------------ the pipeline
def _digits_raw(tmp_path, **sections):
    with open(resolve_config("targeted_synthetic_digits")) as fh:
        raw = yaml.safe_load(fh)
    raw["train"]["schedule"]["epochs"] = 2
    raw["out"] = str(tmp_path / "run")
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


@pytest.fixture(scope="module")
def digits():
    from augcore.data import load_dataset
    return load_dataset("digits", train=True).subset(torch.arange(120))


def test_retrain_keeps_the_users_augmentation(tmp_path, digits, monkeypatch):
    raw = _digits_raw(tmp_path, retrain={"method": "upsample", "k": 2})
    raw["train"]["augment"] = {"mode": "full", "strong": "trivialaugment", "placement": "inplace"}
    result = run_pipeline(raw, train_set=digits)
    retrain = yaml.safe_load((tmp_path / "run" / "retrain" / "config.yaml").read_text())
    assert retrain["augment"]["mode"] == "full" and retrain["augment"]["strong"] == "trivialaugment"
    # every example of the upsampled set went through TrivialAugment in place, every epoch
    assert all(r["num_augmented"] == r["train_examples"] == 120 + result.selected for r in result.retrain.rows)
    separate = yaml.safe_load((tmp_path / "run" / "separate" / "config.yaml").read_text())
    assert separate["augment"]["mode"] == "none"                     # selection comes from plain training

    # no augment section: weak only; the tiny model's copies are said to be noise in the results too
    monkeypatch.setenv("AUGCORE_CACHE", str(tmp_path / "cache"))
    plain = _digits_raw(tmp_path / "plain", generate={"kind": "class_conditional", "steps": [2]},
                        retrain={"method": "synthetic", "k": 2})
    with pytest.warns(UntrainedModelWarning):
        rows = run_pipeline(plain, train_set=digits).retrain.rows
    assert all(r["num_augmented"] == 0 for r in rows)
    summary = json.loads((tmp_path / "plain" / "run" / "summary.json").read_text())
    assert summary["note"] == UNTRAINED_NOTICE


def test_prepared_run_retrains_every_variant_on_one_selection(tmp_path, digits, cc_path):
    raw = _digits_raw(tmp_path, select={"method": "random", "fraction": 0.25},
                      generate={"model": cc_path, "kind": "auto", "steps": [2, 3], "init": "noise"})
    with pytest.raises(ValueError, match="is outside the model's num_class_embeds = 3"):   # digits: 10 classes
        prepare(raw, train_set=digits)
    # the separating run's checkpoint is reused, the selection saved, the copies made once
    build_tiny_class_conditional(str(tmp_path / "cc10"), num_classes=10, resolution=16, channels=1)
    raw["generate"]["model"] = str(tmp_path / "cc10")
    run = prepare(raw, train_set=digits)
    assert len(run.selection) == 30 and run.generated == 60
    assert json.loads((tmp_path / "run" / "synthetic" / "store.json").read_text())["init"] == "noise"
    sam = run.retrain(method="synthetic", k=3, sam_rho=0.1)
    assert sam.rows[-1]["train_examples"] == 120 + 2 * 30
    assert yaml.safe_load((tmp_path / "run" / "retrain_synthetic_k3_rho0.1" / "config.yaml").read_text()
                          )["optim"]["sam_rho"] == 0.1
    upsample = run.retrain(method="upsample", k=2, sam_rho=0.0)
    assert upsample.rows[-1]["train_examples"] == 150
    original = run.retrain(method="none")
    assert original.rows[-1]["train_examples"] == 120
    again = run.retrain(method="none")                              # finished: read back, not retrained
    assert json.dumps(again.rows) == json.dumps(original.rows)
    assert (tmp_path / "run" / "retrain_none_rho0" / "training_data.json").is_file()
    one_step = run.retrain(method="synthetic", k=2, steps=[3])       # the step sweep: one folder per step
    assert one_step.rows[-1]["train_examples"] == 150
    assert (tmp_path / "run" / "retrain_synthetic_k2_rho0_s3").is_dir()
    # another selection in the same folders: a finished retraining on other data is not passed off as this one
    other = prepare({**raw, "select": {"method": "random", "fraction": 0.5}, "retrain": {"method": "upsample"}},
                    train_set=digits)
    with pytest.raises(ValueError, match="holds a retraining on other data .*selection_sha256"):
        other.retrain(method="upsample", k=2, sam_rho=0.0)
    with pytest.raises(ConfigError, match="retrain.method"):
        run.retrain(method="mixup")


def test_shipped_configs_hold_the_papers_k_and_steps():
    for name, dataset, k, steps in (("targeted_synthetic", "cifar10", 5, [40, 50, 70, 80]),
                                    ("targeted_synthetic_cifar100", "cifar100", 5, [40, 50, 70, 80]),
                                    ("targeted_synthetic_tinyimagenet", "tiny_imagenet", 4, [50, 70, 80])):
        with open(resolve_config(name)) as fh:
            config = pipeline_config(yaml.safe_load(fh))
        assert config.train["data"]["name"] == dataset
        assert config.retrain.k == k and config.generate.steps == steps
        assert resolve_steps(steps, None, k) == tuple(steps)


# ------------------------------------------------------------------ gradient variance (Fig. 7)
def test_gradient_variance_is_the_brute_force_value():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(23, 5, generator=gen), torch.randint(0, 3, (23,), generator=gen)
    model = torch.nn.Linear(5, 3)
    batches = [(x[i:i + 5], y[i:i + 5]) for i in range(0, 23, 5)]   # 4 full batches and one of 3
    value = minibatch_gradient_variance(list(model.parameters()), batches,
                                        lambda b: torch.nn.functional.cross_entropy(model(b[0]), b[1]),
                                        batch_size=5)
    # float64, per-example gradients of softmax cross-entropy written out: (p - onehot) [x, 1]
    w, b = model.weight.detach().double(), model.bias.detach().double()
    xd = x.double().numpy()
    p = torch.softmax(x.double() @ w.T + b, 1).numpy()
    err = p - np.eye(3)[y.numpy()]
    per_example = np.concatenate([np.einsum("nc,nd->ncd", err, xd).reshape(23, -1), err], 1)
    full = per_example.mean(0)                                     # all 23, the short batch included
    expected = np.mean([np.sum((per_example[i:i + 5].mean(0) - full) ** 2) for i in range(0, 20, 5)])
    assert value == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="no mini-batch of batch_size = 30"):
        minibatch_gradient_variance(list(model.parameters()), batches,
                                    lambda b: torch.nn.functional.cross_entropy(model(b[0]), b[1]), batch_size=30)


def test_gradient_variance_is_logged_without_changing_the_run(digits):
    from augcore.train.config import config_from_dict
    from augcore.train.trainer import Trainer

    raw = {"data": {"name": "digits"}, "model": {"name": "small_cnn"}, "augment": {"mode": "none"},
           "optim": {"lr": 0.05, "batch_size": 32}, "schedule": {"epochs": 2},
           "run": {"seed": 1, "device": "cpu", "progress": False}}
    plain = Trainer(config_from_dict(raw), train_set=digits).fit().rows
    logged_raw = copy.deepcopy(raw)
    logged_raw["run"]["grad_variance"] = True
    logged = Trainer(config_from_dict(logged_raw), train_set=digits).fit().rows
    timing = ("epoch_time", "selection_time", "selector_time", "inference_time")
    def kept(row, drop):
        return json.dumps({k: v for k, v in row.items() if k not in drop}, sort_keys=True)

    assert len(plain) == len(logged) == 2
    for a, b in zip(plain, logged):
        assert b["grad_variance"] > 0
        assert kept(a, timing) == kept(b, timing + ("grad_variance",))


# ------------------------------------------------------------------ FID (Table 6), from a local weights file
@pytest.fixture
def inception_weights(tmp_path, monkeypatch):
    """A randomly initialised torch-fidelity InceptionV3 saved like its real weights file;
    any download attempt fails the test."""
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    pytest.importorskip("torchmetrics")

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    with monkeypatch.context() as patch:   # build once without weights to load
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, strict=True: None)
        patch.setattr(fe, "load_state_dict_from_url", lambda *args, **kwargs: None)
        torch.manual_seed(0)
        torch.save(fe.FeatureExtractorInceptionV3("inception-v3-compat", ["64"]).state_dict(), tmp_path / "w.pth")
    monkeypatch.setattr(fe, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    return str(tmp_path / "w.pth"), fe


def test_store_fid_is_the_frechet_distance_of_inception_features(inception_weights, cc_path, tmp_path):
    from augcore.generate import frechet_inception_distance, store_fid

    weights, fe = inception_weights
    data = ImageItems(n=6, size=(12, 12))
    generate_copies(data, [0, 1, 3, 4, 5], load_backend(cc_path, total_steps=T), str(tmp_path / "s"), steps=(4,),
                    batch_size=5, progress=False)
    got = store_fid(data, tmp_path / "s", weights=weights, feature=64)
    # the reference: torch-fidelity's own extractor, then the Fréchet distance in float64 written out
    # with symmetric square roots: ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2
    extractor = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["64"], feature_extractor_weights_path=weights)
    records = sorted(SyntheticStore(tmp_path / "s").records(), key=lambda r: r["source"])
    with torch.no_grad():
        real = extractor(torch.stack([data.images[r["source"]] for r in records]))[0].double().numpy()
        fake = extractor(torch.stack([SyntheticStore(tmp_path / "s").load_image(r) for r in records]))[0]
    fake = fake.double().numpy()

    def psd_sqrt(a):
        w, v = np.linalg.eigh((a + a.T) / 2)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = psd_sqrt(s1)
    expected = (((real.mean(0) - fake.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2)
                - 2 * np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum())
    assert list(got) == [4] and got[4] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(FileNotFoundError, match="weights"):
        frechet_inception_distance(data.images, data.images, weights=str(tmp_path / "none.pth"))
    with pytest.raises(ValueError, match="fake: at least 2 images"):
        frechet_inception_distance(data.images, data.images[:1], weights=weights)
    with pytest.raises(ValueError, match="feature must be one of"):
        frechet_inception_distance(data.images, data.images, weights=weights, feature=100)
