"""The framework callbacks re-select with the Trainer's engine: for the same model, seed and
statistics they make the Trainer's selections and log its selection columns."""
import json
from types import SimpleNamespace

import pytest
import torch
from conftest import small_train_config
from torch import nn

from augcore.train import Trainer

TIMINGS = ("selection_time", "selector_time", "inference_time")


def _untimed(history):
    """The history's JSON without the selector's timings."""
    state = json.loads(history.to_json())
    for record in state["records"]:
        record.pop("time_total")
    return state


class _Module(nn.Module):
    """What the Lightning callback reads of a LightningModule: forward, device and log_dict."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.logged = []

    def forward(self, x):
        return self.model(x)

    @property
    def device(self):
        return next(self.parameters()).device

    def log_dict(self, values, **_):
        self.logged.append(values)


def _huggingface_driver(train, epochs, **options):
    hf = pytest.importorskip("augcore.integrations.huggingface")
    callback = hf.AugcoreSelectionCallback(train, **options)
    args = SimpleNamespace(num_train_epochs=epochs)
    return callback, (lambda model: callback.on_train_begin(args, SimpleNamespace(epoch=0), None, model=model),
                      lambda model, epoch: callback.on_epoch_end(args, SimpleNamespace(epoch=epoch + 1), None,
                                                                 model=model))


def _lightning_driver(train, epochs, **options):
    lightning = pytest.importorskip("augcore.integrations.lightning")
    callback = lightning.AugcoreSelectionCallback(train, **options)

    def trainer_at(epoch):
        return SimpleNamespace(reload_dataloaders_every_n_epochs=options["every"], current_epoch=epoch,
                               max_epochs=epochs)
    return callback, (lambda model: callback.on_fit_start(trainer_at(0), _Module(model)),
                      lambda model, epoch: callback.on_train_epoch_end(trainer_at(epoch), _Module(model)))


@pytest.mark.parametrize("driver", [_huggingface_driver, _lightning_driver], ids=["huggingface", "lightning"])
@pytest.mark.parametrize("selector", ["coreset", "random"])
def test_callback_selects_as_the_trainer(small_digits, driver, selector):
    epochs, seed = 4, 7
    cfg = small_train_config({"mode": selector, "fraction": 0.2, "reselect_every": 2},
                             schedule={"epochs": epochs, "milestones": []}, run={"seed": seed})
    train, test = small_digits
    torch.manual_seed(0)
    trainer = Trainer(cfg, train_set=train, test_set=test)
    callback, (start, epoch_end) = driver(train, epochs, selector=selector, fraction=0.2, every=2, seed=seed,
                                          strong="cutout")
    start(trainer.model)  # the weights the Trainer's epoch-0 selection sees

    def after_epoch(trainer_, epoch, row):  # the weights the next epoch's selection sees
        epoch_end(trainer_.model, epoch)
    trainer.callbacks.append(after_epoch)
    rows = trainer.fit().rows

    assert [s.epoch for s in callback.selections] == trainer.selection_epochs == [0, 2]
    assert callback.selections[0].indices.tolist() != callback.selections[1].indices.tolist()
    assert _untimed(callback._reselector.policy.history) == _untimed(trainer.history)
    assert callback.selections[-1].indices.tolist() == trainer.selection.indices.tolist()
    assert torch.equal(callback.selections[-1].weights, trainer.selection.weights)
    assert len(callback.rows) == epochs
    for ours, theirs in zip(callback.rows, rows):
        assert ours["epoch"] == theirs["epoch"]
        assert {k: v for k, v in ours.items() if k not in TIMINGS} == {k: theirs[k] for k in ours if k not in TIMINGS}
        assert (ours["selection_time"] > 0) == (theirs["selection_time"] > 0)
