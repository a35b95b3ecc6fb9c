"""Property-based: every public entry point of data, selection, influence, models, training
helpers and generation either accepts an input or rejects it with TypeError / ValueError /
FileNotFoundError / CorruptFileError whose message names the parameter; valid unusual
inputs (numpy, views, float64/float16, duplicates, groups of one, N = 0) keep working."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from augcore import facility_location, normalize_weights, split_budget
from augcore.checks import CorruptFileError, IndexOutOfRangeError
from augcore.data import (AugmentedSubsetDataset, add_symmetric_label_noise, load_dataset, long_tail_counts,
                          make_long_tailed, random_subset_indices)
from augcore.data.transforms import Cutout, CutMix, GaussianNoise, Mixup, strong_transform, weak_transform
from augcore.generate.datasets import UpsampledDataset
from augcore.generate.driver import check_prompt_template, parse_shard, plan_units
from augcore.generate.schedule import check_steps, strength_for_steps
from augcore.generate.store import SyntheticStore
from augcore.influence import (ImageAugmenter, InfluenceSelector, LastLayerHessian, LastLayerInfluence,
                               TranslationAugmenter, conjugate_gradient, flow_warp, lissa)
from augcore.models import build_model
from augcore.selection import (HighLossSelector, InferenceStats, MaxLossSelector, MisclassifiedSelector,
                               RandomSelector, Selection, SelectionHistory, SlowLearnableSelector, random_stats)
from augcore.selection.kmeans import batched_kmeans
from augcore.train.checkpoint import load_checkpoint, seed_everything
from augcore.train.losses import per_example_cross_entropy, weighted_cross_entropy
from augcore.train.metrics import topk_correct
from augcore.train.sam import SAM
from augcore.train.schedules import LRSchedule, RefinementPlan, set_lr

ALLOWED = (TypeError, ValueError, FileNotFoundError, CorruptFileError)


def _odd_values():
    """Values a user may pass by mistake (or on purpose): wrong kinds, edge numbers, numpy, tensors."""
    numbers = st.one_of(st.integers(-3, 12), st.sampled_from([-(2 ** 31), 0, 1]),
                        st.floats(allow_nan=True, allow_infinity=True, width=64),
                        st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.5, float("nan"), float("inf"), -float("inf"), 1e-300]))
    numpy = st.one_of(numbers.map(lambda v: np.float32(v) if isinstance(v, float) else np.int64(v)),
                      st.sampled_from([np.bool_(True), np.array(2), np.array([1, 2]), np.array([0.5]),
                                       np.uint8(3), np.float16(0.25)]))
    tensors = st.sampled_from([torch.tensor(2), torch.tensor(0.5), torch.tensor([1, 2]), torch.tensor([[1]]),
                               torch.tensor([True, False]), torch.empty(0), torch.tensor([float("nan")])])
    return st.one_of(numbers, numpy, tensors, st.none(), st.booleans(), st.text(max_size=4),
                     st.lists(st.one_of(st.integers(-2, 6), st.floats(-1, 2), st.none()), max_size=3),
                     st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
                     st.sampled_from([object(), {"a": 1}, b"bytes", (), [[1, 2]], range(3), "digits", "unit"]))


def _rejects_cleanly(call, names):
    """``call()`` either works or raises an allowed type whose message names one of ``names``."""
    try:
        call()
    except ALLOWED as exc:
        message = str(exc).lower()
        assert any(n.lower() in message for n in names), f"{type(exc).__name__} does not name {names}: {exc}"
        return exc
    return None


# ----------------------------------------------------------------------------- shared fixtures (module-level: cheap)

DIGITS = load_dataset("digits", train=False)
STATS = random_stats(60, 3, embedding_dim=5, seed=1)
TINY = torch.nn.Linear(3, 2)
WEIGHT = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
BIAS = torch.zeros(3)


def _influence(**kw):
    return InfluenceSelector(WEIGHT, BIAS, STATS, **{"budget": 5, **kw})


ENTRY_POINTS = {
    # name: (call with the odd value v, words one of which the message must contain)
    "load_dataset.name": (lambda v: load_dataset(v, train=False), ["name"]),
    "load_dataset.seed": (lambda v: load_dataset("digits", seed=v, label_noise=0.1), ["seed"]),
    "load_dataset.imbalance_factor": (lambda v: load_dataset("digits", imbalance_factor=v), ["imbalance_factor"]),
    "load_dataset.label_noise": (lambda v: load_dataset("digits", label_noise=v), ["label_noise"]),
    "load_dataset.image_size": (lambda v: load_dataset("digits", image_size=v), ["image_size"]),
    "load_dataset.train": (lambda v: load_dataset("digits", train=v), ["train"]),
    "load_dataset.split_seed": (lambda v: load_dataset("digits", split_seed=v), ["split_seed"]),
    "load_dataset.test_fraction": (lambda v: load_dataset("digits", test_fraction=v), ["test_fraction"]),
    "load_dataset.root": (lambda v: load_dataset("cifar10", root=v), ["root", "not found"]),
    "ImageDataset.subset": (lambda v: DIGITS.subset(v), ["indices"]),
    "long_tail_counts.imbalance_factor": (lambda v: long_tail_counts([5, 5, 5], v), ["imbalance_factor"]),
    "long_tail_counts.class_sizes": (lambda v: long_tail_counts(v, 2.0), ["class_sizes"]),
    "random_subset_indices.size": (lambda v: random_subset_indices(DIGITS, v), ["size"]),
    "random_subset_indices.seed": (lambda v: random_subset_indices(DIGITS, 5, seed=v), ["seed"]),
    "AugmentedSubsetDataset.copies": (lambda v: AugmentedSubsetDataset(DIGITS, None, weak=abs, strong=abs, copies=v),
                                      ["copies"]),
    "AugmentedSubsetDataset.weighting": (lambda v: AugmentedSubsetDataset(DIGITS, None, weak=abs, strong=abs,
                                                                          weighting=v), ["weighting"]),
    "AugmentedSubsetDataset.selection": (lambda v: AugmentedSubsetDataset(
        DIGITS, Selection(v, torch.ones(1), "x"), weak=abs, strong=abs), ["selection"]),
    "Cutout.size": (lambda v: Cutout(v), ["size"]),
    "GaussianNoise.sigma": (lambda v: GaussianNoise(v), ["sigma"]),
    "strong_transform.name": (lambda v: strong_transform(v, DIGITS), ["name", "augmentation"]),
    "strong_transform.cutout_size": (lambda v: strong_transform("cutout", DIGITS, cutout_size=v), ["cutout_size"]),
    "strong_transform.noise_sigma": (lambda v: strong_transform("noise", DIGITS, noise_sigma=v), ["noise_sigma"]),
    "weak_transform.dataset": (lambda v: weak_transform(v), ["dataset"]),
    "Mixup.alpha": (lambda v: Mixup(v), ["alpha"]),
    "CutMix.seed": (lambda v: CutMix(1.0, seed=v), ["seed"]),
    "LRSchedule.name": (lambda v: LRSchedule(v, 0.1, 10), ["schedule"]),
    "LRSchedule.base_lr": (lambda v: LRSchedule("cosine", v, 10), ["base_lr"]),
    "LRSchedule.epochs": (lambda v: LRSchedule("multistep", 0.1, v), ["epochs"]),
    "LRSchedule.warmup_epochs": (lambda v: LRSchedule("cosine", 0.1, 10, warmup_epochs=v), ["warmup_epochs"]),
    "LRSchedule.milestones": (lambda v: LRSchedule("multistep", 0.1, 10, milestones=v), ["milestones"]),
    "LRSchedule.gamma": (lambda v: LRSchedule("multistep", 0.1, 10, gamma=v), ["gamma"]),
    "LRSchedule.min_lr": (lambda v: LRSchedule("cosine", 0.1, 10, min_lr=v), ["min_lr"]),
    "LRSchedule.lr.epoch": (lambda v: LRSchedule("cosine", 0.1, 10).lr(v), ["epoch"]),
    "LRSchedule.lr.step": (lambda v: LRSchedule("cosine", 0.1, 10).lr(1, v, 4), ["step"]),
    "RefinementPlan.build.epochs": (lambda v: RefinementPlan.build(LRSchedule("multistep", 0.1, 10), True, v),
                                    ["epochs"]),
    "RefinementPlan.build.lr": (lambda v: RefinementPlan.build(LRSchedule("multistep", 0.1, 10), True, 2, lr=v),
                                ["lr"]),
    "SAM.rho": (lambda v: SAM(TINY.parameters(), torch.optim.SGD, rho=v, lr=0.1), ["rho"]),
    "per_example_cross_entropy.targets": (lambda v: per_example_cross_entropy(torch.zeros(2, 3), v), ["targets"]),
    "weighted_cross_entropy.weights": (lambda v: weighted_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 2]), v),
                                       ["weights"]),
    "topk_correct.ks": (lambda v: topk_correct(torch.zeros(2, 3), torch.tensor([0, 1]), v), ["ks"]),
    "seed_everything.seed": (lambda v: seed_everything(v), ["seed"]),
    "RandomSelector.fraction": (lambda v: RandomSelector(v), ["fraction"]),
    "RandomSelector.stratified": (lambda v: RandomSelector(0.5, stratified=v), ["stratified"]),
    "MaxLossSelector.fraction": (lambda v: MaxLossSelector(v), ["fraction"]),
    "HighLossSelector.select.epoch": (lambda v: HighLossSelector(0.3).select(STATS, epoch=v), ["epoch"]),
    "RandomSelector.select.seed": (lambda v: RandomSelector(0.3).select(STATS, seed=v), ["seed"]),
    "RandomSelector.select.stats": (lambda v: RandomSelector(0.3).select(v), ["stats"]),
    "SlowLearnableSelector.features": (lambda v: SlowLearnableSelector(features=v), ["features"]),
    "SlowLearnableSelector.restarts": (lambda v: SlowLearnableSelector(restarts=v), ["restarts"]),
    "InferenceStats.logits": (lambda v: MisclassifiedSelector().select(
        InferenceStats(v, STATS.labels, STATS.losses, STATS.indices)), ["logits"]),
    "InferenceStats.labels": (lambda v: MisclassifiedSelector().select(
        InferenceStats(STATS.logits, v, STATS.losses, STATS.indices)), ["labels", "lengths"]),
    "InferenceStats.losses": (lambda v: MaxLossSelector(0.5).select(
        InferenceStats(STATS.logits, STATS.labels, v, STATS.indices)), ["losses", "lengths"]),
    "InferenceStats.indices": (lambda v: RandomSelector(0.5).select(
        InferenceStats(STATS.logits, STATS.labels, STATS.losses, v)), ["indices", "lengths"]),
    "batched_kmeans.k": (lambda v: batched_kmeans(STATS.logits, STATS.labels, k=v, restarts=2), ["k"]),
    "batched_kmeans.max_iter": (lambda v: batched_kmeans(STATS.logits, STATS.labels, max_iter=v, restarts=2),
                                ["max_iter"]),
    "batched_kmeans.num_groups": (lambda v: batched_kmeans(STATS.logits, STATS.labels, num_groups=v, restarts=2),
                                  ["num_groups", "groups"]),
    "batched_kmeans.x": (lambda v: batched_kmeans(v, torch.zeros(2, dtype=torch.int64)), ["x"]),
    "SelectionHistory.num_examples": (lambda v: SelectionHistory(v), ["num_examples"]),
    "SelectionHistory.update": (lambda v: SelectionHistory(5).update(Selection(v, torch.ones(1), "x")),
                                ["indices"]),
    "random_stats.num_examples": (lambda v: random_stats(v, 3), ["num_examples"]),
    "random_stats.embedding_dim": (lambda v: random_stats(5, 3, embedding_dim=v), ["embedding_dim"]),
    "InfluenceSelector.budget": (lambda v: _influence(budget=v).select(STATS), ["budget"]),
    "InfluenceSelector.damping": (lambda v: _influence(damping=v), ["damping"]),
    "InfluenceSelector.split": (lambda v: _influence(split=v), ["split"]),
    "InfluenceSelector.cg_tol": (lambda v: _influence(cg_tol=v), ["cg_tol"]),
    "InfluenceSelector.weight": (lambda v: InfluenceSelector(v, None, STATS, 5), ["weight"]),
    "InfluenceSelector.val_stats": (lambda v: InfluenceSelector(WEIGHT, BIAS, v, 5), ["val_stats"]),
    "LastLayerHessian.damping": (lambda v: LastLayerHessian(STATS.embeddings, STATS.logits, damping=v), ["damping"]),
    "conjugate_gradient.tol": (lambda v: conjugate_gradient(lambda x: x, torch.ones(3), tol=v), ["tol"]),
    "conjugate_gradient.max_iter": (lambda v: conjugate_gradient(lambda x: 2 * x, torch.ones(3), max_iter=v),
                                    ["max_iter"]),
    "lissa.depth": (lambda v: lissa(lambda x: x, lambda x: x, torch.ones(3), depth=v, scale=2.0), ["depth"]),
    "lissa.scale": (lambda v: lissa(lambda x: x, lambda x: x, torch.ones(3), depth=3, scale=v), ["scale"]),
    "flow_warp.smoothing": (lambda v: flow_warp(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4),
                                                torch.zeros(1, 2, 4, 4), smoothing=v), ["smoothing"]),
    "ImageAugmenter.channels": (lambda v: ImageAugmenter(v, 8, 8, hidden=2), ["channels"]),
    "ImageAugmenter.max_spatial": (lambda v: ImageAugmenter(1, 8, 8, hidden=2, max_spatial=v), ["max_spatial"]),
    "TranslationAugmenter.dim": (lambda v: TranslationAugmenter(v, hidden=2), ["dim"]),
    "build_model.name": (lambda v: build_model(v, 10), ["model"]),
    "build_model.num_classes": (lambda v: build_model("small_cnn", v, in_channels=1), ["num_classes"]),
    "build_model.in_channels": (lambda v: build_model("small_cnn", 3, in_channels=v), ["in_channels"]),
    "build_model.image_size": (lambda v: build_model("small_cnn", 3, image_size=v), ["image_size"]),
    "check_steps.steps": (lambda v: check_steps(v, 10), ["steps"]),
    "strength_for_steps.total_steps": (lambda v: strength_for_steps(3, v), ["total_steps", "steps"]),
    "plan_units.batch_size": (lambda v: plan_units([1, 2, 3], [2], v), ["batch_size"]),
    "plan_units.sources": (lambda v: plan_units(v, [2], 2), ["sources"]),
    "parse_shard": (lambda v: parse_shard(v), ["shard"]),
    "check_prompt_template": (lambda v: check_prompt_template(v), ["prompt_template"]),
    "UpsampledDataset.k": (lambda v: UpsampledDataset(DIGITS, [1, 2], k=v), ["k"]),
    "UpsampledDataset.indices": (lambda v: UpsampledDataset(DIGITS, v, k=2), ["indices"]),
    "UpsampledDataset.base": (lambda v: UpsampledDataset(v, [0], k=2), ["base"]),
    "add_symmetric_label_noise.rate": (lambda v: add_symmetric_label_noise(DIGITS, v), ["label_noise"]),
    "make_long_tailed.dataset": (lambda v: make_long_tailed(v, 2.0), ["dataset"]),
    "RefinementPlan.refine_epochs": (lambda v: RefinementPlan(True, 10, v), ["refine_epochs", "refinement"]),
    "set_lr.lr": (lambda v: set_lr(torch.optim.SGD(TINY.parameters(), lr=0.1), v), ["lr"]),
    "load_checkpoint.path": (lambda v: load_checkpoint(v), ["path", "checkpoint"]),
    "Selection.load.path": (lambda v: Selection.load(v), ["path", "selection"]),
    "SelectionHistory.load.path": (lambda v: SelectionHistory.load(v), ["path", "history"]),
    "SelectionHistory.from_json": (lambda v: SelectionHistory.from_json(v), ["json", "selectionhistory", "text"]),
    "SyntheticStore.root": (lambda v: SyntheticStore(v).records(), ["root", "store"]),
    "LastLayerInfluence.weight": (lambda v: LastLayerInfluence(v, None, STATS.embeddings, STATS.logits), ["weight"]),
    "normalize_weights.gamma": (lambda v: normalize_weights(v), ["gamma"]),
    "normalize_weights.how": (lambda v: normalize_weights(torch.ones(3), v), ["weights"]),
    "split_budget.budget": (lambda v: split_budget([3, 4, 5], v), ["budget"]),
    "split_budget.sizes": (lambda v: split_budget(v, 2), ["sizes", "budget"]),  # [] holds fewer than 2
    "facility_location.budget": (lambda v: facility_location(STATS.logits, v, STATS.labels), ["budget"]),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_odd_values())
def test_odd_values_are_accepted_or_rejected_naming_the_parameter(entry, value):
    call, names = ENTRY_POINTS[entry]
    _rejects_cleanly(lambda: call(value), names)


@pytest.mark.parametrize("entry,value", [
    # the failures the robustness issue reported, each by its kind
    ("ImageDataset.subset", [0.5, 1.0]), ("ImageDataset.subset", torch.tensor([1.9])),
    ("ImageDataset.subset", 3), ("long_tail_counts.imbalance_factor", float("inf")),
    ("load_dataset.image_size", 0), ("load_dataset.imbalance_factor", float("inf")),
    ("LRSchedule.gamma", -0.1), ("LRSchedule.min_lr", -1e-3), ("batched_kmeans.x", torch.tensor([[float("nan")],
                                                                                              [0.0]])),
    ("InferenceStats.logits", None), ("InferenceStats.indices", torch.tensor([-1] + [0] * 59)),
    ("check_steps.steps", 40), ("LRSchedule.milestones", 5), ("plan_units.batch_size", 2.5),
    ("parse_shard", "1/2/3"), ("parse_shard", (0.5, 2)), ("UpsampledDataset.k", 1.9),
    ("SelectionHistory.num_examples", float("nan")), ("topk_correct.ks", 1),
    # issue 26: weights that cannot be weights, budgets truncated
    ("normalize_weights.gamma", torch.tensor([1.0, -2.0])), ("normalize_weights.gamma", np.array([float("nan")])),
    ("split_budget.budget", [1.9, 1.0, 0.5]), ("split_budget.sizes", [3, 2.5]),
])
def test_the_reported_garbage_is_rejected(entry, value):
    call, names = ENTRY_POINTS[entry]
    assert _rejects_cleanly(lambda: call(value), names) is not None


def test_image_size_zero_is_refused_for_class_folder_sets(tmp_path):
    for size in (0, -3, 2.5, True):
        with pytest.raises((TypeError, ValueError), match="image_size"):
            load_dataset("imagefolder", tmp_path, image_size=size)


def test_out_of_range_indices_are_both_index_and_value_errors():
    with pytest.raises(IndexOutOfRangeError, match="indices") as info:
        DIGITS.subset([len(DIGITS)])
    assert isinstance(info.value, IndexError) and isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match=">= 0"):
        DIGITS.subset([-1])


# ----------------------------------------------------------------------------- valid unusual inputs keep working

def _stats_variants():
    base = random_stats(40, 4, embedding_dim=6, seed=3)
    yield "torch", base
    yield "numpy", InferenceStats(base.logits.numpy(), base.labels.numpy(), base.losses.numpy(), base.indices.numpy(),
                                  base.embeddings.numpy())
    yield "float64", InferenceStats(base.logits.double(), base.labels, base.losses.double(), base.indices,
                                    base.embeddings.double())
    yield "float16", InferenceStats(base.logits.half(), base.labels.int(), base.losses.half(), base.indices.int(),
                                    base.embeddings.half())
    interleaved = torch.stack([base.logits, -base.logits], 2).reshape(len(base), -1)  # every other column
    yield "views", InferenceStats(interleaved[:, ::2], base.labels, base.losses.expand(1, -1)[0], base.indices,
                                  base.embeddings.t().contiguous().t())


@pytest.mark.parametrize("selector", [RandomSelector(0.3), RandomSelector(0.3, stratified=True), MaxLossSelector(0.3),
                                      HighLossSelector(0.3), MisclassifiedSelector(), SlowLearnableSelector(restarts=2)],
                         ids=lambda s: type(s).__name__)
def test_selectors_give_the_same_selection_for_numpy_views_and_wider_dtypes(selector):
    results = {name: selector.select(stats, epoch=np.int64(1), seed=np.int32(2)) for name, stats in _stats_variants()}
    reference = results.pop("torch")
    for name, selection in results.items():
        if name == "float16" and type(selector).__name__ in ("SlowLearnableSelector", "MaxLossSelector",
                                                              "HighLossSelector", "MisclassifiedSelector"):
            assert len(selection.indices) > 0 or len(reference.indices) == 0  # rounding may reorder near ties
            continue
        assert torch.equal(selection.indices, reference.indices), name


def test_selectors_take_duplicates_groups_of_one_and_empty_stats():
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # class 1 is a group of one
    stats = InferenceStats(logits, torch.tensor([0, 0, 0, 1]), torch.tensor([0.1, 0.1, 0.1, 0.3]),
                           torch.tensor([5, 6, 7, 9]), logits.clone())
    for selector in (RandomSelector(0.5, stratified=True), HighLossSelector(0.5), SlowLearnableSelector(restarts=2),
                     MisclassifiedSelector(), MaxLossSelector(1.0)):
        selection = selector.select(stats)
        assert set(selection.indices.tolist()) <= {5, 6, 7, 9}
    empty = InferenceStats(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), torch.zeros(0),
                           torch.zeros(0, dtype=torch.int64))
    for selector in (RandomSelector(0.5), MaxLossSelector(0.5), MisclassifiedSelector()):
        assert len(selector.select(empty)) == 0


def test_kmeans_takes_duplicates_groups_of_one_float16_and_empty_groups():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], dtype=torch.float16)
    result = batched_kmeans(x, torch.tensor([0, 0, 0, 1]), k=2, num_groups=3, restarts=2)
    assert result.labels.shape == (4,) and torch.isfinite(result.inertia).all()
    assert result.inertia.tolist() == [0.0, 0.0, 0.0]  # {0,0},{1} / a single point / an empty group
    nothing = batched_kmeans(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64), num_groups=2, restarts=2)
    assert nothing.labels.numel() == 0 and nothing.inertia.tolist() == [0.0, 0.0]


def test_numpy_numbers_are_taken_where_python_numbers_are():
    assert torch.equal(random_subset_indices(DIGITS, np.float32(0.25), seed=np.int64(3)),
                       random_subset_indices(DIGITS, 0.25, seed=3))
    assert torch.equal(random_subset_indices(DIGITS, np.int64(7)), random_subset_indices(DIGITS, 7))
    assert len(random_subset_indices(DIGITS, np.float64(0.5))) == round(0.5 * len(DIGITS))
    schedule = LRSchedule("multistep", np.float32(0.1), np.int64(10), milestones=np.array([3, 6]), gamma=np.float64(0.5))
    assert math.isclose(schedule.lr(np.int64(7)), 0.1 * 0.25, rel_tol=1e-6)
    assert build_model("small_cnn", np.int64(4), in_channels=np.int32(1)).classifier.out_features == 4
    assert long_tail_counts(np.array([10, 10]), np.float32(2.0)) == [10, 5]
    subset = DIGITS.subset(np.array([3, 3, 1], dtype=np.int32))  # duplicates and numpy are fine for a subset
    assert torch.equal(subset.targets, DIGITS.targets[[3, 3, 1]])
    assert len(DIGITS.subset([])) == 0 and len(DIGITS.subset(torch.tensor([], dtype=torch.int64))) == 0
    counted = _influence(budget=np.int64(4)).select(STATS)
    fraction = _influence(budget=np.float32(0.1)).select(STATS)
    assert len(counted) == 4 and len(fraction) == round(0.1 * len(STATS))
    assert check_steps(np.array([5, 3]), np.int64(10)) == (3, 5)
    assert parse_shard(np.array([1, 4])) == (1, 4)


# ----------------------------------------------------------------------------- classes found beyond the report

def test_a_finite_imbalance_factor_that_empties_a_class_is_reported():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert long_tail_counts([20, 20, 20], 20.0) == [20, 4, 1]      # the largest factor keeping every class
    with pytest.warns(UserWarning, match=r"imbalance_factor=21 leaves classes \[2\] with no examples"):
        assert long_tail_counts([20, 20, 20], 21.0) == [20, 4, 0]   # LDAM's formula, unchanged
    with pytest.raises(ValueError, match="class 1 is empty"):
        long_tail_counts([20, 0, 20], 2.0)


def test_a_tiny_test_fraction_names_the_parameter_not_sklearn():
    with pytest.raises(ValueError, match=r"test_fraction=0.001 cannot split 1797 examples of 10 classes"):
        load_dataset("digits", test_fraction=0.001)


def test_numpy_and_list_selections_are_converted_and_garbage_is_named():
    selection = Selection(np.array([3, 1]), [1.0, 0.5], "manual")
    assert selection.indices.dtype == torch.int64 and selection.weights.dtype == torch.float32
    assert SelectionHistory(5).update(selection)["weight_max"] == 1.0
    with pytest.raises(TypeError, match="selection.weights"):
        Selection(torch.tensor([1]), None, "manual")


def test_noise_on_a_uint8_image_and_a_model_without_embeddings_are_named():
    with pytest.raises(TypeError, match="GaussianNoise expects a float image"):
        GaussianNoise(0.1)(torch.zeros(3, 4, 4, dtype=torch.uint8))
    from augcore.influence import LastLayerInfluence, train_augmenter
    emb = torch.randn(10, 2)
    layer = torch.nn.Linear(2, 2)
    influence = LastLayerInfluence(layer.weight, layer.bias, emb, layer(emb).detach()).fit(emb, torch.arange(10) % 2)
    with pytest.raises(TypeError, match="model must be a classifier nn.Module"):
        train_augmenter(TranslationAugmenter(2, hidden=4), lambda x: (layer(x), x), influence, emb,
                        torch.arange(10) % 2, epochs=1, progress=False)

    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = layer

        def forward(self, x):
            return self.classifier(x), x

    # a model returning logits only: its embedding is the input of its final nn.Linear, as returned by Pair
    records = []
    for model in (Pair(), torch.nn.Sequential(layer)):
        torch.manual_seed(0)
        records.append(train_augmenter(TranslationAugmenter(2, hidden=4), model, influence, emb, torch.arange(10) % 2,
                                       epochs=2, batch_size=4, regularisation=0.0, progress=False))
    assert records[0] == records[1]


def test_seeds_beyond_64_bits_are_named():
    with pytest.raises(ValueError, match="seed must be <="):
        seed_everything(2 ** 64)
    seed_everything(2 ** 64 - 1)
