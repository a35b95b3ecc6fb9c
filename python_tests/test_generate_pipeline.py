"""The `augcore generate` CLI and the end-to-end pipeline, on digits with tiny random models."""
import json

import pytest
import torch
import yaml

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from augcore.configs import resolve_config
from augcore.generate import SyntheticStore
from augcore.apps.cli import build_parser
from augcore.generate.tiny import build_tiny_img2img
from augcore.selection.base import Selection


@pytest.fixture(scope="module")
def sd_path(tmp_path_factory):
    return build_tiny_img2img(str(tmp_path_factory.mktemp("tiny_sd")), resolution=16)


def _parse(argv):
    return build_parser().parse_args(argv)


def test_cli_generates_a_selection_and_resumes(sd_path, tmp_path, capsys):
    sel = Selection(indices=torch.tensor([5, 0, 9]), weights=torch.ones(3), method="slow_learnable")
    sel.save(tmp_path / "sel.pt")
    argv = ["generate", "--model", sd_path, "--dataset", "digits", "--selection", str(tmp_path / "sel.pt"),
            "--out", str(tmp_path / "out"), "--steps", "2", "4", "--total-steps", "10", "--batch-size", "2",
            "--no-progress"]
    args = _parse(argv)
    assert args.func(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["generated"] == 6 and first["skipped"] == 0
    records = SyntheticStore(tmp_path / "out").records()
    assert sorted((r["source"], r["step"]) for r in records) == sorted((s, t) for s in (0, 5, 9) for t in (2, 4))
    assert all(r["shape"] == [1, 8, 8] and r["prompt"].startswith("a photo of a ") for r in records)
    args = _parse(argv)
    args.func(args)
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["generated"] == 0 and second["skipped"] == 6


def test_end_to_end_pipeline_on_digits(sd_path, tmp_path):
    from augcore.generate.pipeline import run_pipeline

    with open(resolve_config("targeted_synthetic_digits")) as fh:
        raw = yaml.safe_load(fh)
    raw["generate"]["model"] = sd_path
    raw["train"]["schedule"]["epochs"] = 2
    raw["out"] = str(tmp_path / "run")
    from augcore.data import load_dataset

    train_set = load_dataset("digits", train=True).subset(torch.arange(120))   # keeps generation short
    result = run_pipeline(raw, train_set=train_set)
    sel = Selection.load(tmp_path / "run" / "selection.pt")
    assert result.selected == len(sel) > 0
    assert result.generated == 2 * len(sel)
    assert len(SyntheticStore(tmp_path / "run" / "synthetic").records()) == 2 * len(sel)
    assert len(result.retrain.rows) == 2               # retrained from scratch for the full schedule
    separate = (tmp_path / "run" / "separate" / "metrics.jsonl").read_text().strip().splitlines()
    assert len(separate) == 1                          # stopped at the separating epoch
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["selected"] == len(sel) and summary["k"] == 3
