"""End to end through the CLI: train on digits with a coreset selector, resume, select, demo."""
import json

import pytest
import torch

from augcore.apps.cli import build_parser, main
from augcore.data import load_dataset
from augcore.selection import CoresetSelector, Selection, collect_stats
from augcore.train import load_checkpoint

CONFIG = "digits_demo"   # a shipped config, by name


def test_train_resume_and_select_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--config", CONFIG, "--out", str(out), "--set", "schedule.epochs=2",
            "--set", "augment.reselect_every=1", "--set", "run.progress=false",
            "--set", "augment.selector={method: lazy}"]
    assert main(argv) == 0
    assert "best test top-1" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    n = len(load_dataset("digits", train=True))
    k = round(0.3 * n)
    assert [r["epoch"] for r in rows] == [0, 1]
    for r in rows:  # full data plus one strong copy of each of the 30% coreset
        assert r["selection_size"] == k and r["num_augmented"] == k and r["train_examples"] == n + k
        assert r["selection_time"] > 0 and r["weight_mean"] == pytest.approx(1.0, rel=1e-5)
        assert 0.0 <= r["test_top1"] <= r["test_top5"] <= 100.0
    assert rows[1]["overlap_previous"] is not None
    assert rows[0]["test_top1"] > 30.0  # far above chance (10%) after one epoch

    selection = Selection.load(out / "selection.pt")
    assert selection.method == "coreset" and len(selection) == k and selection.epoch == 1
    assert torch.unique(selection.indices).numel() == k

    # resuming a finished run reports the same result without training again
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert main(argv + ["--resume"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["rows"] == checkpoint["rows"]

    # one selection from the checkpoint equals the selector run directly on its model's statistics
    selection_file = tmp_path / "sel.pt"
    assert main(["select", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(selection_file),
                 "--method", "coreset", "--fraction", "0.1"]) == 0
    saved = Selection.load(selection_file)
    from augcore.data.transforms import eval_transform
    from augcore.models import build_model
    train = load_dataset("digits", train=True)
    model = build_model("small_cnn", 10, in_channels=1, image_size=8)
    model.load_state_dict(checkpoint["model"])
    stats = collect_stats(model, train.with_transform(eval_transform(train)), progress=False)
    direct = CoresetSelector(0.1, method="lazy").select(stats, epoch=2, seed=0)  # the run's selector options
    assert torch.equal(saved.indices.cpu(), direct.indices.cpu())
    torch.testing.assert_close(saved.weights.cpu(), direct.weights.cpu())


def test_cli_reports_config_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {learning_rate: 0.1}\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "optim.learning_rate" in capsys.readouterr().err
    assert main(["select", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_parser_has_the_commands():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"demo", "train", "select"} <= set(commands)
    with pytest.raises(SystemExit):
        parser.parse_args([])


def test_demo_runs_both_protocols_and_reports_the_gain(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--seeds", "2", "--subset-epochs", "2", "--epochs", "1",
                 "--methods", "none", "random", "coreset", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "Table 1 protocol" in table and "Table 4 protocol" in table and "selection column" in table
    summary = json.loads((out / "summary.json").read_text())
    part1, part2 = summary["parts"]["table1"], summary["parts"]["table4"]
    # part 1 trains on the 5% and 10% subsets and their copies; 'none' has no subset there
    assert set(part1["cells"]) == {"random@0.05", "coreset@0.05", "random@0.1", "coreset@0.1"}
    assert set(part2["cells"]) == {"none", "random@0.3", "coreset@0.3"}
    rows = [json.loads(line) for line in (out / "coreset-t1-c10-r20_results.jsonl").read_text().splitlines()]
    by = {(r["method"], r["budget"], r["seed"]): r["last_top1"] for r in rows}
    for budget in (0.05, 0.1):
        # the verdict compares seed s of coreset with seed s of random, and is printed as stored
        comparison = summary["comparisons"]["table1"][f"{budget:g}"]
        assert comparison["differences"] == pytest.approx(
            [by[("coreset", budget, s)] - by[("random", budget, s)] for s in (0, 1)], abs=1e-6)
        assert comparison["sentence"] in table and comparison["verdict"] == "not distinguishable"
        fraction = [r["fraction_augmented"] for r in rows if r["budget"] == budget]
        assert fraction == pytest.approx([budget] * 4, abs=2e-3)
    assert summary["comparisons"]["table4"]["0.3"]["sentence"] in table
    assert part2["cells"]["none"]["top1_mean"] >= 0 and f"plot: {out / 'accuracy_per_seed.png'}" in table
    assert (out / "accuracy_per_seed.png").is_file()


SHIPPED_COMMANDS = {"demo", "train", "select", "repro", "configs", "generate", "bench"}


def test_every_command_is_registered_once_and_listed_by_help():
    import ast
    import subprocess
    import sys
    from pathlib import Path

    from augcore.apps.commands import COMMANDS

    source = Path(__file__).resolve().parents[1] / "augcore" / "apps" / "commands.py"
    registered = [call.args[0].value for call in ast.walk(ast.parse(source.read_text()))
                  if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "register"
                  and isinstance(getattr(call.func, "value", None), ast.Name) and call.func.value.id == "COMMANDS"]
    assert sorted(registered) == sorted(SHIPPED_COMMANDS)        # each name once in the source
    assert set(COMMANDS) == SHIPPED_COMMANDS
    assert list(build_parser()._subparsers._group_actions[0].choices) == list(COMMANDS)
    # the console script's module (augcore.cli:main) lists every command with its help line
    done = subprocess.run([sys.executable, "-m", "augcore.cli", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.split("COMMAND", 2)[-1].splitlines()[1:] if line.strip()}
    assert SHIPPED_COMMANDS <= listed
    for name, command in COMMANDS.items():
        assert command.help.split()[0] in done.stdout, name


def test_a_command_class_is_all_a_new_command_needs(monkeypatch, capsys):
    from augcore.apps.commands import COMMANDS, Command

    class Hello(Command):
        name = "hello"
        help = "say hello"

        def add_arguments(self, parser):
            parser.add_argument("--name", default="world")

        def run(self, args):
            print(f"hello {args.name}")
            return 0

    with pytest.raises(ValueError, match="already registered"):
        COMMANDS.register("train")(Hello)                          # one command per name
    monkeypatch.setitem(COMMANDS, "hello", Hello)
    assert main(["hello", "--name", "you"]) == 0
    assert capsys.readouterr().out == "hello you\n"
