"""The log line's timestamp and sink, and the JSON body of command responses."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from api.responses import JSONBody
from infra.envelopes import plain
from infra.logging import UtcTimestamp, stderr_logger


def _stamp(stamper: UtcTimestamp) -> str:
    return str(stamper(None, "info", {})["timestamp"])


def test_the_timestamp_is_the_instant_in_utc_with_six_digits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stamper = UtcTimestamp()
    for now, expected in [
        (1_764_694_402.25, "2025-12-02T16:53:22.250000Z"),
        (1_764_694_402.999999, "2025-12-02T16:53:22.999999Z"),
        (1_764_694_403.0, "2025-12-02T16:53:23.000000Z"),  # the next second, a whole one
        (1_764_694_402.5, "2025-12-02T16:53:22.500000Z"),  # and back: the clock may step
    ]:
        monkeypatch.setattr("infra.logging.time.time", lambda now=now: now)
        assert _stamp(stamper) == expected


def test_the_timestamp_parses_as_now() -> None:
    before = datetime.now(UTC)
    stamped = datetime.fromisoformat(_stamp(UtcTimestamp()).replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC)


class _Unbuffered(io.StringIO):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_the_sink_writes_whole_lines_to_the_stderr_of_the_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = stderr_logger()  # made before the stream is swapped, as at start-up
    first, second = _Unbuffered(), _Unbuffered()
    monkeypatch.setattr(sys, "stderr", first)
    logger.info('{"event":"a"}')
    monkeypatch.setattr(sys, "stderr", second)
    logger.error('{"event":"b"}')
    logger.exception('{"event":"c"}')
    assert first.getvalue() == '{"event":"a"}\n'
    assert second.getvalue() == '{"event":"b"}\n{"event":"c"}\n'
    assert (first.flushes, second.flushes) == (1, 2)  # a flush per line, on each stream


def test_the_sink_writes_utf8_lines_to_a_line_buffered_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", line_buffering=True)
    monkeypatch.setattr(sys, "stderr", stream)
    stderr_logger().msg("快递员")
    assert raw.getvalue() == "快递员\n".encode()


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text() | st.integers(min_value=-1000, max_value=1000), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), _JSON, max_size=6))
def test_a_command_body_is_what_starlette_would_send(body: dict[str, Any]) -> None:
    ours, theirs = JSONBody(body), JSONResponse(body)
    # The same document; floats may be spelled differently (1e16 against 1e+16).
    assert json.loads(bytes(ours.body)) == json.loads(bytes(theirs.body))
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    assert ours.headers["content-length"] == str(len(ours.body))


def test_a_command_body_writes_text_as_utf8_and_compactly() -> None:
    body = {"title": "快递员", "co_units": ["postal", "commerce"], "weight": 1.0, "n": None}
    assert JSONBody(body).body == JSONResponse(body).body


def test_plain_renders_an_aware_instant_in_utc_and_a_naive_one_as_before() -> None:
    beijing = timezone(timedelta(hours=8))
    aware = datetime(2026, 12, 2, 8, 30, tzinfo=beijing)
    assert plain(aware) == "2026-12-02T00:30:00+00:00"
    assert plain({"at": [aware]}) == {"at": ["2026-12-02T00:30:00+00:00"]}
    naive = datetime(2026, 12, 2, 8, 30)
    assert plain(naive) == naive.astimezone(UTC).isoformat()
