"""PyTorch Lightning: re-select every R epochs and train on the augmented subset.

::

    from augcore.integrations.lightning import AugcoreSelectionCallback

    select = AugcoreSelectionCallback(train_set, selector="coreset", fraction=0.3, every=2,
                                      strong="autoaugment")

    class Module(lightning.LightningModule):
        def train_dataloader(self):
            return DataLoader(select.dataset, batch_size=128, shuffle=True)

        def training_step(self, batch, batch_idx):
            x, y, weight, index, is_augmented = batch
            losses = F.cross_entropy(self(x), y, reduction="none")
            return (losses * weight.float()).mean()

    lightning.Trainer(max_epochs=..., callbacks=[select], reload_dataloaders_every_n_epochs=2).fit(Module())

The selection for epoch e (e a multiple of R) runs before that epoch's data loader
is built: at ``on_fit_start`` for the first, at the end of epoch e - 1 for the
rest. ``select.dataset`` changes length when the selection does, so the trainer
must rebuild the loader at those epochs: ``reload_dataloaders_every_n_epochs``
must divide R (checked at ``on_fit_start``). The pass runs ``self(x)`` of the
LightningModule: its ``forward`` may return logits, ``(logits, embedding)`` or a
mapping with "logits" (see ``augcore.selection.collect_stats``).
"""
from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from augcore.integrations._core import Reselector

__all__ = ["AugcoreSelectionCallback"]


class AugcoreSelectionCallback(pl.Callback):
    """Lightning callback around ``augcore.integrations._core.Reselector``; takes its arguments.

    ``dataset`` is the training view to load from; ``selections`` every selection made.
    """

    def __init__(self, train_set, **options: Any):
        super().__init__()
        self._reselector = Reselector(train_set, **options)

    @property
    def dataset(self):
        return self._reselector.dataset

    @property
    def selections(self):
        return self._reselector.selections

    @property
    def rows(self):
        """Per epoch, the selection columns of ``augcore.train.Trainer``'s log row (also logged
        to the module's loggers as ``augcore/<column>``)."""
        return self._reselector.rows

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        every = self._reselector.every
        reload = trainer.reload_dataloaders_every_n_epochs
        if every > 1 and (reload < 1 or every % reload != 0) or every == 1 and reload != 1:
            raise ValueError(f"AugcoreSelectionCallback re-selects every {every} epoch(s), which changes the "
                             "training set's length: pass reload_dataloaders_every_n_epochs="
                             f"{every} (or a divisor of it) to the Trainer; got {reload}")
        self._reselector.begin_epoch(pl_module, trainer.current_epoch, pl_module.device)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        row = self._reselector.end_epoch(trainer.current_epoch)
        pl_module.log_dict({f"augcore/{key}": float(value) for key, value in row.items()
                            if key != "epoch" and value is not None}, on_epoch=True)
        upcoming = trainer.current_epoch + 1
        last = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
        if last is None or upcoming < last:
            self._reselector.begin_epoch(pl_module, upcoming, pl_module.device)
