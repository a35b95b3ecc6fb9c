"""One registry style for everything chosen by name (selectors, selection policies, models):
a dict filled by a decorator, ``@REGISTRY.register("name")``."""
from __future__ import annotations

from typing import Callable, Optional, TypeVar

T = TypeVar("T")


class Registry(dict):
    """Name -> class (or builder function). ``kind`` names the entries in errors ("selector");
    ``name_attribute``, when given, is set on each entry to its registered name."""

    def __init__(self, kind: str, *, name_attribute: Optional[str] = None):
        super().__init__()
        self.kind = kind
        self.name_attribute = name_attribute

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding a class or function under ``name``; a different entry under a taken
        name raises ``ValueError``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def decorate(entry: T) -> T:
            if self.get(name, entry) is not entry:
                raise ValueError(f"a {self.kind} named {name!r} is already registered "
                                 f"({getattr(self[name], '__name__', self[name])})")
            if self.name_attribute is not None:
                setattr(entry, self.name_attribute, name)
            self[name] = entry
            return entry
        return decorate
