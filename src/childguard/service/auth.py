# Owns who may call which route: API keys from the request, and each route's owner role.
"""Authentication and the route rules.

Every route declares exactly one rule as a dependency: `owner(role)` (only a key with that
role), `owner(role, hma=True)` (the same, and no key at all when the
`allow_anonymous_hma` setting is on), or `public()` (anyone: health checks). `rule_of(route)`
reads the rule back; `create_app` refuses to build an app with a route that has none, and
the tests check every route of the app against every role.

A key is sent as `Authorization: Bearer <key>` (or `X-API-Key: <key>`). No key, or one that is
unknown, expired or revoked, is 401; a key of another role is 403. A key sent to a route that
allows anonymous calls is still checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute

from childguard.accounts import ApiKeyInfo, check_role, identify_key

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key, or nobody (an anonymous HMA call)."""

    key: ApiKeyInfo | None

    @property
    def actor(self) -> str:
        """The caller's name in the audit log."""
        return self.key.actor if self.key is not None else ANONYMOUS

    @property
    def organisation_id(self) -> int | None:
        """The organisation the caller acts for; None for a caller of the whole service."""
        return self.key.organisation_id if self.key is not None else None


def presented_key(request: Request) -> str | None:
    """The key the request carries, if any."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = request.headers.get("x-api-key", "").strip()
    return value or None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


class RoleRule:
    """A route owned by one role."""

    def __init__(self, role: str, *, hma: bool = False) -> None:
        self.role = check_role(role)
        self.hma = hma

    def __call__(self, request: Request) -> Caller:
        state = request.app.state.service
        token = presented_key(request)
        if token is None:
            if self.hma and state.settings.allow_anonymous_hma:
                return Caller(None)
            raise _unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
        info = identify_key(state.store, token)
        if info is None:
            raise _unauthorized("the API key is unknown, expired or revoked")
        if info.role != self.role:
            raise HTTPException(
                403, f"this route needs a key with the {self.role!r} role, not {info.role!r}"
            )
        return Caller(info)

    def __repr__(self) -> str:
        return f"owner({self.role!r}{', hma=True' if self.hma else ''})"


class PublicRule:
    """A route anyone may call."""

    def __call__(self) -> Caller:
        return Caller(None)

    def __repr__(self) -> str:
        return "public()"


def owner(role: str, *, hma: bool = False) -> Any:
    """The dependency that makes a route `role`'s: `caller: Caller = owner("match")`."""
    return Depends(RoleRule(role, hma=hma))


def public() -> Any:
    """The dependency that makes a route public: `_: Caller = public()`."""
    return Depends(PublicRule())


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every API route under `routes` (an app's or a router's), through included routers
    (FastAPI versions that keep them as branches rather than copying their routes)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        else:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from api_routes(inner.routes)


def rule_of(route: APIRoute) -> RoleRule | PublicRule | None:
    """The one rule a route declares; None if it declares none. ValueError if several."""
    found = [
        d.call for d in route.dependant.dependencies if isinstance(d.call, RoleRule | PublicRule)
    ]
    if len(found) > 1:
        raise ValueError(f"route {route.path} declares {len(found)} rules; want one")
    return found[0] if found else None
