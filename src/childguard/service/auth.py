# Owns who may call which route: API keys and session cookies, and each route's rule.
"""Authentication and the route rules.

Every route declares exactly one rule as a dependency: `owner(role)` (only a caller holding
that role), `owner(role, hma=True)` (the same, and no credentials at all when the
`allow_anonymous_hma` setting is on), `signed_in()` (any caller with valid credentials, of any
role: who-am-I and sign-out) or `public()` (anyone: health checks and the sign-in routes).
`rule_of(route)` reads the rule back; `create_app` refuses to build an app with a route that
has none, and the tests check every route of the app against every role.

A caller is an API key or a signed-in user:

- A key is sent as `Authorization: Bearer <key>` (or `X-API-Key: <key>`). It holds one role.
  A key sent with a session cookie wins; the cookie is ignored.
- A user's browser sends the session cookie (`SESSION_COOKIE`). A user may hold several roles;
  the route's role must be one of them. On an unsafe method (POST, PUT, PATCH, DELETE) the
  session's CSRF token must come too, in the `X-CSRF-Token` header or a `csrf_token` form
  field; without it the call is 403.

No credentials, or a key or session that is unknown, expired, revoked or ended: 401. A caller
without the route's role: 403. Credentials sent to a route that allows anonymous calls are
still checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from childguard.accounts import (
    ApiKeyInfo,
    SessionInfo,
    UserInfo,
    cached_key,
    check_role,
    identify_key,
    identify_session,
)

ANONYMOUS = "anonymous"
SESSION_COOKIE = "childguard_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# Where the caller's audit name is left for the access log (`service/access_log.py`).
ACTOR_SCOPE_KEY = "childguard.actor"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key, a signed-in user (with their session), or nobody (an anonymous
    HMA call, a public route)."""

    key: ApiKeyInfo | None
    user: UserInfo | None = None
    session: SessionInfo | None = None

    @property
    def actor(self) -> str:
        """The caller's name in the audit log: `key:<id>`, `user:<id>` or `anonymous`."""
        if self.key is not None:
            return self.key.actor
        if self.user is not None:
            return self.user.actor
        return ANONYMOUS

    @property
    def organisation_id(self) -> int | None:
        """The organisation the caller acts for; None for a caller of the whole service."""
        if self.key is not None:
            return self.key.organisation_id
        if self.user is not None:
            return self.user.organisation_id
        return None

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles the caller holds: a key's one, a user's several, nobody's none."""
        if self.key is not None:
            return (self.key.role,)
        if self.user is not None:
            return self.user.roles
        return ()

    @property
    def anonymous(self) -> bool:
        return self.key is None and self.user is None


def presented_key(request: Request) -> str | None:
    """The key the request carries, if any."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = request.headers.get("x-api-key", "").strip()
    return value or None


def presented_session(request: Request) -> str | None:
    """The session token the request's cookie carries, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


async def _presented_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header.strip()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def identify(request: Request) -> Caller | None:
    """The caller the request's credentials name: a key (401 if it is not usable), else a
    session cookie (401 if the session is not live; 403 on an unsafe method without its CSRF
    token); None when it carries neither."""
    state = request.app.state.service
    token = presented_key(request)
    if token is not None:
        info = cached_key(state.store, token) or await run_in_threadpool(
            identify_key, state.store, token
        )
        if info is None:
            raise _unauthorized("the API key is unknown, expired or revoked")
        request.scope[ACTOR_SCOPE_KEY] = info.actor
        return Caller(info)
    cookie = presented_session(request)
    if cookie is None:
        return None
    idle = timedelta(seconds=state.settings.session_idle_seconds)
    found = await run_in_threadpool(identify_session, state.store, cookie, idle=idle)
    if found is None:
        raise _unauthorized("the session has ended or expired; sign in again")
    user, session = found
    request.scope[ACTOR_SCOPE_KEY] = user.actor
    if request.method.upper() in UNSAFE_METHODS and not session.csrf_ok(
        await _presented_csrf(request)
    ):
        raise HTTPException(
            403,
            f"a signed-in browser must send its CSRF token in the {CSRF_HEADER} header or the "
            f"{CSRF_FIELD!r} form field (it is in the answer to POST /v1/session)",
        )
    return Caller(None, user, session)


class RoleRule:
    """A route owned by one role."""

    def __init__(self, role: str, *, hma: bool = False) -> None:
        self.role = check_role(role)
        self.hma = hma

    async def __call__(self, request: Request) -> Caller:
        caller = await identify(request)
        if caller is None:
            if self.hma and request.app.state.service.settings.allow_anonymous_hma:
                return Caller(None)
            raise _unauthorized(
                "an API key is required: send 'Authorization: Bearer <key>' (or sign in)"
            )
        if caller.key is not None and caller.key.role != self.role:
            raise HTTPException(
                403, f"this route needs a key with the {self.role!r} role, not {caller.key.role!r}"
            )
        if caller.user is not None and not caller.user.has_role(self.role):
            held = ", ".join(caller.user.roles) or "none"
            raise HTTPException(
                403, f"this route needs a user with the {self.role!r} role (roles held: {held})"
            )
        return caller

    def __repr__(self) -> str:
        return f"owner({self.role!r}{', hma=True' if self.hma else ''})"


class SignedInRule:
    """A route any caller with valid credentials may call, whatever their roles."""

    async def __call__(self, request: Request) -> Caller:
        caller = await identify(request)
        if caller is None:
            raise _unauthorized(
                "an API key or a session is required: send 'Authorization: Bearer <key>' "
                "or sign in with POST /v1/session"
            )
        return caller

    def __repr__(self) -> str:
        return "signed_in()"


class PublicRule:
    """A route anyone may call."""

    def __call__(self) -> Caller:
        return Caller(None)

    def __repr__(self) -> str:
        return "public()"


Rule = RoleRule | SignedInRule | PublicRule


def owner(role: str, *, hma: bool = False) -> Any:
    """The dependency that makes a route `role`'s: `caller: Caller = owner("match")`."""
    return Depends(RoleRule(role, hma=hma))


def signed_in() -> Any:
    """The dependency that lets any authenticated caller in: `caller: Caller = signed_in()`."""
    return Depends(SignedInRule())


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


def rule_of(route: APIRoute) -> Rule | None:
    """The one rule a route declares; None if it declares none. ValueError if several."""
    found = [
        d.call
        for d in route.dependant.dependencies
        if isinstance(d.call, RoleRule | SignedInRule | PublicRule)
    ]
    if len(found) > 1:
        raise ValueError(f"route {route.path} declares {len(found)} rules; want one")
    return found[0] if found else None


def routes_by_owner(routes: Iterable[Any]) -> dict[str, list[tuple[str, str]]]:
    """Each role's routes as (methods, path), from a route table; `signed_in` and `public`
    group the routes of those rules."""
    owned: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for route in api_routes(routes):
        rule = rule_of(route)
        if isinstance(rule, RoleRule):
            group = rule.role
        elif isinstance(rule, SignedInRule):
            group = "signed_in"
        elif isinstance(rule, PublicRule):
            group = "public"
        else:
            continue
        owned[group].append((",".join(sorted(route.methods or ())), route.path))
    return {role: sorted(paths, key=lambda p: (p[1], p[0])) for role, paths in owned.items()}
