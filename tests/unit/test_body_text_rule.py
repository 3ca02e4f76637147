"""Request bodies refuse control characters and surrogates, whatever the fast path."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from api.schemas import _reject_controls


def _refused_by_the_rule(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in text)


@given(st.text(alphabet=st.characters(exclude_categories=[])))
@example("督办\n第二行\t缩进")  # newline and tab are allowed, though not printable
@example("快递员\x00")
@example("a\ud800b")  # a lone surrogate
@example("\u200b零宽")  # a format character (Cf): not printable, and allowed
@example("a\x85b")  # NEL, a C1 control
def test_a_text_is_refused_exactly_when_it_holds_a_control_or_a_surrogate(text: str) -> None:
    if _refused_by_the_rule(text):
        with pytest.raises(ValueError, match="control characters"):
            _reject_controls(text)
        with pytest.raises(ValueError, match="control characters"):
            _reject_controls(["fine", text])
    else:
        assert _reject_controls(text) == text
        assert _reject_controls([text]) == [text]
