"""Resolved tokens are remembered briefly; revocation and expiry still hold (infra/tokens.py)."""

from __future__ import annotations

import time
from datetime import timedelta

from domain.actor import Role
from infra.bootstrap import System
from infra.tokens import TokenStore


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
