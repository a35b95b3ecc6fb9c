"""End to end, offline: a Lightning Trainer on digits with AugcoreSelectionCallback."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

pl = pytest.importorskip("lightning.pytorch")

from augcore.data import load_dataset  # noqa: E402
from augcore.integrations.lightning import AugcoreSelectionCallback  # noqa: E402


class Digits(pl.LightningModule):
    """A logits-only CNN (no embedding returned): the callback's pass hooks its final linear layer."""

    def __init__(self, select):
        super().__init__()
        self.select = select
        self.net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                 nn.Linear(64, 10))
        self.seen = {}  # epoch -> (rows, dataset indices of the strong copies)

    def forward(self, x):
        return self.net(x)

    def train_dataloader(self):
        return DataLoader(self.select.dataset, batch_size=128, shuffle=True)

    def training_step(self, batch, batch_idx):
        x, y, weight, index, augmented = batch
        rows, copies = self.seen.get(self.current_epoch, (0, []))
        self.seen[self.current_epoch] = (rows + len(y), copies + index[augmented].tolist())
        losses = nn.functional.cross_entropy(self(x), y, reduction="none")
        return (losses * weight.float()).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def test_lightning_reselects_every_two_epochs_and_trains_on_the_copies(tmp_path):
    torch.manual_seed(0)
    train = load_dataset("digits", train=True)
    select = AugcoreSelectionCallback(train, selector="coreset", fraction=0.2, every=2, proxy="last_layer",
                                      strong="autoaugment")
    module = Digits(select)
    trainer = pl.Trainer(max_epochs=4, callbacks=[select], reload_dataloaders_every_n_epochs=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", default_root_dir=tmp_path)
    trainer.fit(module)

    k = round(0.2 * len(train))
    assert [s.epoch for s in select.selections] == [0, 2]
    assert all(len(s) == k for s in select.selections)
    assert select.selections[0].indices.tolist() != select.selections[1].indices.tolist()  # the model moved
    for epoch in range(4):
        rows, copies = module.seen[epoch]
        assert rows == len(train) + k  # every original once plus one strong copy per pick
        current = select.selections[epoch // 2]
        assert sorted(copies) == sorted(current.indices.tolist())


def test_lightning_needs_the_loader_rebuilt_when_the_selection_changes(tmp_path):
    train = load_dataset("digits", train=True)
    select = AugcoreSelectionCallback(train, selector="random", fraction=0.1, every=2)
    trainer = pl.Trainer(max_epochs=1, callbacks=[select], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, accelerator="cpu", default_root_dir=tmp_path)
    with pytest.raises(ValueError, match="reload_dataloaders_every_n_epochs=2"):
        trainer.fit(Digits(select))


def test_importing_augcore_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, augcore, augcore.integrations, augcore.compat, augcore.selection; "
            "print(sorted(m for m in ('lightning', 'transformers', 'submodlib', 'apricot') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
