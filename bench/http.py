"""The benches' minimal HTTP/1.1 client parts over asyncio streams: answers and errors.

httpx costs several milliseconds of CPU per request at 50 connections, more than the
servers being measured; reading a response by hand costs a fraction of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    """No answer: refused, reset, closed, timed out or not HTTP/1.1 as expected."""


@dataclass
class Answer:
    """One response: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def reason(self) -> str:
        """The status with the API's error code, e.g. ``409 invalid_state``."""
        with contextlib.suppress(Exception):
            code = self.json().get("error")
            if code:
                return f"{self.status} {code}"
        return str(self.status)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of the next response (length or chunked)."""
    raw_head = await reader.readuntil(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        return status, headers, b"".join(chunks)
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))
