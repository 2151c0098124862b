"""Every route of the app refuses no key (401) and a key of any role but its owner's (403);
generated from the app's route table, so a route added without a rule fails here."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.routing import APIRoute

from childguard.accounts import ROLES, create_key, revoke_key
from childguard.protect.organisations import create_organisation
from childguard.service import Settings, create_app
from childguard.service.app import PUBLIC_BUILTIN, check_rules
from childguard.service.auth import PublicRule, RoleRule, SignedInRule, api_routes, rule_of
from childguard.store.base import utcnow

from .conftest import LiveServer

PUBLIC = {"/status", "/status/live", *PUBLIC_BUILTIN}
APP = create_app(Settings(db_url="sqlite://"))
ROUTES = [
    (method, route.path, rule_of(route))
    for route in api_routes(APP.routes)
    for method in sorted(route.methods)
]
OWNED = [(m, p, r) for m, p, r in ROUTES if isinstance(r, RoleRule)]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "NO_SUCH_BANK", path)


def test_every_route_has_a_rule_and_only_health_is_public() -> None:
    assert ROUTES, "the app has no routes"
    assert all(rule is not None for _, _, rule in ROUTES)
    assert {(m, p) for m, p in SIGNED_IN} == {
        ("GET", "/v1/me"),
        ("DELETE", "/v1/session"),
        ("POST", "/logout"),
    }
    public = {(method, path) for method, path, rule in ROUTES if isinstance(rule, PublicRule)}
    health = {("GET", "/status"), ("GET", "/status/live")}
    sign_in = {("POST", "/v1/session"), ("GET", "/login"), ("POST", "/login")}
    reports = {(m, p) for m in ("GET", "POST") for p in ("/report", "/report/status")}
    host_link = {("GET", "/host/notice/{token}")} | {
        ("POST", f"/host/notice/{{token}}/{action}") for action in ("removed", "comment")
    }
    assert public == health | sign_in | reports | host_link
    others = {getattr(r, "path", None) for r in APP.routes if not isinstance(r, APIRoute)}
    assert others - {None} <= PUBLIC


def test_a_route_without_a_rule_is_refused() -> None:
    app = create_app(Settings(db_url="sqlite://"))

    @app.get("/v1/unguarded")
    def unguarded() -> dict[str, str]:
        return {}

    with pytest.raises(ValueError, match="/v1/unguarded"):
        check_rules(app)


@pytest.fixture(scope="module")
def role_keys(sqlite_server: LiveServer) -> dict[str, str]:
    """A key per role; the org-admin one acts for an organisation, as its routes need."""
    with sqlite_server.store.session() as s:
        org_id = create_organisation(s, "Route Matrix").id
    _, key = create_key(sqlite_server.store, "org-admin", actor="test", organisation_id=org_id)
    return {**sqlite_server.keys, "org-admin": key}


@pytest.mark.parametrize(("method", "path", "rule"), OWNED, ids=[f"{m} {p}" for m, p, _ in OWNED])
def test_owner_only(
    sqlite_server: LiveServer, role_keys: dict[str, str], method: str, path: str, rule: RoleRule
) -> None:
    url = _concrete(path)
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as client:
        refused = client.request(method, url)
        assert refused.status_code == 401, refused.text
        assert refused.json()["message"]
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, url, headers={"Authorization": "Bearer cg_not-a-key"})
        assert wrong.status_code == 401
        for role in ROLES:
            key = role_keys[role]
            answer = client.request(method, url, headers={"Authorization": f"Bearer {key}"})
            if role == rule.role:
                assert answer.status_code not in (401, 403), (role, answer.text)
            else:
                assert answer.status_code == 403, (role, answer.text)
                assert rule.role in answer.json()["message"]


SIGNED_IN = [(m, p) for m, p, r in ROUTES if isinstance(r, SignedInRule)]
# Owned routes, safe and unsafe, also checked with a signed-in user of every role.
SESSION_SAMPLE = [
    (m, p, r)
    for m, p, r in OWNED
    if (m, p)
    in {
        ("GET", "/v1/banks"),
        ("POST", "/v1/banks"),
        ("DELETE", "/v1/banks/{name}"),
        ("GET", "/m/index/status"),
        ("POST", "/v1/hash"),
        ("POST", "/c/banks"),
    }
]


@pytest.fixture(scope="module")
def role_sessions(sqlite_server: LiveServer) -> Iterator[dict[str, httpx.Client]]:
    """A signed-in user per role, each holding that role alone."""
    clients = {role: sqlite_server.user_client(role) for role in ROLES}
    yield clients
    for client in clients.values():
        client.close()


def test_the_session_sample_covers_safe_and_unsafe_routes() -> None:
    assert len(SESSION_SAMPLE) == 6
    assert {m for m, _, _ in SESSION_SAMPLE} >= {"GET", "POST", "DELETE"}


@pytest.mark.parametrize(
    ("method", "path", "rule"), SESSION_SAMPLE, ids=[f"{m} {p}" for m, p, _ in SESSION_SAMPLE]
)
def test_owner_only_for_session_users(
    role_sessions: dict[str, httpx.Client], method: str, path: str, rule: RoleRule
) -> None:
    url = _concrete(path)
    for role, client in role_sessions.items():
        answer = client.request(method, url)
        if role == rule.role:
            assert answer.status_code not in (401, 403), (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert rule.role in answer.json()["message"]
    if method != "GET":
        owner = role_sessions[rule.role]
        bare = owner.request(method, url, headers={"X-CSRF-Token": ""})
        assert bare.status_code == 403 and "CSRF" in bare.json()["message"]


@pytest.mark.parametrize(("method", "path"), SIGNED_IN, ids=[f"{m} {p}" for m, p in SIGNED_IN])
def test_signed_in_routes_take_any_role(
    sqlite_server: LiveServer, role_keys: dict[str, str], method: str, path: str
) -> None:
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as client:
        refused = client.request(method, path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        for role, key in role_keys.items():
            answer = client.request(method, path, headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code not in (401, 403), (role, answer.text)


def test_public_routes_need_no_key(sqlite_server: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_server.url) as client:
        assert client.get("/status").status_code == 200
        assert client.get("/status/live").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_revoked_and_expired_keys_are_refused(sqlite_server: LiveServer) -> None:
    store = sqlite_server.store
    info, revoked = create_key(store, "match", actor="test")
    revoke_key(store, info.id, actor="test")
    soon, expiring = create_key(
        store, "match", actor="test", expires_at=utcnow() + timedelta(seconds=1)
    )
    with httpx.Client(base_url=sqlite_server.url) as client:
        url = "/m/index/status"
        assert client.get(url, headers={"X-API-Key": expiring}).status_code == 200
        assert client.get(url, headers={"Authorization": f"Bearer {revoked}"}).status_code == 401
        assert soon.expires_at is not None
        time.sleep(max(0.0, (soon.expires_at - utcnow()).total_seconds()) + 0.05)
        assert client.get(url, headers={"X-API-Key": expiring}).status_code == 401
