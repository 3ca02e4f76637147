"""Where projections keep their documents: a protocol, and a dict-backed implementation."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Protocol

Doc = dict[str, Any]


class ViewStore(Protocol):
    """Documents by (view, key). Keys are strings; documents are JSON-plain dicts.

    A projection may change a document it got only to put (or delete) it afterwards, and
    must not change one after putting it: a store may hand out and keep the very objects
    (the SQL batch does, so each document is parsed and serialised once per batch).
    """

    def get(self, view: str, key: str) -> Doc | None: ...

    def put(self, view: str, key: str, doc: Doc) -> None: ...

    def delete(self, view: str, key: str) -> None: ...

    def scan(self, view: str, prefix: str = "") -> Iterator[tuple[str, Doc]]:
        """Every (key, doc) of the view whose key starts with prefix, in key order."""
        ...


class MemoryViewStore:
    """A ViewStore in a dict: for unit tests, rebuilds and views as they stood."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Doc]] = {}

    def get(self, view: str, key: str) -> Doc | None:
        doc = self.docs.get(view, {}).get(key)
        return copy.deepcopy(doc) if doc is not None else None

    def put(self, view: str, key: str, doc: Doc) -> None:
        self.docs.setdefault(view, {})[key] = copy.deepcopy(doc)

    def delete(self, view: str, key: str) -> None:
        self.docs.get(view, {}).pop(key, None)

    def scan(self, view: str, prefix: str = "") -> Iterator[tuple[str, Doc]]:
        rows = self.docs.get(view, {})
        for key in sorted(rows):
            if key.startswith(prefix):
                yield key, copy.deepcopy(rows[key])
