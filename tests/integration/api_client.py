"""A thin HTTP client for the scenario tests: the real app over a real store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from domain.actor import Role
from infra.bootstrap import System


class Api:
    """The API as each principal sees it; ``as_(name)`` picks whose token is sent."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.client = TestClient(create_app(system))
        self.tokens: dict[str, str] = {}

    def principal(self, name: str, role: Role, unit: str | None = None) -> str:
        _, token = self.system.tokens.issue(role=role, unit=unit, name=name)
        self.tokens[name] = token
        return token

    def headers(self, who: str | None, if_match: int | None = None) -> dict[str, str]:
        headers = {}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        return headers

    def post(
        self,
        who: str | None,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        if_match: int | None = None,
        expect: int | None = 200,
    ) -> dict[str, Any]:
        response = self.client.post(path, json=body or {}, headers=self.headers(who, if_match))
        if expect is not None:
            assert response.status_code == expect, (path, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result

    def get(self, who: str | None, path: str, *, expect: int | None = 200) -> dict[str, Any]:
        response = self.client.get(path, headers=self.headers(who))
        if expect is not None:
            assert response.status_code == expect, (path, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result
