"""The shipped configs against docs/paper_settings.md, the one table of the papers' settings.

Rows marked `follows` must hold the paper's value, rows marked `local file` must name the file
that holds it; every row with a config key must state
the config's actual value; every other status must give its reason; every shipped config
has a row.
"""
import math
import os
import re

import pytest
import yaml

from augcore.configs import CONFIG_DIR, list_configs
from augcore.train.config import load_config

TABLE = os.path.join(os.path.dirname(__file__), "..", "docs", "paper_settings.md")
STATUSES = ("follows", "local file", "differs", "not stated", "no paper")
COLUMNS = ["config", "setting", "paper value", "source", "config value", "status", "why"]


def table_rows():
    with open(TABLE, encoding="utf-8") as fh:
        text = fh.read()
    body = text.split("## Table", 1)[1]
    lines = [line.strip() for line in body.splitlines() if line.strip().startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    rows = []
    for line in lines[2:]:  # after the header and its |---| rule
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(COLUMNS), f"malformed row: {line}"
        rows.append(dict(zip(COLUMNS, cells)))
    return rows


def literal(cell):
    """A `backticked` cell as its YAML value; None for prose."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    if not match:
        return None, False
    value = yaml.safe_load(match.group(1))
    if isinstance(value, str):
        try:
            value = float(value)  # PyYAML reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    return value, True


def effective_config(name):
    """The config as augcore runs it: a training config with its defaults filled in, or the
    raw mapping of a generation config (its own loader fills defaults per section)."""
    path = os.path.join(CONFIG_DIR, f"{name}.yaml")
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return raw if "train" in raw else load_config(path).to_dict()


def lookup(config, dotted):
    node = config
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"no key {dotted!r}"
        node = node[part]
    return node


def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


ROWS = table_rows()


def test_every_shipped_config_is_in_the_table():
    assert set(list_configs()) <= {row["config"] for row in ROWS}
    assert {row["config"] for row in ROWS} <= set(list_configs())


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['config']}:{r['setting']}")
def test_row(row):
    assert row["status"] in STATUSES, f"status must be one of {STATUSES}"
    if row["status"] != "follows":
        assert len(row["why"]) > 10, "a row that does not follow the paper must say why"
    key, is_key = literal(row["setting"])
    if not is_key:
        assert row["status"] != "follows", "only a config key can be checked as following the paper"
        return
    actual = lookup(effective_config(row["config"]), key)
    stated, _ = literal(row["config value"])
    assert same(stated, actual), f"the table says {row['config value']}, the config holds {actual!r}"
    if row["status"] == "local file":   # the paper's setting lives in a file the user supplies (weights)
        assert isinstance(actual, str) and actual, "a local-file row's config must name the file"
    if row["status"] == "follows":
        paper, is_literal = literal(row["paper value"])
        assert is_literal, "a followed setting needs the paper's value as a `literal`"
        assert same(paper, actual), f"the paper's value is {paper!r}, the config holds {actual!r}"
