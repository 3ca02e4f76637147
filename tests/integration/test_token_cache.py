"""Resolved tokens are remembered briefly; revocation and expiry still hold (infra/tokens.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from domain.actor import Role
from infra.bootstrap import System
from infra.tokens import TokenStore, hash_token


def test_a_cached_token_needs_no_lookup_and_revocation_here_is_immediate(system: System) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=60)
    principal, token = tokens.issue(role=Role.AUDITOR, unit=None, name="a")
    assert tokens.cached(token) is None  # nothing resolved yet
    assert tokens.resolve(token) == principal
    assert tokens.cached(token) == principal
    tokens.revoke(principal.principal_id)
    assert tokens.cached(token) is None
    assert tokens.resolve(token) is None


def test_a_revocation_elsewhere_takes_effect_within_the_bound(system: System) -> None:
    server = TokenStore(system.tokens.datastore, cache_seconds=0.3)
    cli = TokenStore(system.tokens.datastore)  # another process: `tiaokuai token revoke`
    principal, token = cli.issue(role=Role.AUDITOR, unit=None, name="a")
    assert server.resolve(token) == principal
    cli.revoke(principal.principal_id)
    assert server.resolve(token) == principal  # within the bound: still remembered
    time.sleep(0.4)
    assert server.resolve(token) is None
    assert server.cached(token) is None


def test_expiry_is_exact_whatever_the_cache(system: System) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=60)
    principal, token = tokens.issue(
        role=Role.AUDITOR, unit=None, name="a", lifetime=timedelta(seconds=0.3)
    )
    assert tokens.resolve(token) == principal
    time.sleep(0.4)
    assert tokens.cached(token) is None
    assert tokens.resolve(token) is None


def test_unknown_tokens_are_not_remembered(system: System) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=60)
    assert tokens.resolve("tk_nobody") is None
    assert tokens._cache == {}


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_token_in_use_is_looked_up_again_before_it_runs_out(system: System) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=0.4)
    principal, token = tokens.issue(role=Role.AUDITOR, unit=None, name="a")
    try:
        assert tokens.resolve(token) == principal
        first_until = tokens._cache[hash_token(token)][1]
        time.sleep(0.32)  # in the last quarter: the use answers and looks it up behind
        assert tokens.cached(token) == principal
        assert _until(lambda: tokens._cache[hash_token(token)][1] > first_until)
        time.sleep(0.15)  # past the first lookup's bound: still answered, from the cache
        assert time.monotonic() > first_until
        assert tokens.cached(token) == principal
    finally:
        tokens.close()


def test_a_lookup_ahead_sees_a_revocation_elsewhere(system: System) -> None:
    server = TokenStore(system.tokens.datastore, cache_seconds=0.4)
    cli = TokenStore(system.tokens.datastore)
    principal, token = cli.issue(role=Role.AUDITOR, unit=None, name="a")
    try:
        assert server.resolve(token) == principal
        cli.revoke(principal.principal_id)
        time.sleep(0.32)
        assert server.cached(token) == principal  # within the bound: still remembered
        assert _until(lambda: server.cached(token) is None, seconds=0.3)  # before the bound
    finally:
        server.close()


def test_a_revocation_here_is_not_undone_by_a_lookup_in_flight(system: System) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=60)
    principal, token = tokens.issue(role=Role.AUDITOR, unit=None, name="a")
    original = tokens.datastore.transaction

    def revoked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        tokens.forget(principal.principal_id)  # lands while the lookup reads the row
        return original(*args, **kwargs)

    tokens.datastore.transaction = revoked_meanwhile  # type: ignore[method-assign]
    try:
        assert tokens.resolve(token) == principal  # the row still said valid
    finally:
        tokens.datastore.transaction = original  # type: ignore[method-assign]
    assert tokens.cached(token) is None  # but it is not remembered
    assert tokens.resolve(token) == principal  # (not revoked in the database here)
    assert tokens.cached(token) == principal


def _held_lookups(
    tokens: TokenStore, monkeypatch: Any, *, fail: bool = False
) -> tuple[list[str], threading.Event, threading.Event]:
    """Every lookup reads the row, then waits for ``release``; the digests looked up."""
    calls: list[str] = []
    reading, release = threading.Event(), threading.Event()
    look_up = tokens._look_up

    def held(digest: str) -> Any:
        calls.append(digest)
        found = None if fail else look_up(digest)  # a lookup that read caches its answer
        reading.set()
        release.wait(10)
        if fail:
            raise RuntimeError("the store went away")
        return found

    monkeypatch.setattr(tokens, "_look_up", held)
    return calls, reading, release


def _resolving(tokens: TokenStore, token: str, n: int) -> tuple[list[Any], list[threading.Thread]]:
    answers: list[Any] = []

    def one() -> None:
        try:
            answers.append(tokens.resolve(token))
        except Exception as error:
            answers.append(error)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    return answers, threads


def _burst_behind_a_held_lookup(
    tokens: TokenStore, token: str, monkeypatch: Any, n: int, *, fail: bool = False
) -> tuple[list[Any], list[str]]:
    """One request's lookup held while ``n`` more come; every answer, and the lookups."""
    calls, reading, release = _held_lookups(tokens, monkeypatch, fail=fail)
    answers, threads = _resolving(tokens, token, 1)
    assert reading.wait(5)
    more, others = _resolving(tokens, token, n)
    time.sleep(0.1)  # the others are waiting for the lookup in flight
    release.set()
    for thread in [*threads, *others]:
        thread.join(5)
    return answers + more, calls


def test_requests_missing_the_cache_together_share_one_lookup(
    system: System, monkeypatch: Any
) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=60)
    principal, token = tokens.issue(role=Role.AUDITOR, unit=None, name="a")
    answers, calls = _burst_behind_a_held_lookup(tokens, token, monkeypatch, 20)
    assert answers == [principal] * 21
    assert len(calls) == 1


def test_a_request_after_a_revocation_here_does_not_share_an_older_lookup(
    system: System, monkeypatch: Any
) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=60)
    principal, token = tokens.issue(role=Role.AUDITOR, unit=None, name="a")
    calls, reading, release = _held_lookups(tokens, monkeypatch)
    answers, threads = _resolving(tokens, token, 1)
    assert reading.wait(5)  # the first lookup read the row while the token was valid
    tokens.revoke(principal.principal_id)
    later, others = _resolving(tokens, token, 1)
    assert _until(lambda: len(calls) == 2)  # its own lookup, not the one in flight
    release.set()
    for thread in [*threads, *others]:
        thread.join(5)
    assert later == [None]
    assert answers == [principal]  # begun before the revocation, as without sharing


def test_a_shared_lookup_that_fails_fails_every_request_waiting_on_it(
    system: System, monkeypatch: Any
) -> None:
    tokens = TokenStore(system.tokens.datastore, cache_seconds=60)
    _, token = tokens.issue(role=Role.AUDITOR, unit=None, name="a")
    answers, calls = _burst_behind_a_held_lookup(tokens, token, monkeypatch, 5, fail=True)
    assert len(answers) == 6
    assert all(isinstance(a, RuntimeError) for a in answers)
    assert len(calls) == 1
    assert tokens._lookups == {}
