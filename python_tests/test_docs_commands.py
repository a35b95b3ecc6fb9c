"""Every shell command in README.md and docs/ runs as written, in a smoke mode.

Commands come from fenced ``bash`` (or ``sh`` / ``shell``) blocks, one per line, a trailing
comment dropped. Each runs through bash with this interpreter's bin folder first on PATH,
in a scratch folder shared by the commands of one document and in document order (so a
later ``--resume`` or ``select`` finds the run an earlier command made). Smoke mode only
appends arguments (SMOKE: fewer seeds, epochs, points); the command as written is left
intact. Commands that need what only a user can supply are skipped with the reason in
NEEDS_USER, keyed by the command text. Data sets a user must place on disk are stood in
for by generated files in the standard format (a small CIFAR-10), found through
``$AUGCORE_DATA`` as the README says.
"""
from __future__ import annotations

import os
import pickle
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_FENCES = ("bash", "sh", "shell")
# a fence without a language whose first line starts with one of these holds commands: it must say bash
COMMAND_WORDS = ("augcore", "bash", "python", "python3", "pip", "torchrun", "git")

# command prefix -> arguments appended in smoke mode ({scratch}: the document's scratch folder)
DEMO_SMOKE = ["--seeds", "1", "--subset-epochs", "1", "--epochs", "1", "--no-progress", "--out", "{scratch}/demo"]
SMOKE: Dict[str, List[str]] = {
    "augcore demo": DEMO_SMOKE,
    # milestones back to their default (50% and 75% of the epochs): a config's own would lie past epoch 1
    "augcore train": ["--set", "schedule.epochs=1", "--set", "schedule.milestones=[]", "--set", "run.progress=false"],
    "augcore bench": ["--points", "2000"],
    "augcore repro": ["--seeds", "1", "--epochs", "1", "--no-progress", "--out", "{scratch}/repro"],
    "bash scripts/run.sh demo": DEMO_SMOKE,
    # collect, do not run: this test is part of the suite it would start
    "bash scripts/run.sh test": ["--collect-only", "-q"],
    "bash scripts/run.sh bench": ["--quick", "--points", "2000"],
    "python bench/bench_selection_overhead.py": ["--seeds", "1", "--epochs", "1"],
}

# command text (tokens joined by one space, comment dropped) -> why only a user can run it
NEEDS_USER: Dict[str, str] = {
    "torchrun --nproc-per-node 2 my_train.py": "my_train.py stands for the user's own training script",
    "augcore generate --model PATH --dataset cifar10 --selection sel.pt --out DIR --shard 0/4":
        "PATH is the user's local diffusers pipeline folder (a Stable Diffusion download)",
    "augcore generate --config targeted_synthetic --end-to-end --set generate.model=PATH":
        "PATH is the user's local diffusers pipeline folder (a Stable Diffusion download) and the run "
        "trains PreAct ResNet-18 on CIFAR-10 for 200 epochs",
}


class Command(NamedTuple):
    document: str
    line: int
    text: str          # tokens joined by single spaces (the key of SMOKE and NEEDS_USER)
    tokens: List[str]


def fenced_blocks(path: Path):
    """(language, first line number, lines) of every fenced block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not opening:
            i += 1
            continue
        fence, language, start = opening.group(2), opening.group(3).lower(), i + 1
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            i += 1
        yield language, start + 1, lines[start:i]
        i += 1


def documented_commands() -> List[Command]:
    commands = []
    for path in DOCUMENTS:
        if not path.exists():
            continue
        for language, first, lines in fenced_blocks(path):
            if language not in SHELL_FENCES:
                continue
            pending, pending_line = "", first
            for number, line in enumerate(lines, start=first):
                if not pending:
                    pending_line = number
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                tokens = shlex.split(pending + line, comments=True)
                pending = ""
                if tokens:
                    commands.append(Command(str(path.relative_to(ROOT)), pending_line, " ".join(tokens), tokens))
    return commands


COMMANDS = documented_commands()


def write_cifar10_stand_in(root: Path, per_batch: int = 20) -> None:
    """CIFAR-10's 'python version' layout with a few random images per batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [i % 10 for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Per-document scratch folders, the stand-in data and the model cache."""
    base = tmp_path_factory.mktemp("docs_commands")
    write_cifar10_stand_in(base / "data")
    return {"base": base, "data": base / "data", "cache": base / "cache", "scratch": {}}


def smoke_arguments(command: Command, scratch: Path, data: Path) -> List[str]:
    extra: List[str] = []
    for prefix, arguments in SMOKE.items():
        if command.text == prefix or command.text.startswith(prefix + " "):
            extra = [a.format(scratch=scratch) for a in arguments]
    if "data.root=" in command.text:   # the command names the user's data folder: point it at the stand-in
        extra += ["--set", f"data.root={data}"]
    return extra


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.document}:{c.line}" for c in COMMANDS])
def test_documented_command_runs(command: Command, shared):
    if command.text in NEEDS_USER:
        pytest.skip(f"needs user data: {NEEDS_USER[command.text]}")
    scratch = shared["scratch"].setdefault(command.document, shared["base"] / command.document.replace("/", "_"))
    scratch.mkdir(exist_ok=True)
    argv = command.tokens + smoke_arguments(command, scratch, shared["data"])
    # repository scripts (scripts/run.sh, bench/...) run from the repository root, as documented
    in_repo = any(not t.startswith("-") and "/" in t and (ROOT / t).exists() for t in command.tokens[1:])
    env = dict(os.environ,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               AUGCORE_DATA=str(shared["data"]), AUGCORE_CACHE=str(shared["cache"]),
               AUGCORE_VENV=sys.prefix,
               # the suite runs inside scripts/run.sh's set-up already: a nested set-up would rebuild
               # the extension under the running tests
               AUGCORE_SETUP="done")
    done = subprocess.run(["bash", "-c", shlex.join(argv)], cwd=ROOT if in_repo else scratch, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (f"{command.document}:{command.line}: `{shlex.join(argv)}` exited "
                                  f"{done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")


def test_the_documents_have_commands_and_every_skip_is_still_documented():
    texts = {c.text for c in COMMANDS}
    assert {"augcore demo", "augcore bench --quick", "bash scripts/run.sh test"} <= texts
    stale = sorted(set(NEEDS_USER) - texts)
    assert not stale, f"NEEDS_USER lists commands no document has any more: {stale}"


@pytest.mark.parametrize("path", [p for p in DOCUMENTS if p.exists()], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_block_says_bash(path: Path):
    """A fence with no language that holds commands would escape the test above."""
    unlabelled = [first for language, first, lines in fenced_blocks(path)
                  if not language and lines and lines[0].split()[:1] and lines[0].split()[0] in COMMAND_WORDS]
    assert not unlabelled, (f"{path.relative_to(ROOT)}: fenced blocks at lines {unlabelled} hold commands but "
                            "no language: mark them ```bash (this test runs them) or ```text (not commands)")
