"""Fixtures shared by the training-loop tests, the `long` marker, and Triton's interpreter on CPU-only machines."""
import os

import pytest
import torch

# Triton picks its interpreter when a function is decorated, its own library's included, and torchvision
# imports triton: without a GPU, the interpreter is chosen here, before any test module imports either, so the
# Triton tests run on the CPU whatever runs before them (torch alone does not import triton).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_addoption(parser):
    parser.addoption("--run-long", action="store_true", default=False,
                     help="also run the tests marked `long` (end-to-end runs left out of CI)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-long"):
        return
    skip = pytest.mark.skip(reason="long end-to-end run: pass --run-long to run it")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


def small_train_config(augment=None, **sections):
    """A 3-epoch CPU training config for the loop's tests; ``sections`` update its sections."""
    from augcore.train import config_from_dict

    base = {"schedule": {"epochs": 3, "name": "multistep", "milestones": [2]},
            "optim": {"lr": 0.05, "batch_size": 32},
            "augment": {"mode": "random", "fraction": 0.25, "reselect_every": 2, "strong": "cutout", **(augment or {})},
            "run": {"progress": False, "device": "cpu", "eval_batch_size": 256, "num_threads": 1}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return config_from_dict(base)


@pytest.fixture(scope="session")
def small_digits():
    """(128 training, 64 test) digits: enough for the loop to learn something in seconds."""
    from augcore.data import load_dataset

    train = load_dataset("digits", train=True)
    test = load_dataset("digits", train=False)
    g = torch.Generator().manual_seed(0)
    return train.subset(torch.randperm(len(train), generator=g)[:128]), test.subset(torch.arange(64))
