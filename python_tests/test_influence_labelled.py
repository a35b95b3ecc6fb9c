"""MNIST's IDX loader on real-format files, the all-conv CNN, the paper-augmenter policy and the labelled-fraction protocol."""
import gzip
import struct

import numpy as np
import pytest
import torch

from augcore.checks import CorruptFileError


def write_idx(path, array, magic, compress=False):
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("layout,compress", [("mnist", False), ("MNIST/raw", True)])
def test_mnist_reads_idx_files_as_torchvision_does(tmp_path, layout, compress):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    from augcore.data import load_dataset
    rng = np.random.RandomState(0)
    folder = tmp_path / layout
    folder.mkdir(parents=True)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.randint(0, 256, (n, 28, 28)), 2051, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", rng.randint(0, 10, n), 2049, compress)
    train = load_dataset("mnist", tmp_path, train=True)
    test = load_dataset("mnist", tmp_path, train=False)
    assert len(train) == 12 and len(test) == 5 and train.channels == 1 and train.image_size == (28, 28)
    if not compress:   # torchvision reads the plain files: the peer reference
        assert torch.equal(train._images.images[:, 0], read_image_file(str(folder / "train-images-idx3-ubyte")))
        assert torch.equal(train.targets, read_label_file(str(folder / "train-labels-idx1-ubyte")).long())


def test_mnist_rejects_bad_files(tmp_path):
    from augcore.data import DatasetNotFoundError, load_dataset
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), 2049)   # the labels' magic
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3), 2049)
    with pytest.raises(CorruptFileError, match="magic number 2049"):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), 2051)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptFileError, match="truncated"):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 28, 28)), 2051)
    with pytest.raises(CorruptFileError, match="3 labels for the 4 images"):
        load_dataset("mnist", tmp_path)


def test_allconv_is_registered_and_its_head_is_the_last_layer():
    from augcore.models import build_model
    model = build_model("allconv", 10, in_channels=1, image_size=28).eval()
    logits, embedding = model(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, model.classifier(embedding))
    assert len([m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]) == 4


def test_labelled_subset_is_stratified_and_seeded():
    from augcore.apps.labelled_fraction import labelled_subset
    labels = torch.arange(1000) % 10
    rows = labelled_subset(labels, 0.01, seed=3)
    assert torch.bincount(labels[rows], minlength=10).tolist() == [1] * 10
    assert torch.equal(rows, labelled_subset(labels, 0.01, seed=3))
    assert not torch.equal(rows, labelled_subset(labels, 0.01, seed=4))


def test_paper_tables_and_presets():
    from augcore.apps.labelled_fraction import LabelledFractionSettings, paper_value
    assert paper_value("mnist", 0.01, "proposed") == 96.7 and paper_value("cifar10", 1.0, "none") == 87.8
    assert paper_value("digits", 0.1, "none") is None
    mnist = LabelledFractionSettings.paper("mnist")
    assert mnist.model == "allconv" and tuple(mnist.fractions) == (0.01, 0.10)
    cifar = LabelledFractionSettings.paper("cifar10")
    assert cifar.model == "resnet56" and tuple(cifar.fractions) == (0.10, 1.00) and cifar.weight_decay == 1e-4
    with pytest.raises(ValueError, match="methods"):
        LabelledFractionSettings(methods=("bogus",)).check()


def _run(tmp_path, preset):
    from augcore.apps.labelled_fraction import LabelledFractionSettings, run_labelled_fraction
    settings = LabelledFractionSettings.preset(preset, out=str(tmp_path), progress=False)
    return settings, run_labelled_fraction(settings, echo=lambda s: None)


def test_labelled_fraction_protocol_runs_on_digits(tmp_path):
    from augcore.influence.generator import load_generator
    settings, summary = _run(tmp_path, "digits_smoke")
    assert [c["method"] for c in summary["cells"]] == ["none", "heuristic", "proposed"]
    assert all(0 <= c["top1_mean"] <= 100 for c in summary["cells"])
    assert load_generator(settings.generator_path).shape == (1, 8, 8)
    assert (tmp_path / "labelled_fraction_summary.json").exists()


@pytest.mark.long
def test_labelled_fraction_protocol_digits_preset(tmp_path):
    _, summary = _run(tmp_path, "digits")
    by = {(c["method"], c["fraction"]): c["top1_mean"] for c in summary["cells"]}
    assert by[("heuristic", 0.3)] > by[("none", 0.3)]


def test_influence_policy_paper_augmenter_augments_every_example(tmp_path, small_digits):
    from augcore.config import ConfigError
    from augcore.influence.generator import GeneratorAugmenter, TransformGenerator, save_generator
    from augcore.train.trainer import Trainer
    from conftest import small_train_config
    torch.manual_seed(0)
    save_generator(TransformGenerator(1, 8, 8), tmp_path / "g.pt")
    options = {"val_fraction": 0.2, "augmenter": "paper", "generator": str(tmp_path / "g.pt"), "augment_all": True,
               "augmenter_epochs": 1}
    cfg = small_train_config(augment={"mode": "influence", "fraction": 0.1, "reselect_every": 1, "strong": "none",
                                      "selector": options}, schedule={"epochs": 1, "milestones": []})
    trainer = Trainer(cfg, train_set=small_digits[0], test_set=small_digits[1])
    generator_before = {k: v.clone() for k, v in trainer.policy.augmenter.generator.state_dict().items()}
    estimator_before = {k: v.clone() for k, v in trainer.policy.augmenter.estimator.state_dict().items()}
    trainer.fit()
    augmenter = trainer.policy.augmenter
    assert isinstance(augmenter, GeneratorAugmenter)
    assert len(trainer.selection) == len(trainer.policy.train_rows)          # every training example
    assert all(torch.equal(v, generator_before[k]) for k, v in augmenter.generator.state_dict().items())
    assert any(not torch.equal(v, estimator_before[k]) for k, v in augmenter.estimator.state_dict().items())
    with pytest.raises(ConfigError, match="augment.selector.generator"):
        small_train_config(augment={"mode": "influence", "selector": {"augmenter": "paper"}})


def test_influence_policy_with_one_example_per_class_names_val_fraction(small_digits):
    from conftest import small_train_config

    from augcore.train import Trainer

    train, test = small_digits
    labels = torch.as_tensor(train.targets)
    one_each = torch.stack([(labels == c).nonzero()[0, 0] for c in torch.unique(labels)])
    cfg = small_train_config(augment={"mode": "influence", "fraction": 0.5, "strong": "none"})
    with pytest.raises(ValueError, match=r"augment\.policy_options\.val_fraction: the validation split is empty"):
        Trainer(cfg, train_set=train.subset(one_each), test_set=test)
