"""Signing in over HTTP against the real server, on SQLite and PostgreSQL: the session cookie,
CSRF on unsafe calls, roles of session users, sign-out, sessions ended by a password change or
by disabling, audit of sign-ins; the sign-in page for browsers; keys working beside cookies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from childguard.accounts import create_user, disable_user, set_password
from childguard.service.auth import SESSION_COOKIE
from childguard.store import AuditEvent
from sample_media import jpeg_bytes

from .conftest import LiveServer, live_server

PASSWORD = "a long enough password"
PROBLEM = "application/problem+json"


@contextmanager
def _sign_in(server: LiveServer, username: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/v1/session", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        yield client


def test_sign_in_cookie_me_and_sign_out(server: LiveServer) -> None:
    user = create_user(
        server.store, "alice", PASSWORD, actor="t", roles=["curate", "match"], display_name="Al"
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/v1/session", json={"username": "Alice", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["user"]["username"] == "alice" and body["user"]["roles"] == ["curate", "match"]
        assert body["csrf_token"] and body["expires_at"]
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Secure" not in cookie  # secure_cookies is off by default
        assert PASSWORD not in answer.text
        me = client.get("/v1/me").json()
        assert me["kind"] == "user" and me["actor"] == f"user:{user.id}"
        assert me["roles"] == ["curate", "match"] and me["organisation_id"] is None
        assert me["session"]["csrf_token"] == body["csrf_token"]
        # DELETE is unsafe: without the CSRF token the session stays.
        refused = client.delete("/v1/session")
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        ended = client.delete("/v1/session", headers={"X-CSRF-Token": body["csrf_token"]})
        assert ended.status_code == 200 and ended.json() == {"ended": True}
        assert client.cookies.get(SESSION_COOKIE) is None
        client.cookies.set(SESSION_COOKIE, answer.cookies[SESSION_COOKIE])  # replayed
        after = client.get("/v1/me")
        assert after.status_code == 401 and after.headers["content-type"] == PROBLEM


def _last_event_id(server: LiveServer) -> int:
    with server.store.session() as session:
        return session.scalar(select(func.max(AuditEvent.id))) or 0


def test_wrong_passwords_unknown_users_and_lockout_over_http(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    create_user(server.store, "bob", PASSWORD, actor="t", roles=["hash"])
    since = _last_event_id(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        wrong = client.post("/v1/session", json={"username": "bob", "password": "x" * 12})
        unknown = client.post("/v1/session", json={"username": "nobody", "password": "x" * 12})
        for answer in (wrong, unknown):
            assert answer.status_code == 401 and answer.headers["content-type"] == PROBLEM
            assert answer.json()["type"].endswith("/login-failed")
            assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
        assert wrong.json()["detail"] == unknown.json()["detail"]
        assert client.post("/v1/session", json={"username": "bob"}).status_code == 422
        assert client.post("/v1/session", content=b"{not json").status_code == 400
        for _ in range(4):  # five failures in a row in all (the default): locked
            client.post("/v1/session", json={"username": "bob", "password": "x" * 12})
        locked = client.post("/v1/session", json={"username": "bob", "password": PASSWORD})
        assert locked.status_code == 401
        form = client.post("/v1/session", data={"username": "nobody", "password": PASSWORD})
        assert form.status_code == 401  # a form is read as well as JSON
    with server.store.session() as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action.like("user.%"), AuditEvent.id > since)
            )
        )
    failures = [
        e.details["reason"] for e in events if e.action == "user.login_failed" and e.details
    ]
    assert failures == [
        "wrong-password",
        "unknown-user",
        *["wrong-password"] * 4,
        "locked",
        "unknown-user",
    ]
    assert PASSWORD not in repr([e.details for e in events])


def test_a_session_user_needs_the_role_and_the_csrf_token(server: LiveServer) -> None:
    create_user(server.store, "carol", PASSWORD, actor="t", roles=["curate"])
    create_user(server.store, "dave", PASSWORD, actor="t", roles=["match", "hash"])
    with _sign_in(server, "carol") as carol, _sign_in(server, "dave") as dave:
        token = carol.headers.pop("X-CSRF-Token")
        assert carol.get("/v1/banks").status_code == 200  # safe methods need no token
        refused = carol.post("/v1/banks", json={"name": "CAROLS"})
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
        wrong = carol.post("/v1/banks", json={"name": "CAROLS"}, headers={"X-CSRF-Token": "x"})
        assert wrong.status_code == 403
        made = carol.post("/v1/banks", json={"name": "CAROLS"}, headers={"X-CSRF-Token": token})
        assert made.status_code == 201, made.text
        # dave's token does not open carol's session
        theirs = carol.post(
            "/v1/banks",
            json={"name": "OTHER"},
            headers={"X-CSRF-Token": dave.headers["X-CSRF-Token"]},
        )
        assert theirs.status_code == 403
        other = dave.get("/v1/banks")
        assert other.status_code == 403 and "'curate' role" in other.json()["detail"]
        assert dave.get("/m/index/status").status_code == 200  # one of dave's roles
    with server.store.session() as session:
        made_by = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "bank.create")
        ).all()
    assert len(made_by) == 1 and made_by[0].startswith("user:")


def test_password_change_and_disabling_end_sessions(server: LiveServer) -> None:
    create_user(server.store, "erin", PASSWORD, actor="t", roles=["match"])
    with _sign_in(server, "erin") as first, _sign_in(server, "erin") as second:
        assert first.get("/v1/me").status_code == 200 and second.get("/v1/me").status_code == 200
        set_password(server.store, "erin", "the new long password", actor="admin")
        assert first.get("/v1/me").status_code == 401
        assert second.get("/v1/me").status_code == 401
    with _sign_in(server, "erin", "the new long password") as third:
        assert third.get("/m/index/status").status_code == 200
        disable_user(server.store, "erin", actor="admin")
        assert third.get("/m/index/status").status_code == 401
        again = third.post(
            "/v1/session", json={"username": "erin", "password": "the new long password"}
        )
        assert again.status_code == 401


def test_keys_keep_working_and_win_over_a_cookie(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    create_user(server.store, "frank", PASSWORD, actor="t", roles=["hash"])
    with _sign_in(server, "frank") as client:
        key = server.keys["curate"]
        as_key = client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
        assert as_key["kind"] == "key" and as_key["roles"] == ["curate"]
        # a key's unsafe call needs no CSRF token, even with a cookie beside it
        made = client.post(
            "/v1/banks",
            json={"name": "BY_KEY"},
            headers={"Authorization": f"Bearer {key}", "X-CSRF-Token": ""},
        )
        assert made.status_code == 201, made.text
        assert client.delete("/v1/session", headers={"Authorization": f"Bearer {key}"}).json() == {
            "ended": False
        }
        assert client.get("/v1/me").json()["kind"] == "user"  # the session is still there


def test_a_sign_in_from_another_site_is_refused(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    create_user(server.store, "gina", PASSWORD, actor="t")
    body = {"username": "gina", "password": PASSWORD}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            refused = client.post("/v1/session", json=body, headers=headers)
            assert refused.status_code == 403, headers
        host = server.url.removeprefix("http://")
        same = client.post("/v1/session", json=body, headers={"Origin": f"http://{host}"})
        assert same.status_code == 200


def _form_token(page: str, name: str = "csrf_token") -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, page
    return found.group(1)


def test_the_sign_in_page(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    create_user(server.store, "hana", PASSWORD, actor="t", roles=["analyst"])
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        page = browser.get("/login", params={"next": "//evil.example/x"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "<form" in page.text and "<script" not in page.text and "http" not in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        token = _form_token(page.text)
        assert _form_token(page.text, "next") == "/login"  # not another site
        # without the form's token (a form posted from elsewhere) nothing happens
        forged = httpx.post(
            f"{server.url}/login", data={"username": "hana", "password": PASSWORD}, timeout=30
        )
        assert forged.status_code == 403 and SESSION_COOKIE not in forged.headers.get(
            "set-cookie", ""
        )
        wrong = browser.post(
            "/login", data={"username": "hana", "password": "x" * 12, "csrf_token": token}
        )
        assert wrong.status_code == 401 and "wrong username or password" in wrong.text
        assert 'value="hana"' in wrong.text and "x" * 12 not in wrong.text
        token = _form_token(wrong.text)
        signed = browser.post(
            "/login",
            data={"username": "hana", "password": PASSWORD, "csrf_token": token, "next": "/v1/me"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/v1/me"
        assert browser.get("/v1/me").json()["roles"] == ["analyst"]
        home = browser.get("/login")
        assert "signed in as <strong>hana</strong>" in home.text
        csrf = _form_token(home.text)
        assert browser.post("/logout", data={}).status_code == 403  # no token in the form
        out = browser.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert browser.get("/v1/me").status_code == 401


@pytest.fixture
def secure_server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(
        f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "index", secure_cookies=True
    ) as running:
        yield running


def test_secure_cookies(secure_server: LiveServer) -> None:
    create_user(secure_server.store, "ivan", PASSWORD, actor="t")
    answer = httpx.post(
        f"{secure_server.url}/v1/session", json={"username": "ivan", "password": PASSWORD}
    )
    assert answer.status_code == 200 and "Secure" in answer.headers["set-cookie"]


def test_an_upload_form_may_carry_the_csrf_token(sqlite_server: LiveServer) -> None:
    with closing(sqlite_server.user_client("hash")) as client:
        token = client.headers.pop("X-CSRF-Token")
        photo = jpeg_bytes(3)
        upload = {"file": ("a.jpg", photo, "image/jpeg")}
        refused = client.post("/v1/hash", files=upload)
        assert refused.status_code == 403
        hashed = client.post("/v1/hash", files=upload, data={"csrf_token": token})
        assert hashed.status_code == 200, hashed.text
        assert len(hashed.json()["pdq"]) == 64
