"""The augmented-subset view: rows, weights and lengths in the coreset paper's three settings."""
import pytest
import torch
from torch.utils.data import DataLoader

from augcore.data import AugmentedSubsetDataset, ImageDataset, random_subset_indices
from augcore.data.datasets import _TensorImages
from augcore.data.transforms import strong_transform, weak_transform
from augcore.selection.base import Selection

N = 40


class Tagged:
    """Marks which transform produced an item: the image's float value plus an offset."""

    def __init__(self, offset):
        self.offset = offset

    def __call__(self, x):
        return x.float() + self.offset


WEAK, STRONG = Tagged(0.0), Tagged(1000.0)


@pytest.fixture
def base():
    images = torch.arange(N, dtype=torch.uint8).view(N, 1, 1, 1).expand(N, 1, 4, 4).contiguous()  # image i == i
    return ImageDataset(_TensorImages(images), torch.arange(N) % 4, list("abcd"), name="toy", mean=(0.5,), std=(0.2,))


@pytest.fixture
def selection():
    return Selection(indices=torch.tensor([3, 17, 8, 30]), weights=torch.tensor([2.0, 0.5, 1.0, 4.0]),
                     method="coreset")


def _rows(view):
    return [view[r] for r in range(len(view))]


def _check_items_consistent(view, base):
    for image, label, weight, index, augmented in _rows(view):
        assert label == int(base.targets[index])
        assert torch.equal(image, (STRONG if augmented else WEAK)(base.image(index)))


@pytest.mark.parametrize("copies", [1, 3])
def test_full_data_plus_appended_copies_unit_and_gamma(base, selection, copies):
    unit = AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, copies=copies)
    assert len(unit) == N + 4 * copies and unit.num_originals == N and unit.num_copies == 4 * copies
    rows = _rows(unit)
    assert [r[3] for r in rows[:N]] == list(range(N)) and not any(r[4] for r in rows[:N])
    assert [r[3] for r in rows[N:]] == [i for i in [3, 17, 8, 30] for _ in range(copies)]
    assert all(r[4] for r in rows[N:]) and all(r[2] == 1.0 for r in rows)
    _check_items_consistent(unit, base)

    gamma = AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, copies=copies, weighting="gamma")
    copy_weights = torch.tensor([r[2] for r in _rows(gamma)[N:]]).view(4, copies)
    torch.testing.assert_close(copy_weights, (selection.weights / copies).unsqueeze(1).expand(4, copies))
    torch.testing.assert_close(copy_weights.sum(1), selection.weights)  # r copies carry gamma_j in all
    assert all(r[2] == 1.0 for r in _rows(gamma)[:N])
    torch.testing.assert_close(gamma.weights, torch.tensor([r[2] for r in _rows(gamma)]))


def test_train_on_coreset_originals_carry_selection_weights(base, selection):
    view = AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, train_on="selection")
    rows = _rows(view)
    assert len(view) == 8
    assert [r[3] for r in rows[:4]] == [3, 17, 8, 30] and [r[2] for r in rows[:4]] == [2.0, 0.5, 1.0, 4.0]
    assert [r[2] for r in rows[4:]] == [1.0] * 4 and all(r[4] for r in rows[4:])
    _check_items_consistent(view, base)
    with pytest.raises(ValueError, match="needs a selection"):
        AugmentedSubsetDataset(base, None, weak=WEAK, strong=STRONG, train_on="selection")


def test_random_subset_plus_augmented_coreset(base, selection):
    subset = random_subset_indices(base, 0.25, seed=1)
    assert subset.numel() == 10 and torch.equal(subset, random_subset_indices(base, 0.25, seed=1))
    view = AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, train_on="random_subset",
                                  random_subset_indices=subset, copies=2, weighting="gamma")
    assert len(view) == 10 + 8
    assert torch.equal(view.dataset_indices[:10], subset) and bool((view.weights[:10] == 1).all())
    _check_items_consistent(view, base)
    with pytest.raises(ValueError, match="random_subset_indices"):
        AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, train_on="random_subset")
    with pytest.raises(ValueError, match="random_subset_indices"):
        AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, random_subset_indices=subset)


def test_inplace_replaces_selected_originals(base, selection):
    view = AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, placement="inplace")
    assert len(view) == N and view.num_copies == 0
    augmented = {r[3] for r in _rows(view) if r[4]}
    assert augmented == {3, 17, 8, 30} and all(r[2] == 1.0 for r in _rows(view))
    _check_items_consistent(view, base)
    gamma = AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, placement="inplace", weighting="gamma")
    torch.testing.assert_close(gamma.weights[selection.indices], selection.weights)
    assert float(gamma.weights.sum()) == pytest.approx(N - 4 + float(selection.weights.sum()))
    with pytest.raises(ValueError, match="copies"):
        AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, placement="inplace", copies=2)
    outside = torch.tensor([0, 1, 2])  # does not contain the selected examples
    with pytest.raises(ValueError, match="among the training originals"):
        AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, placement="inplace",
                               train_on="random_subset", random_subset_indices=outside)


def test_set_selection_swaps_without_touching_the_base(base, selection):
    view = AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, copies=2, weighting="gamma")
    images_before = base._images.images.clone()
    new = Selection(indices=torch.tensor([5]), weights=torch.tensor([6.0]), method="coreset", epoch=20)
    view.set_selection(new)
    assert len(view) == N + 2 and view.selection is new
    assert view.dataset_indices[N:].tolist() == [5, 5] and view.weights[N:].tolist() == [3.0, 3.0]
    assert view.base is base and torch.equal(base._images.images, images_before)
    view.set_selection(None)
    assert len(view) == N and not view.is_augmented.any()


@pytest.mark.parametrize("indices, weights, match", [
    ([1, 1], [1.0, 1.0], "repeated"),
    ([1, N], [1.0, 1.0], "out of range"),
    ([1, 2], [1.0], "weights"),
    ([1, 2], [1.0, float("nan")], "finite"),
    ([1.0, 2.0], [1.0, 1.0], "integer"),
])
def test_bad_selections_are_rejected(base, indices, weights, match):
    bad = Selection(indices=torch.tensor(indices), weights=torch.tensor(weights), method="x")
    with pytest.raises((ValueError, IndexError, TypeError), match=match):
        AugmentedSubsetDataset(base, bad, weak=WEAK, strong=STRONG)


def test_bad_options_are_rejected(base, selection):
    for kwargs, match in (({"weighting": "paper"}, "weighting"), ({"placement": "prepend"}, "placement"),
                          ({"train_on": "coreset"}, "train_on"), ({"copies": 0}, "copies")):
        with pytest.raises(ValueError, match=match):
            AugmentedSubsetDataset(base, selection, weak=WEAK, strong=STRONG, **kwargs)


def test_loader_batches_real_presets():
    from augcore.data import load_dataset

    digits = load_dataset("digits")
    sel = Selection(indices=torch.arange(0, 100, 10), weights=torch.full((10,), 2.0), method="random")
    view = AugmentedSubsetDataset(digits, sel, weak=weak_transform(digits),
                                  strong=strong_transform("autoaugment", digits), weighting="gamma")
    batch = next(iter(DataLoader(view, batch_size=len(view), shuffle=False)))
    images, labels, weights, indices, augmented = batch
    assert images.shape == (len(digits) + 10, 1, 8, 8) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and torch.equal(labels, digits.targets[indices])
    assert int(augmented.sum()) == 10 and torch.equal(indices[augmented], sel.indices)
    assert torch.equal(weights[augmented].float(), torch.full((10,), 2.0))
