"""model.weights: local state dicts round-trip through every accepted layout, and what does not fit is named."""
import hashlib

import pytest
import torch
import torchvision
from conftest import small_train_config

from augcore.checks import CorruptFileError
from augcore.config import ConfigError
from augcore.io import atomic_torch_save
from augcore.models import build_model, load_weights, read_state_dict
from augcore.train import Trainer


def _model(seed, classes=10, name="resnet20"):
    torch.manual_seed(seed)
    return build_model(name, classes, in_channels=1, image_size=8).eval()


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _save_plain(state, path):
    torch.save(state, path)


def _save_safetensors(state, path):
    from safetensors.torch import save_file
    save_file(state, str(path))


def _save_wrapped_ddp(state, path):  # what a DDP training script often writes
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)


@pytest.mark.parametrize("save", [_save_plain, _save_safetensors, atomic_torch_save, _save_wrapped_ddp])
def test_round_trip_gives_the_same_model(tmp_path, save):
    source, target = _model(0), _model(1)
    assert not _same(source, target)
    path = tmp_path / "weights.bin"  # the format is read from the content, not the name
    save(source.state_dict(), path)
    assert load_weights(target, path) == []
    assert _same(source, target)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(source(x)[0], target(x)[0])


def test_a_new_classifier_over_pretrained_features(tmp_path):
    # the coreset paper's Caltech-256 runs: ImageNet ResNet-18 weights (1000 classes, ImageNet stem), 257 classes
    imagenet = torchvision.models.resnet18(weights=None, num_classes=1000)
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    model = build_model("resnet18", 257, image_size=32, stem="imagenet")
    with pytest.raises(ValueError, match=r"shape mismatch in 2 key\(s\): fc.weight \(file \(1000, 512\), model "
                                         r"\(257, 512\)\), fc.bias .*skip=\['fc'\]"):
        load_weights(model, path)
    fresh_fc = model.fc.weight.detach().clone()
    assert load_weights(model, path, skip=["fc"]) == ["fc.weight", "fc.bias"]
    assert torch.equal(model.fc.weight, fresh_fc)
    for k, v in imagenet.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(model.state_dict()[k], v), k
    cifar = build_model("resnet18", 257, image_size=32)  # the CIFAR stem cannot take ImageNet's 7x7 filters
    with pytest.raises(ValueError, match=r"conv1.weight \(file \(64, 3, 7, 7\), model \(64, 3, 3, 3\)\)"):
        load_weights(cifar, path, skip=["fc"])


def test_missing_and_unexpected_keys_are_listed_and_nothing_changes(tmp_path):
    path = tmp_path / "w.pt"
    deeper = _model(0, name="resnet32").state_dict()
    torch.save(deeper, path)
    target = _model(1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    extra = len(set(deeper) - set(before))  # blocks 4 and 5 of each stage
    with pytest.raises(ValueError, match=rf"in the file but not in the model: {extra} key\(s\): layer1.3.conv1.weight"):
        load_weights(target, path)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    state = _model(0).state_dict()
    del state["layer2.0.bn1.weight"]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing from the file: 1 key\(s\): layer2.0.bn1.weight; in the file but "
                                         r"not in the model: 1 key\(s\): extra.weight"):
        load_weights(target, path)
    with pytest.raises(ValueError, match=r"skip: \['head'\] match\(es\) no key of the model"):
        load_weights(target, path, skip=["head"])


def test_files_older_than_batchnorm_counters_load(tmp_path):
    state = {k: v for k, v in _model(0).state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pt")
    target = _model(1)
    load_weights(target, tmp_path / "old.pt")
    assert all(torch.equal(target.state_dict()[k], v) for k, v in state.items())


def test_verification(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_model(0).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    load_weights(_model(1), path, sha256=digest[:8])  # torchvision's file-name convention: a prefix
    load_weights(_model(1), path, sha256=digest.upper())
    with pytest.raises(CorruptFileError, match="does not start with the expected 00000000"):
        load_weights(_model(1), path, sha256="00000000")
    with pytest.raises(ValueError, match="at least 8 hex digits"):
        load_weights(_model(1), path, sha256="abc")
    state = _model(0).state_dict()
    state["linear.weight"][0, 0] = float("nan")
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"non-finite values \(NaN or inf\) in 1 key\(s\): linear.weight"):
        load_weights(_model(1), path)
    atomic_torch_save(_model(0).state_dict(), path)  # augcore's checksum: a flipped byte is caught
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="checksum mismatch"):
        load_weights(_model(1), path)


class _Pickled:
    pass


def test_unreadable_files_are_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"weight": torch.zeros(1), "extra": _Pickled()}, path)
    with pytest.raises(ValueError, match=r"weights_only=True\) refuses to unpickle; save model.state_dict\(\) alone"):
        load_weights(_model(1), path)
    torch.save({"epoch": 3, "optimizer": {}}, path)
    with pytest.raises(ValueError, match=r"holds a dict with keys \['epoch', 'optimizer'\], not a state dict"):
        read_state_dict(path)
    path.write_bytes(b"not a weights file")
    with pytest.raises(CorruptFileError, match="cannot be read as a torch or safetensors file"):
        read_state_dict(path)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        read_state_dict(tmp_path / "absent.pt")
    with pytest.raises(TypeError, match="skip must be a list of key prefixes"):
        load_weights(_model(1), tmp_path / "absent.pt", skip="fc")


def test_config_loads_the_weights_and_names_the_key(tmp_path, small_digits):
    source = build_model("small_cnn", 10, in_channels=1, image_size=8)
    torch.save(source.state_dict(), tmp_path / "pre.pt")
    cfg = small_train_config(model={"name": "small_cnn", "weights": str(tmp_path / "pre.pt")})
    trainer = Trainer(cfg, train_set=small_digits[0], test_set=small_digits[1])
    assert _same(trainer.model, source)  # the run starts from the file
    torch.save(build_model("small_cnn", 4, in_channels=1, image_size=8).state_dict(), tmp_path / "four.pt")
    cfg = small_train_config(model={"name": "small_cnn", "weights": str(tmp_path / "four.pt")})
    with pytest.raises(ConfigError, match=r"model.weights: .*four.pt does not fit SmallCNN: shape mismatch in 2 "
                                          r"key\(s\): fc.weight \(file \(4, 128\), model \(10, 128\)\)"):
        Trainer(cfg, train_set=small_digits[0], test_set=small_digits[1])
    cfg = small_train_config(model={"name": "small_cnn", "weights": str(tmp_path / "four.pt"), "weights_skip": ["fc"]})
    trainer = Trainer(cfg, train_set=small_digits[0], test_set=small_digits[1])
    assert torch.equal(trainer.model.features[0][0].weight, torch.load(tmp_path / "four.pt")["features.0.0.weight"])
