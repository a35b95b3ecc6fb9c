"""The ops' enum arguments have one definition, csrc/ops.h: every Python table that passes them as
integers must give each name the header's value (issue 25 item 5)."""
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
fl = importlib.import_module("augcore.ops.facility_location")  # the module (augcore.ops re-exports the function)
proxies = importlib.import_module("augcore.ops.proxies")


def _header_enums():
    """{enum name: {enumerator: value}} parsed from csrc/ops.h."""
    text = (ROOT / "csrc" / "ops.h").read_text()
    enums = {}
    for name, body in re.findall(r"enum (\w+) : int64_t \{([^}]*)\}", text):
        enums[name] = {k: int(v) for k, v in re.findall(r"(k\w+) = (\d+)", body)}
    return enums


def test_header_parses_into_every_enum():
    enums = _header_enums()
    assert set(enums) == {"LossKind", "SimilarityKind", "GreedyMethod", "StorageMode", "TieBreak"}
    assert all(len(values) >= 2 and len(set(values.values())) == len(values) for values in enums.values())


def test_python_tables_match_the_header():
    enums = _header_enums()
    expected = {
        "LossKind": ({"kCrossEntropy": "ce", "kSquared": "mse"}, proxies.LOSSES),
        "GreedyMethod": ({"kNaive": "naive", "kLazy": "lazy", "kStochastic": "stochastic"}, fl.METHODS),
        "StorageMode": ({"kAuto": "auto", "kDense": "dense", "kOnTheFly": "on_the_fly"}, fl.MODES),
        "TieBreak": ({"kTiesLow": "low", "kTiesHigh": "high", "kTiesApricot": "apricot"}, fl.TIE_BREAKS),
    }
    for enum, (names, table) in expected.items():
        assert {names[k]: v for k, v in enums[enum].items()} == table, enum
    kinds = enums["SimilarityKind"]
    assert fl.SIMILARITIES == {"exp": kinds["kExp"], "craig": kinds["kCraig"], "craig_squared": kinds["kCraigSquared"]}
    assert fl._PRECOMPUTED == kinds["kPrecomputed"]
    t = pytest.importorskip("augcore.ops.triton_facility_location")  # needs the triton package
    assert (t._EXP, t._CRAIG, t._PRECOMPUTED, t._CRAIG_SQUARED) == (
        kinds["kExp"], kinds["kCraig"], kinds["kPrecomputed"], kinds["kCraigSquared"])
