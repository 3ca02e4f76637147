"""A view's person references are found exactly, whatever the fast path."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from infra.persons import _refs

_keys = st.sampled_from(["person_id", "name", "responsible_person", '"person_id":', "id"])
_texts = st.sampled_from(["p-1", "p-2", '"person_id":"p-9"', '{"person_id": "p-8"}', "督办"])
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _texts
_documents = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_keys, inner, max_size=4)
        | st.builds(lambda pid: {"person_id": pid}, _texts)
    ),
    max_leaves=30,
)


def _walked(value: Any) -> set[str]:
    """The rule, spelled out: an object whose only key is ``person_id``, a text."""
    if isinstance(value, dict):
        if set(value) == {"person_id"} and isinstance(value["person_id"], str):
            return {value["person_id"]}
        return set().union(*(_walked(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_walked(item) for item in value))
    return set()


@given(_documents)
@example({"title": '"person_id":"p-9"', "rows": [{"id": 1}]})  # the key's text in a value
@example({'"person_id":': "p-1"})  # and in a key
@example({"person_id": "p-1", "name": "x"})  # not alone: not a reference
@example({"person_id": 7})  # not a text: not a reference
@example({"links": [{"responsible_person": {"person_id": "p-2"}}]})
@example({1: {"person_id": "p-3"}})  # a key that is not a string
@example({"at": {1, 2}, "who": {"person_id": "p-4"}})  # not plain JSON: walked
def test_the_references_found_are_exactly_those_of_the_rule(document: Any) -> None:
    assert _refs(document) == _walked(document)


def test_a_document_nested_beyond_what_orjson_renders_is_walked() -> None:
    deep: Any = {"person_id": "p-deep"}
    for _ in range(300):  # orjson refuses more than 254 levels
        deep = [deep]
    assert _refs(deep) == {"p-deep"}
