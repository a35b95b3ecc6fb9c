"""Bad input, by kind: weights that cannot be weights, counts that are not whole numbers
(never truncated), files that lack entries or carry another format version; and the CLI
ending each kind with one line and exit status 2. (numpy values: test_robustness_numpy.py.)"""
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import small_train_config
from hypothesis import HealthCheck, given, settings, strategies as st

import augcore
from augcore.checks import CorruptFileError, check_count
from augcore.apps.cli import main
from augcore.selection.greedi import greedi_facility_location
from augcore.generate.store import SyntheticStore, read_part
from augcore.io import atomic_torch_save, atomic_write_text
from augcore.selection import Selection, SelectionHistory
from augcore.train import Trainer
from augcore.train.batches import ShardedBatchSampler
from augcore.train.checkpoint import (AUGMENT_ENTRIES, CONFIG_ENTRIES, POLICY_ENTRIES, REQUIRED_ENTRIES, RNG_ENTRIES,
                                      load_checkpoint)

POINTS = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
GROUPS = torch.arange(30) % 3


# ----------------------------------------------------------------------------- weights that cannot be weights

@pytest.mark.parametrize("how", ["raw", "normalized", "unit"])
@pytest.mark.parametrize("gamma,match", [
    (torch.tensor([3.0, -1.0, 2.0]), r"non-negative counts, found -1.0 at index 1"),
    (np.array([3, -2]), r"non-negative counts, found -2.0 at index 1"),
    (torch.tensor([1.0, float("nan")]), r"gamma contains 1 non-finite value\(s\) \(NaN\), first at index \(1,\)"),
    (np.array([float("inf"), 1.0]), r"gamma contains 1 non-finite value\(s\) \(infinite\), first at index \(0,\)"),
    (torch.ones(2, 2), r"gamma must be a 1-D tensor of counts"),
])
def test_counts_that_cannot_be_weights_are_refused_by_name(gamma, match, how):
    with pytest.raises(ValueError, match=match):
        augcore.normalize_weights(gamma, how)


@pytest.mark.parametrize("gamma", [torch.tensor([True, False]), "3", None, 3.0, np.float32(2)])
def test_values_that_are_not_counts_are_refused_by_name(gamma):
    with pytest.raises(TypeError, match="gamma"):
        augcore.normalize_weights(gamma)


def test_a_zero_sum_takes_the_documented_fallback_and_weights_match_float64():
    # zero counts count as 1 (the released code's rule), so an all-zero gamma gives unit weights, never 0/0
    assert augcore.normalize_weights(torch.zeros(4)).tolist() == [1.0] * 4
    assert augcore.normalize_weights(np.zeros(0)).numel() == 0
    counts = np.random.default_rng(3).integers(0, 50, 200)
    g = np.where(counts == 0, 1, counts).astype(np.float64)
    np.testing.assert_allclose(augcore.normalize_weights(counts).numpy(), g / g.sum() * g.size, rtol=1e-6)
    gamma = augcore.facility_location(POINTS, 9, GROUPS, method="lazy").weights  # the real producer
    weights = augcore.normalize_weights(gamma)
    assert torch.isfinite(weights).all() and (weights > 0).all()
    assert float(weights.sum()) == pytest.approx(gamma.numel(), rel=1e-6)


# ----------------------------------------------------------------------------- counts are whole or refused

def test_split_budget_no_longer_truncates_per_group_budgets():
    # the reported case: [1.9, 1.0, 0.5] became [1, 1, 0]
    with pytest.raises(TypeError, match=r"budget \(per-group budgets\)\[0\] must be an integer count, got 1.9"):
        augcore.split_budget([3, 3, 3], [1.9, 1.0, 0.5])
    with pytest.raises(TypeError, match=r"sizes \(the group sizes\)\[1\].*2.5"):
        augcore.split_budget([3, 2.5], 2)
    with pytest.raises(TypeError, match=r"budget \(a number of examples\).*4.5"):
        augcore.split_budget([3, 3], np.float32(4.5))
    # whole numbers in float form are the same counts
    assert augcore.split_budget([3, 3, 3], [2.0, 1.0, 0.0]).tolist() == [2, 1, 0]
    assert augcore.split_budget(np.array([3.0, 6.0]), 3.0).tolist() == augcore.split_budget([3, 6], 3).tolist()


# (call, parameter name the error must carry)
COUNT_PARAMETERS = {
    "split_budget.budget": (lambda v: augcore.split_budget([4, 6, 5], v), "budget"),
    "split_budget.per_group": (lambda v: augcore.split_budget([4, 6, 5], [1, v, 2]), "budget"),
    "split_budget.sizes": (lambda v: augcore.split_budget([4, v, 5], 2), "sizes"),
    "facility_location.budget": (lambda v: augcore.facility_location(POINTS, v, GROUPS), "budget"),
    "facility_location.per_group": (lambda v: augcore.facility_location(POINTS, [v, 1, 1], GROUPS), "budget"),
    "greedi.budget": (lambda v: greedi_facility_location(POINTS, torch.arange(30), v), "budget"),
    "ShardedBatchSampler.batch_size": (lambda v: ShardedBatchSampler(20, v, 0, 1, 0), "batch_size"),
    "check_count": (lambda v: check_count("copies", v), "copies"),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(COUNT_PARAMETERS)),
       value=st.floats(0.01, 9.99).filter(lambda v: not v.is_integer()),
       kind=st.sampled_from([float, np.float32, np.float64, lambda v: torch.tensor(v)]))
def test_no_count_is_ever_rounded(name, value, kind):
    call, parameter = COUNT_PARAMETERS[name]
    value = kind(value)
    with pytest.raises(TypeError, match=parameter) as info:
        call(value)
    assert "whole number" in str(info.value) or "integer" in str(info.value)
    rounded = round(float(value))  # the whole number in float form is the count itself (or the same error)
    as_float, as_int = _result(lambda: call(float(rounded))), _result(lambda: call(rounded))
    assert type(as_float) is type(as_int) and (isinstance(as_int, Exception) or _same(as_float, as_int))


def _result(call):
    try:
        return call()
    except (TypeError, ValueError) as exc:
        return exc


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if hasattr(a, "indices"):  # a FacilityLocationResult or GreeDiResult
        return torch.equal(a.indices, b.indices)
    if isinstance(a, ShardedBatchSampler):
        return [x.tolist() for x in a.batches] == [x.tolist() for x in b.batches]
    return a == b


# ----------------------------------------------------------------------------- files read back

@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, small_digits):
    """A real one-epoch run's folder: checkpoint.pt, selection.pt, selection_history.json."""
    folder = tmp_path_factory.mktemp("run")
    train, test = small_digits
    cfg = small_train_config(schedule={"epochs": 1, "milestones": []})
    Trainer(cfg, train_set=train, test_set=test, out_dir=str(folder)).fit()
    return folder


def _damaged(run_folder, tmp_path, change):
    state = torch.load(run_folder / "checkpoint.pt", weights_only=False)
    change(state)
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save(state, path)
    return path


@pytest.mark.parametrize("entry", ["format", *REQUIRED_ENTRIES, *(f"policy.{e}" for e in POLICY_ENTRIES),
                                   *(f"rng.{e}" for e in RNG_ENTRIES), *(f"config.{e}" for e in CONFIG_ENTRIES),
                                   *(f"config.augment.{e}" for e in AUGMENT_ENTRIES)])
def test_a_checkpoint_lacking_an_entry_names_the_file_and_the_entry(run_folder, tmp_path, entry):
    def drop(state):
        *outer, key = entry.split(".")
        for name in outer:
            state = state[name]
        state.pop(key)

    path = _damaged(run_folder, tmp_path, drop)
    with pytest.raises(CorruptFileError, match=repr(entry.split(".")[-1])) as info:
        load_checkpoint(path)
    assert info.value.path == str(path) and str(path) in str(info.value)


def test_the_reported_resume_of_a_checkpoint_without_config_names_it(run_folder, tmp_path, small_digits):
    # it used to end in a bare KeyError: 'config'
    path = _damaged(run_folder, tmp_path, lambda s: s.pop("config"))
    train, test = small_digits
    trainer = Trainer(small_train_config(schedule={"epochs": 1, "milestones": []}), train_set=train, test_set=test,
                      out_dir=str(tmp_path))
    with pytest.raises(CorruptFileError, match=r"checkpoint.pt: incomplete training checkpoint: lacks 'config'"):
        trainer.fit(resume=True)


@pytest.mark.parametrize("change,match", [
    (lambda s: s.update(format=2), r"format version 2 was written by a newer augcore; this augcore reads "
                                   r"training checkpoints of format 1"),
    (lambda s: s.update(format="1"), r"format version '1' is not one this augcore reads"),
    (lambda s: s.update(config="digits"), r"'config' is a str, not a dict"),
    (lambda s: s.update(epoch=-2), r"'epoch' is -2, not an epoch number"),
    (lambda s: s["policy"].update(history="{}"), r"damaged selection state.*SelectionHistory format"),
    (lambda s: s["policy"].update(selection={"indices": torch.tensor([1])}), r"missing \['method', 'weights'\]"),
])
def test_a_checkpoint_of_another_version_or_with_a_damaged_entry_is_named(run_folder, tmp_path, change, match):
    path = _damaged(run_folder, tmp_path, change)
    with pytest.raises(CorruptFileError, match=match) as info:
        load_checkpoint(path)
    assert info.value.path == str(path)


def test_selection_files_carry_and_check_their_format_version(run_folder, tmp_path):
    selection = Selection.load(run_folder / "selection.pt")
    assert torch.load(run_folder / "selection.pt", weights_only=False)["format"] == 1
    for change, match in ((lambda s: s.update(format=7), "format version 7 was written by a newer augcore"),
                          (lambda s: s.pop("indices"), r"missing \['indices'\]")):
        state = torch.load(run_folder / "selection.pt", weights_only=False)
        change(state)
        atomic_torch_save(state, tmp_path / "sel.pt")
        with pytest.raises(CorruptFileError, match=match):
            Selection.load(tmp_path / "sel.pt")
    # a file from before the version entry still loads
    atomic_torch_save(selection.to_state(), tmp_path / "old.pt")
    assert torch.equal(Selection.load(tmp_path / "old.pt").indices, selection.indices)


def test_history_records_lacking_fields_are_named(run_folder, tmp_path):
    state = json.loads((run_folder / "selection_history.json").read_text())
    del state["records"][0]["overlap_previous"]
    atomic_write_text(tmp_path / "h.json", json.dumps(state))
    with pytest.raises(CorruptFileError, match=r"h.json.*records\[0\] lacks \['overlap_previous'\]"):
        SelectionHistory.load(tmp_path / "h.json")
    state["format_version"] = 3
    atomic_write_text(tmp_path / "h.json", json.dumps(state))
    with pytest.raises(CorruptFileError, match=r"h.json.*format version 3; this augcore reads format 1"):
        SelectionHistory.load(tmp_path / "h.json")


def test_a_store_part_of_another_format_version_is_named(tmp_path):
    store = SyntheticStore(tmp_path)
    store.open_for_writing({"num_sources": 1})
    record = {"source": 0, "step": 1, "file": "images/s001/00000000.png", "shape": [3, 4, 4]}
    store.write_unit(1, 0, [torch.zeros(3, 4, 4, dtype=torch.uint8)], [record])
    part = next((tmp_path / "parts").iterdir())
    assert len(read_part(str(part))) == 1
    header, _, body = part.read_bytes().partition(b"\n")
    part.write_bytes(json.dumps({**json.loads(header), "augcore_part": 9}).encode() + b"\n" + body)
    with pytest.raises(CorruptFileError, match=r"format version 9 was written by a newer augcore; this augcore reads "
                                               r"store parts of format 2"):
        read_part(str(part))


# ----------------------------------------------------------------------------- the CLI: one line, exit 2, per kind

def _one_line_error(capsys, command):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"augcore {command}: error: "), err
    return err


def test_cli_numpy_kind_an_array_where_a_number_is_meant(capsys):
    assert main(["train", "--config", "digits_demo", "--set", "augment.fraction=[0.1, 0.2]"]) == 2
    assert "augment.fraction: expected a number, got [0.1, 0.2]" in _one_line_error(capsys, "train")


def test_cli_weights_kind_negative_counts(capsys, monkeypatch):
    # no CLI option takes counts directly: a command whose selection yields negative counts ends the same way
    import augcore.apps.checkpoint_selection

    monkeypatch.setattr(augcore.apps.checkpoint_selection, "select_from_checkpoint",
                        lambda *a, **k: augcore.normalize_weights(np.array([2.0, -1.0])))
    assert main(["select", "--checkpoint", "any.pt", "--out", "never.pt"]) == 2
    assert "gamma must hold non-negative counts, found -1.0 at index 1" in _one_line_error(capsys, "select")


def test_cli_count_kind_a_count_that_is_not_whole(capsys):
    assert main(["train", "--config", "digits_demo", "--set", "schedule.epochs=2.5"]) == 2
    assert "schedule.epochs: expected an integer, got 2.5" in _one_line_error(capsys, "train")


def test_cli_file_kind_a_checkpoint_lacking_config(run_folder, tmp_path, capsys):
    path = _damaged(run_folder, tmp_path, lambda s: s.pop("config"))
    assert main(["select", "--checkpoint", str(path), "--out", str(tmp_path / "sel.pt")]) == 2
    assert f"{path}: incomplete training checkpoint: lacks 'config'" in _one_line_error(capsys, "select")
    resume = tmp_path / "resume"
    resume.mkdir()
    shutil.copy(path, resume / "checkpoint.pt")
    assert main(["train", "--config", "digits_demo", "--out", str(resume), "--set", "run.progress=false",
                 "--resume"]) == 2
    assert "lacks 'config'" in _one_line_error(capsys, "train")
    assert not (tmp_path / "sel.pt").exists()


@pytest.mark.parametrize("gamma,match", [
    ([1, [2, 3]], "gamma: expected a rectangular list of numbers"),
    (["a", "b"], "gamma: expected a rectangular list of numbers"),
    (np.array([1, "x"], dtype=object), "gamma: expected an array of numbers, got a numpy array of dtype object"),
    (np.array([1 + 2j]), "gamma: expected an array of numbers, got a numpy array of dtype complex128"),
])
def test_arrays_that_hold_no_numbers_are_named(gamma, match):
    with pytest.raises(TypeError, match=match):
        augcore.normalize_weights(gamma)
