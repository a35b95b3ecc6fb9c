"""One typed configuration system for ``train``, ``select`` and ``generate``.

A config is a tree of dataclasses. ``build(cls, raw, key)`` turns a YAML mapping into
that tree, checking every key's type; ``apply_overrides`` applies ``--set a.b.c=value``
strings (values parsed as YAML) at any depth; ``load_yaml`` reads a file (a shipped
config's name or a path). Every error is a ``ConfigError`` naming the dotted key
(``optim.lr``, ``augment.policy_options.eps``, ``--set optim.lr=...``).
"""
from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, Dict, List, Optional, Sequence, Type, TypeVar, Union

import yaml

from augcore.checks import as_python_number

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key is unknown, mistyped or out of range; the message names the key."""


def require(ok: bool, key: str, message: str) -> None:
    """Raises ``ConfigError("key: message")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}: {message}")


def require_choice(key: str, value: Any, options: Sequence[Any]) -> None:
    require(value in options, key, f"must be one of {tuple(options)}, got {value!r}")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Checks ``value`` against ``annotation`` (ints are accepted for floats) and builds nested dataclasses."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(value, inner[0], key)
        for option in inner:  # Union[A, B]: the first that accepts the value
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected one of {[getattr(a, '__name__', str(a)) for a in inner]}, got {value!r}")
    if dataclasses.is_dataclass(annotation):
        return build(annotation, value, key)
    if origin in (list, List):
        if getattr(value, "ndim", None) == 1 and hasattr(value, "tolist"):  # a 1-D numpy array or tensor
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if type(value).__name__ == "bool_" and hasattr(value, "item"):  # numpy's bool
            value = value.item()
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if annotation in (int, float):  # numpy scalars and 0-d arrays/tensors mean their Python value
        try:
            number = as_python_number(key, value)
        except TypeError:
            number = None
        if annotation is int:
            if not isinstance(number, int):
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
            return number
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(number)
        if value != value:
            raise ConfigError(f"{key}: expected a number, got NaN")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def field_types(cls: type) -> Dict[str, Any]:
    """Field name -> resolved type annotation of a dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def build(cls: Type[T], raw: Any, key: str = "config") -> T:
    """Builds dataclass ``cls`` from a mapping; unknown keys and wrong types raise naming ``key.name``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: expected a mapping of keys, got {raw!r}")
    types = field_types(cls)
    unknown = sorted(set(raw) - set(types))
    if unknown:
        raise ConfigError(f"unknown key(s) {[f'{key}.{k}' for k in unknown]}; known keys of '{key}': {sorted(types)}")
    return cls(**{k: _coerce(v, types[k], f"{key}.{k}") for k, v in raw.items()})


def to_dict(obj: Any) -> Dict[str, Any]:
    return dataclasses.asdict(obj)


def apply_overrides(raw: Optional[Dict[str, Any]], overrides: Sequence[str]) -> Dict[str, Any]:
    """Applies ``a.b.c=value`` strings (value parsed as YAML) to a copy of a raw config mapping.

    Errors name the override: a missing ``=``, an empty key part, malformed YAML, or a
    path through a value that is not a mapping.
    """
    import copy

    raw = copy.deepcopy(raw) if raw else {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key (e.g. optim.lr=0.05)")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) < 2 or not all(p.strip() for p in parts):
            raise ConfigError(f"--set {item!r}: the key must be dotted, section.key (e.g. optim.lr=0.05)")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ConfigError(f"--set {key.strip()}: the value {text!r} is not valid YAML ({problem})") from None
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[:depth + 1])
                raise ConfigError(f"--set {key.strip()}: {where} is {child!r}, not a mapping of keys")
            node = child
        node[parts[-1]] = value
    return raw


def load_yaml(path: Optional[Union[str, os.PathLike]]) -> Dict[str, Any]:
    """Reads a YAML mapping from a path or a shipped config's name; ``None`` gives ``{}``."""
    if path is None:
        return {}
    from augcore.configs import resolve_config

    path = resolve_config(path)
    with open(path, encoding="utf-8") as fh:
        try:
            raw = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    return raw
