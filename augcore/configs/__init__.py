"""The configs shipped with augcore (package data), addressable by name.

``augcore train --config digits_demo`` and ``--config path/to/file.yaml`` both work:
``resolve_config`` takes a shipped config's name (with or without ``.yaml``) or a path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

CONFIG_DIR = Path(__file__).resolve().parent


def list_configs() -> List[str]:
    """Names of the shipped configs, sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def describe_configs() -> Dict[str, str]:
    """Name -> the first sentence of each shipped config's leading comment (its one-line summary)."""
    out = {}
    for name in list_configs():
        words = []
        with open(CONFIG_DIR / f"{name}.yaml", encoding="utf-8") as fh:
            for line in fh:
                # the leading comment block, up to an indented example command or the first key
                if not line.startswith("#") or line.startswith("#  "):
                    break
                words += line.lstrip("#").split()
        text = " ".join(words)
        end = text.find(". ")
        out[name] = text if end < 0 else text[:end + 1]
    return out


def resolve_config(name_or_path: "str | os.PathLike[str]") -> str:
    """A path to an existing file, or the path of the shipped config of that name.

    Raises ``FileNotFoundError`` naming both what was tried and the shipped names.
    """
    text = os.fspath(name_or_path)
    if os.path.isfile(text):
        return text
    stem = Path(text).name[:-5] if text.endswith(".yaml") else Path(text).name
    shipped = CONFIG_DIR / f"{stem}.yaml"
    # a bare name, or an old "configs/<name>.yaml" path from before the configs became package data
    if shipped.is_file() and (os.sep not in text.rstrip(os.sep) or Path(text).parent.name == "configs"):
        return str(shipped)
    raise FileNotFoundError(f"--config: no file at {text} and no shipped config named {stem!r}; "
                            f"shipped: {', '.join(list_configs())}")
