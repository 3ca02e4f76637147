"""Routes that bind a request's inputs by a plan made once, with FastAPI's own rules.

FastAPI 0.165 solves a route's dependency tree afresh on every request: for each
dependency it asks again whether the callable is a generator or a coroutine, builds
its cache key, and looks up path, query, header and cookie parameters through a
generic pass that inspects every field's annotation. For a task command that was the
largest share of what the API cost over a bare route: under yappi, 1.3 ms of FastAPI's
dependency solving per urge where the bare route's one body parameter took 0.2.

``PlannedRoute`` works that out once, when the route is built, for the routes whose
inputs are plain (scalar path, query and header parameters, one JSON body model,
dependencies that take at most the request). A request whose inputs all validate is
bound by the plan; any other request (a missing or invalid parameter, a body that is
not ``application/json`` or does not parse, dependency overrides in place) goes to
FastAPI's own handler, untouched, so every error answer is FastAPI's. Each value is
validated by the same pydantic field FastAPI uses, and dependencies are called in
FastAPI's order, each once per request: a valid request is answered exactly as
FastAPI would answer it. ``tests/integration/test_planned_route.py`` compares both.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic.fields import FieldInfo
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

if typing.TYPE_CHECKING:
    from fastapi._compat import ModelField

Source = Literal["path", "query", "header"]
_IMMUTABLE_DEFAULTS = (type(None), str, int, float, bool, bytes)
_JSON = "application/json"


class _NotPlanned(Exception):
    """This route's inputs are not of the plain kinds a plan binds."""


@dataclass(frozen=True, slots=True)
class _Param:
    """One scalar parameter: where it is read, and the field that validates it."""

    name: str
    key: str
    source: Source
    field: ModelField
    required: bool
    default: Any

    @property
    def loc(self) -> tuple[str, str]:
        return (self.source, self.key)


@dataclass(frozen=True, slots=True)
class _Step:
    """A dependency or the endpoint: its parameters, and what it depends on first."""

    call: Callable[..., Any]
    name: str | None
    is_coroutine: bool
    request_name: str | None
    params: tuple[_Param, ...]
    subs: tuple[_Step, ...]
    key: tuple[Any, ...]
    """Its place in the request's cache: the call and its scope."""
    use_cache: bool


def _callables(call: Callable[..., Any]) -> list[Any]:
    """The callable and, for an instance, its ``__call__``, unwrapped as FastAPI unwraps."""
    found = [inspect.unwrap(_impartial(call))]
    if not inspect.isclass(found[0]) and not inspect.isroutine(found[0]):
        dunder = getattr(found[0], "__call__", None)  # noqa: B004 — an instance's own
        if dunder is not None:
            found.append(inspect.unwrap(_impartial(dunder)))
    return found


def _impartial(call: Any) -> Any:
    while isinstance(call, functools.partial):
        call = call.func
    return call


def _is_coroutine(call: Callable[..., Any]) -> bool:
    # asyncio's test, as FastAPI's on Python 3.11 (it honours the legacy marker).
    return any(asyncio.iscoroutinefunction(c) for c in _callables(call))


def _is_generator(call: Callable[..., Any]) -> bool:
    return any(
        inspect.isgeneratorfunction(c) or inspect.isasyncgenfunction(c) for c in _callables(call)
    )


def _param(field: ModelField, source: Source) -> _Param:
    info = field.field_info
    if not isinstance(info, FieldInfo) or not isinstance(info.validation_alias, str | None):
        raise _NotPlanned(f"{field.name}: alias choices or an alias path")
    config = getattr(field, "config", None) or {}
    if config.get("validate_by_name") or config.get("populate_by_name"):
        raise _NotPlanned(f"{field.name}: validated by name as well as by alias")
    # The key FastAPI reads: the validation alias, else the alias (a header's is the
    # name with underscores turned into hyphens).
    key = getattr(field, "validation_alias", None) or field.alias
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
    else:
        members = [annotation]
    for member in members:
        if typing.get_origin(member) is not None or not isinstance(member, type):
            raise _NotPlanned(f"{field.name}: not a plain scalar ({annotation!r})")
        if issubclass(member, (list, tuple, set, frozenset, dict)) or hasattr(
            member, "model_fields"
        ):
            raise _NotPlanned(f"{field.name}: a sequence or model parameter")
    if any(type(item).__name__ == "Json" for item in info.metadata):
        raise _NotPlanned(f"{field.name}: a Json parameter")
    if info.default_factory is not None:
        raise _NotPlanned(f"{field.name}: a default factory")
    required = info.is_required()
    default = None if required else field.default
    if not required and (not isinstance(default, _IMMUTABLE_DEFAULTS) or info.validate_default):
        raise _NotPlanned(f"{field.name}: a default FastAPI would copy or validate")
    return _Param(field.name, key, source, field, required, default)


def _step(dependant: Dependant, seen: dict[Any, str | None]) -> _Step:
    call = dependant.call
    if call is None:
        raise _NotPlanned("a dependant without a callable")
    if (
        dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or getattr(dependant, "concurrency", None) is not None
    ):
        raise _NotPlanned(f"{call!r}: an input a plan does not bind")
    if _is_generator(call):
        raise _NotPlanned(f"{call!r}: a dependency with yield")
    # FastAPI's cache key is (call, OAuth scopes, scope); without scopes it is the call
    # and its scope. The same call under two scopes is left to FastAPI.
    scope = getattr(dependant, "scope", None)
    if call in seen and seen[call] != scope:
        raise _NotPlanned(f"{call!r}: one dependency under two scopes")
    seen[call] = scope
    subs = tuple(_step(sub, seen) for sub in dependant.dependencies)
    found: list[_Param] = []
    for source, fields in (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("header", dependant.header_params),
    ):
        found.extend(_param(field, typing.cast(Source, source)) for field in fields)
    return _Step(
        call=call,
        name=dependant.name,
        is_coroutine=_is_coroutine(call),
        request_name=dependant.request_param_name,
        params=tuple(found),
        subs=subs,
        key=(id(call), scope or ""),
        use_cache=dependant.use_cache,
    )


class RequestPlan:
    """How one route binds a request's inputs; ``bind`` answers None to let FastAPI do it."""

    def __init__(self, route: APIRoute) -> None:
        dependant = route.dependant
        body = dependant.body_params
        if len(body) > 1 or getattr(route, "_embed_body_fields", True):
            raise _NotPlanned("a body of several fields")
        if body and (
            isinstance(body[0].field_info, params.Form)
            or not isinstance(body[0].field_info, params.Body)
        ):
            raise _NotPlanned("a form body")
        if route.response_field is not None:
            raise _NotPlanned("a response model")
        hints = typing.get_type_hints(route.endpoint)
        answer = hints.get("return")
        if not (isinstance(answer, type) and issubclass(answer, Response)):
            raise _NotPlanned("an endpoint that does not answer a Response")
        self.body: ModelField | None = body[0] if body else None
        self.endpoint = _step(dependant, {})
        self.overrides = route.dependency_overrides_provider

    async def bind(self, request: Request) -> dict[int, dict[str, Any]] | None:
        """Every step's validated parameters, keyed by id of the step; None if any fails."""
        if self.overrides is not None and getattr(self.overrides, "dependency_overrides", None):
            return None
        bound: dict[int, dict[str, Any]] = {}
        if not self._bind_params(self.endpoint, request, bound):
            return None
        if self.body is not None:
            if request.headers.get("content-type") != _JSON:
                return None
            try:
                raw = await request.body()
            except Exception:  # FastAPI's own handler answers it, as it would
                return None
            if not raw:
                return None
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return None
            value, errors = self.body.validate(parsed, {}, loc=("body",))
            if errors:
                return None
            bound[id(self.endpoint)][self.body.name] = value
        return bound

    def _bind_params(self, step: _Step, request: Request, bound: dict[int, dict[str, Any]]) -> bool:
        for sub in step.subs:
            if not self._bind_params(sub, request, bound):
                return False
        values: dict[str, Any] = {}
        for param in step.params:
            source: Mapping[str, Any]
            if param.source == "path":
                source = request.path_params
            elif param.source == "query":
                source = request.query_params
            else:
                source = request.headers
            raw = source.get(param.key)
            if raw is None:
                if param.required:
                    return False
                values[param.name] = param.default
                continue
            value, errors = param.field.validate(raw, values, loc=param.loc)
            if errors:
                return False
            values[param.name] = value
        bound[id(step)] = values
        return True

    async def run(self, request: Request, bound: dict[int, dict[str, Any]]) -> Response:
        """Call the dependencies in FastAPI's order, then the endpoint."""
        cache: dict[tuple[Any, ...], Any] = {}
        values = await self._solve(self.endpoint, request, bound, cache)
        answer = await _call(self.endpoint, values)
        if not isinstance(answer, Response):
            raise TypeError(f"{self.endpoint.call!r} answered {type(answer).__name__}")
        return answer

    async def _solve(
        self,
        step: _Step,
        request: Request,
        bound: dict[int, dict[str, Any]],
        cache: dict[tuple[Any, ...], Any],
    ) -> dict[str, Any]:
        """A step's arguments, as FastAPI's ``solve_dependencies`` gathers them.

        Each dependency's own dependencies are solved before the cache is asked, and
        every solved value fills the cache unless it already holds one, as there.
        """
        values = bound[id(step)]
        for sub in step.subs:
            sub_values = await self._solve(sub, request, bound, cache)
            if sub.use_cache and sub.key in cache:
                solved = cache[sub.key]
            else:
                solved = await _call(sub, sub_values)
            if sub.name is not None:
                values[sub.name] = solved
            cache.setdefault(sub.key, solved)
        if step.request_name is not None:
            values[step.request_name] = request
        return values


async def _call(step: _Step, values: dict[str, Any]) -> Any:
    if step.is_coroutine:
        return await step.call(**values)
    return await run_in_threadpool(step.call, **values)


def plan_for(route: APIRoute) -> RequestPlan | None:
    """The route's plan, or None when FastAPI must bind its inputs itself."""
    try:
        return RequestPlan(route)
    except (_NotPlanned, AttributeError):  # AttributeError: a FastAPI of another shape
        return None


class PlannedRoute(APIRoute):
    """An APIRoute that binds plain requests by its plan and leaves the rest to FastAPI."""

    plan: RequestPlan | None = None

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._head = self.path_format.split("{", 1)[0]
        self._tail = self.path_format.rsplit("}", 1)[-1]  # all of it, without parameters

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # A request is matched against the app's routes one by one and most do not
        # match. A path that does not begin and end with the route's literal text
        # cannot match its pattern, so it is refused before Starlette's regex and
        # FastAPI's scope bookkeeping, with Starlette's answer. (These routes are
        # declared on the app itself: no included router rewrites the path.)
        if scope["type"] == "http":
            path = get_route_path(scope)
            if not (path.startswith(self._head) and path.endswith(self._tail)):
                return Match.NONE, {}
        return super().matches(scope)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        plan = plan_for(self)
        self.plan = plan
        if plan is None:
            return standard

        async def handle(request: Request) -> Response:
            bound = await plan.bind(request)
            if bound is None:
                return await standard(request)
            return await plan.run(request, bound)

        return handle
