"""End to end, offline: a Hugging Face Trainer on digits with AugcoreSelectionCallback."""
import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

from augcore.data import load_dataset  # noqa: E402
from augcore.integrations.huggingface import AugcoreSelectionCallback  # noqa: E402


class DigitsNet(nn.Module):
    """Trainer-style model: forward(pixel_values, labels, sample_weights) -> {"loss", "logits"}."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                  nn.Flatten())
        self.classifier = nn.Linear(64, 10)
        self.seen = []  # per training call: (rows, dataset indices of the strong copies)

    def forward(self, pixel_values, labels=None, sample_weights=None, dataset_index=None, is_augmented=None):
        logits = self.classifier(self.body(pixel_values))
        if labels is None:
            return {"logits": logits}
        self.seen.append((len(labels), dataset_index[is_augmented].tolist()))
        losses = nn.functional.cross_entropy(logits, labels, reduction="none")
        return {"loss": (losses * sample_weights).mean(), "logits": logits}


def test_huggingface_reselects_every_two_epochs_and_trains_on_the_copies(tmp_path):
    torch.manual_seed(0)
    train = load_dataset("digits", train=True)
    select = AugcoreSelectionCallback(train, selector="coreset", fraction=0.2, every=2, strong="autoaugment")
    model = DigitsNet()
    args = transformers.TrainingArguments(output_dir=str(tmp_path), num_train_epochs=4, per_device_train_batch_size=128,
                                          learning_rate=0.05, report_to=[], save_strategy="no", logging_strategy="no",
                                          use_cpu=True, remove_unused_columns=False, dataloader_num_workers=0,
                                          disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=select.dataset, data_collator=select.collate,
                                   callbacks=[select])
    trainer.train()

    k = round(0.2 * len(train))
    assert [s.epoch for s in select.selections] == [0, 2]
    assert all(len(s) == k for s in select.selections)
    assert select.selections[0].indices.tolist() != select.selections[1].indices.tolist()
    steps = -(-(len(train) + k) // 128)
    assert len(model.seen) == 4 * steps
    for epoch in range(4):
        calls = model.seen[epoch * steps:(epoch + 1) * steps]
        assert sum(rows for rows, _ in calls) == len(train) + k
        copies = sorted(i for _, idx in calls for i in idx)
        assert copies == sorted(select.selections[epoch // 2].indices.tolist())


def test_huggingface_needs_a_fixed_size_selector():
    train = load_dataset("digits", train=True)
    with pytest.raises(ValueError, match="fixed training-set length"):
        AugcoreSelectionCallback(train, selector="misclassified")
