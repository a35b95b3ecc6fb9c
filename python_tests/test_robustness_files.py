"""Damaged files are detected and named: checkpoints, selections, histories, CIFAR batches,
the generation store; temp files of killed writers are removed at the next start."""
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest
import torch

from augcore.checks import CorruptFileError
from augcore.data import load_dataset
from augcore.generate.store import SyntheticStore, image_relpath, read_part, unit_name
from augcore.io import atomic_torch_save, load_torch_file, remove_stale_temp_files, temp_file_prefix
from augcore.models import build_model
from augcore.selection import Selection, SelectionHistory
from augcore.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, rng_state


# ----------------------------------------------------------------------------- checkpoints

def _checkpoint_state(seed=0):
    torch.manual_seed(seed)
    model = build_model("small_cnn", 10, in_channels=1, image_size=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 1, 8, 8))[0].sum().backward()
    optimizer.step()
    return {"format": CHECKPOINT_FORMAT, "epoch": 3, "model": model.state_dict(), "scaler": {},
            "config": {"augment": {"mode": "random", "selector": {}}, "run": {}},
            "optimizer": optimizer.state_dict(), "rows": [{"epoch": 0, "test_top1": 11.0}], "rng": rng_state(),
            "policy": {"selection": None, "history": SelectionHistory(10).to_json(), "selection_epochs": []}}


def _member_data_offset(path, member):
    """Byte offset and size of a stored (uncompressed) zip member's data, read from the zip's own headers."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _flip_byte(path, offset):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x5A]))


def _largest_tensor_member(path):
    with zipfile.ZipFile(path) as zf:
        data = [i for i in zf.infolist() if "/data/" in i.filename]
    return max(data, key=lambda i: i.file_size).filename


def test_a_checkpoint_round_trips_exactly_and_plain_torch_load_still_reads_it(tmp_path):
    state = _checkpoint_state()
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save(state, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checksummed file loads without the "unverified" warning
        loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["rows"] == state["rows"]
    assert all(torch.equal(loaded["model"][k], v) for k, v in state["model"].items())
    plain = torch.load(path, weights_only=False)  # the checksum lives in the zip comment, which torch ignores
    assert all(torch.equal(plain["model"][k], v) for k, v in state["model"].items())
    assert zipfile.ZipFile(path).comment.startswith(b"augcore-sha256:")


def test_a_byte_flipped_inside_a_weight_tensor_is_detected(tmp_path):
    state = _checkpoint_state()
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save(state, path)
    member = _largest_tensor_member(path)
    offset, size = _member_data_offset(path, member)
    _flip_byte(path, offset + size // 2)
    # torch alone does not notice: it loads changed weights (the failure the checksum closes)
    silently_changed = torch.load(path, weights_only=False)["model"]
    assert any(not torch.equal(silently_changed[k], v) for k, v in state["model"].items())
    with pytest.raises(CorruptFileError, match="checksum mismatch") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and info.value.path == str(path)


@pytest.mark.parametrize("where", ["first byte", "pickle", "middle", "zip directory", "last byte"])
def test_a_byte_flipped_anywhere_in_the_file_is_detected(tmp_path, where):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save(_checkpoint_state(), path)
    size = os.path.getsize(path)
    if where == "pickle":
        offset = _member_data_offset(path, next(n for n in zipfile.ZipFile(path).namelist()
                                                 if n.endswith("data.pkl")))[0] + 5
    else:
        offset = {"first byte": 0, "middle": size // 2, "zip directory": size - 120, "last byte": size - 1}[where]
    _flip_byte(path, offset)
    with pytest.raises(CorruptFileError, match=str(path).replace("\\", "\\\\")):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 1, 100, 0.5, -1])
def test_empty_and_truncated_checkpoints_name_the_file(tmp_path, keep):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save(_checkpoint_state(), path)
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    path.write_bytes(data[:cut])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a cut-off comment reads as "no checksum": torch.load then fails
        with pytest.raises(CorruptFileError) as info:
            load_checkpoint(path)
    assert info.value.path == str(path)


def test_old_checkpoints_without_a_checksum_load_with_a_warning(tmp_path):
    state = _checkpoint_state()
    path = tmp_path / "old.pt"
    torch.save(state, path)
    with pytest.warns(UserWarning, match="no checksum"):
        loaded = load_checkpoint(path)
    assert all(torch.equal(loaded["model"][k], v) for k, v in state["model"].items())


def test_files_that_are_not_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(2000))
    with pytest.warns(UserWarning), pytest.raises(CorruptFileError, match="garbage.pt"):
        load_checkpoint(garbage)
    other = tmp_path / "other.pt"
    atomic_torch_save({"weights": torch.ones(3)}, other)
    with pytest.raises(CorruptFileError, match="not an augcore training checkpoint"):
        load_checkpoint(other)
    with pytest.raises(TypeError, match="path"):
        load_torch_file(3)


def test_selection_files_are_verified_too(tmp_path):
    selection = Selection(torch.tensor([4, 1, 7]), torch.tensor([1.0, 2.0, 0.5]), "coreset", epoch=2)
    path = tmp_path / "selection.pt"
    selection.save(path)
    back = Selection.load(path)
    assert torch.equal(back.indices, selection.indices) and torch.equal(back.weights, selection.weights)
    offset, size = _member_data_offset(path, _largest_tensor_member(path))
    _flip_byte(path, offset + size - 1)
    with pytest.raises(CorruptFileError, match="selection.pt"):
        Selection.load(path)
    atomic_torch_save({"not": "a selection"}, path)
    with pytest.raises(CorruptFileError, match="not a saved Selection"):
        Selection.load(path)


# ----------------------------------------------------------------------------- temp files of killed writers

_KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    from augcore.io import atomic_write
    def write(fh):
        fh.write(b"half a file")
        fh.flush()
        print("writing", flush=True)
        time.sleep(60)
    atomic_write(os.path.join(sys.argv[1], "checkpoint.pt"), write)
""")


def _killed_writer_leaves_a_temp_file(folder):
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"writing"
    leftovers = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return leftovers


def test_a_killed_writers_temp_file_is_removed_at_the_next_start(tmp_path):
    leftovers = _killed_writer_leaves_a_temp_file(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].endswith(".pt")
    (tmp_path / "keep.pt").write_bytes(b"a finished file")
    (tmp_path / ".tmp-old-version.png").write_bytes(b"a temp file without a recorded writer")
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(os.path.basename(p) for p in removed) == sorted(leftovers + [".tmp-old-version.png"])
    assert os.listdir(tmp_path) == ["keep.pt"]


def test_a_live_writers_temp_file_is_kept(tmp_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        name = temp_file_prefix().replace(f"-{os.getpid()}@", f"-{alive.pid}@") + "x.pt"
        (tmp_path / name).write_bytes(b"being written")
        sub = tmp_path / "nested"
        sub.mkdir()
        (sub / name).write_bytes(b"being written")
        (sub / ".tmp-legacy").write_bytes(b"")
        assert remove_stale_temp_files(tmp_path) == []   # not recursive: the nested folder is left alone
        assert remove_stale_temp_files(tmp_path, recursive=True) == [str(sub / ".tmp-legacy")]
        assert (tmp_path / name).exists() and (sub / name).exists()
    finally:
        alive.kill()
        alive.wait()
    assert len(remove_stale_temp_files(tmp_path, recursive=True)) == 2


# ----------------------------------------------------------------------------- selection history

def test_a_damaged_selection_history_names_the_file(tmp_path):
    history = SelectionHistory(10)
    history.update(Selection(torch.tensor([1, 2, 3]), torch.ones(3), "random"))
    path = tmp_path / "history.json"
    history.save(path)
    assert SelectionHistory.load(path).counts.tolist() == history.counts.tolist()
    text = path.read_text()
    state = json.loads(text)
    for damaged in (text[: len(text) // 2].encode(), b"", b"\x00\xff garbage", b"[1, 2]",
                    json.dumps({**state, "counts": [-4] + state["counts"][1:]}).encode(),
                    json.dumps({**state, "counts": [0.5] * 10}).encode(),
                    json.dumps({**state, "counts": state["counts"][:4]}).encode(),
                    json.dumps({**state, "last_indices": [99]}).encode(),
                    json.dumps({k: v for k, v in state.items() if k != "records"}).encode()):
        path.write_bytes(damaged)
        with pytest.raises(CorruptFileError, match="history.json"):
            SelectionHistory.load(path)


# ----------------------------------------------------------------------------- CIFAR batches

def _write_cifar10(folder, batch=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for b in range(1, 6):
        entry = {b"labels": list(range(10)), b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8)}
        with open(folder / f"data_batch_{b}", "wb") as fh:
            pickle.dump(entry if batch is None or b != 2 else batch, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh, protocol=2)


@pytest.mark.parametrize("batch,match", [
    ({b"labels": list(range(10))}, r"lacks key\(s\) \['data'\]"),
    ({b"data": np.zeros((10, 3072), np.uint8)}, r"lacks key\(s\) \['labels'\]"),
    ({b"data": np.zeros((10, 3072), np.uint8), b"labels": list(range(9))}, "10 images but 9 labels"),
    ({b"data": np.zeros((10, 100), np.uint8), b"labels": list(range(10))}, r"\(N, 3072\)"),
    (["not", "a", "dict"], "holds a dict"),
])
def test_a_cifar_batch_without_what_it_should_hold_is_named(tmp_path, batch, match):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder, batch)
    with pytest.raises(CorruptFileError, match=match) as info:
        load_dataset("cifar10", tmp_path)
    assert info.value.path == str(folder / "data_batch_2")


@pytest.mark.parametrize("cut", [0, 1, 40, 0.5, -1])
def test_a_truncated_cifar_batch_is_named(tmp_path, cut):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    path = folder / "data_batch_3"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut % len(data)])
    with pytest.raises(CorruptFileError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path)


# ----------------------------------------------------------------------------- the generation store

def _filled_store(root, units=((2, 0, (0, 1, 2)), (2, 1, (3, 4)), (5, 0, (0, 1, 2)))):
    store = SyntheticStore(root)
    store.open_for_writing({"seed": 0})
    for step, unit, sources in units:
        images = [torch.full((3, 4, 4), 10 * s + step, dtype=torch.uint8) for s in sources]
        records = [{"source": s, "step": step, "file": image_relpath(s, step), "label": s % 2} for s in sources]
        store.write_unit(step, unit, images, records)
    return store


def test_store_records_round_trip_with_image_checksums(tmp_path):
    store = _filled_store(tmp_path)
    records = store.records()
    assert [(r["source"], r["step"]) for r in records] == sorted([(s, 2) for s in range(5)] + [(s, 5) for s in range(3)])
    for r in records:
        assert torch.equal(store.load_image(r), torch.full((3, 4, 4), 10 * r["source"] + r["step"], dtype=torch.uint8))
    assert store.unit_done(2, 1, (3, 4))
    with pytest.warns(UserWarning, match="not the 3 items planned"):
        assert not store.unit_done(2, 1, (3, 4, 5))


@pytest.mark.parametrize("damage", ["drop last record", "cut mid-line", "empty", "flip a byte", "drop header"])
def test_a_damaged_part_is_named_when_read_and_redone_on_resume(tmp_path, damage):
    store = _filled_store(tmp_path)
    part = tmp_path / "parts" / (unit_name(2, 0) + ".jsonl")
    data = part.read_bytes()
    lines = data.splitlines(keepends=True)
    damaged = {"drop last record": b"".join(lines[:-1]), "cut mid-line": data[: len(data) - 20], "empty": b"",
               "flip a byte": data.replace(b'"source": 1', b'"source": 7'),
               "drop header": b"".join(lines[1:-1])}[damage]
    part.write_bytes(damaged)
    if damage == "drop header":  # reads as a part from before headers: only the plan can tell it lost a record
        assert len(read_part(str(part))) == 2
    else:
        with pytest.raises(CorruptFileError, match=unit_name(2, 0)):
            store.records()
    with pytest.warns(UserWarning, match="redone"):
        assert not store.unit_done(2, 0, (0, 1, 2))


def test_a_damaged_or_missing_image_makes_its_unit_be_redone(tmp_path):
    store = _filled_store(tmp_path)
    image = tmp_path / image_relpath(4, 2)
    image.write_bytes(image.read_bytes()[:-3])
    with pytest.raises(CorruptFileError, match="checksum mismatch"):
        store.load_image(next(r for r in store.records() if (r["source"], r["step"]) == (4, 2)))
    with pytest.warns(UserWarning, match="redone"):
        assert not store.unit_done(2, 1, (3, 4))
    os.unlink(tmp_path / image_relpath(0, 5))
    with pytest.warns(UserWarning, match="redone"):
        assert not store.unit_done(5, 0, (0, 1, 2))
    assert store.unit_done(2, 0, (0, 1, 2))


def test_a_duplicated_record_names_both_parts(tmp_path):
    store = _filled_store(tmp_path)
    store.write_unit(2, 7, [torch.zeros(3, 4, 4, dtype=torch.uint8)],
                     [{"source": 3, "step": 2, "file": image_relpath(3, 2)}])
    with pytest.raises(CorruptFileError, match="also recorded in"):
        store.records()


def test_damaged_store_settings_are_named(tmp_path):
    _filled_store(tmp_path)
    (tmp_path / "store.json").write_text('{"seed": 0')
    with pytest.raises(CorruptFileError, match="store.json"):
        SyntheticStore(tmp_path).open_for_writing({"seed": 0})
    (tmp_path / "store.json").write_text("[1]")
    with pytest.raises(CorruptFileError, match="JSON object"):
        SyntheticStore(tmp_path).settings()


def test_store_settings_carry_a_format_version_and_a_newer_one_is_refused(tmp_path):
    SyntheticStore(tmp_path).open_for_writing({"seed": 0})
    stored = json.loads((tmp_path / "store.json").read_text())
    assert stored == {"augcore_store": 1, "seed": 0}
    assert SyntheticStore(tmp_path).settings() == {"seed": 0}          # the version is not a setting
    SyntheticStore(tmp_path).open_for_writing({"seed": 0})              # resuming matches
    (tmp_path / "store.json").write_text('{"seed": 0}')                 # written before versions: format 1
    assert SyntheticStore(tmp_path).settings() == {"seed": 0}
    (tmp_path / "store.json").write_text('{"augcore_store": 2, "seed": 0}')
    with pytest.raises(CorruptFileError, match="newer augcore"):
        SyntheticStore(tmp_path).open_for_writing({"seed": 0})


def test_opening_a_store_removes_a_killed_runs_temp_files(tmp_path):
    _filled_store(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    prefix = temp_file_prefix().replace(f"-{os.getpid()}@", f"-{dead.stdout.strip()}@")
    stale = [tmp_path / "parts" / (prefix + "a.jsonl"), tmp_path / "images" / "s002" / (prefix + "b.png")]
    for path in stale:
        path.write_bytes(b"half")
    SyntheticStore(tmp_path).open_for_writing({"seed": 0})
    assert not any(p.exists() for p in stale)
    assert len(SyntheticStore(tmp_path).records()) == 8


# ----------------------------------------------------------------------------- other data files

def test_a_damaged_svhn_file_is_named(tmp_path):
    import scipy.io

    folder = tmp_path / "svhn"
    folder.mkdir()
    path = folder / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.array([[1], [2], [10], [3]])})
    assert load_dataset("svhn", tmp_path, train=False).targets.tolist() == [1, 2, 0, 3]
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptFileError, match="test_32x32.mat"):
        load_dataset("svhn", tmp_path, train=False)
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 4), np.uint8)})
    with pytest.raises(CorruptFileError, match="expected keys 'X' and 'y'"):
        load_dataset("svhn", tmp_path, train=False)


def test_a_damaged_image_in_a_class_folder_is_named_when_read(tmp_path):
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.fromarray(np.full((6, 6, 3), 40 * i, np.uint8)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "dog" / "3.png").write_bytes(b"\x89PNG not really")
    splits = [load_dataset("imagefolder", tmp_path, train=train, image_size=6, test_fraction=0.4)
              for train in (True, False)]
    data = next(d for d in splits if any(p.endswith(os.path.join("dog", "3.png")) for p in d._images.paths))
    broken = next(i for i, p in enumerate(data._images.paths) if p.endswith(os.path.join("dog", "3.png")))
    assert data.image(0).shape == (3, 6, 6)
    with pytest.raises(CorruptFileError, match=r"3\.png"):
        data.image(broken)


@pytest.mark.parametrize("content, problem", [("[0, 1", "cannot read"), ('{"a": 1}', "indices"),
                                              ("[0, 1.5]", "integer"), ('["3"]', "integer")])
def test_generate_selection_json_that_is_not_a_list_of_indices_is_one_line_exit_2(tmp_path, capsys, content,
                                                                                   problem):
    from augcore.apps.cli import main

    path = tmp_path / "selection.json"
    path.write_text(content, encoding="utf-8")
    code = main(["generate", "--model", "tiny", "--dataset", "digits", "--selection", str(path),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--selection" in err and problem in err and str(path) in err
