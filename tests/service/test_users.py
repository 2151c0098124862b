"""Users, roles, sign-ins and sessions in the store, on SQLite and PostgreSQL: argon2 hashes and
never the password, lockout, disabled users, sessions that end, every write and sign-in audited,
and the first admin made once when two processes start together."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from childguard.accounts import (
    LoginFailed,
    UserExists,
    UserNotFound,
    WeakPassword,
    authenticate,
    create_user,
    disable_user,
    enable_user,
    ensure_first_admin,
    get_user,
    grant_roles,
    identify_session,
    list_users,
    remove_user,
    revoke_roles,
    set_password,
    sign_in,
)
from childguard.accounts.passwords import needs_rehash, verify_password
from childguard.accounts.sessions import Lifetime, find_session
from childguard.errors import InputFormatError
from childguard.protect.organisations import create_organisation
from childguard.store import AuditEvent, Store
from childguard.store.account_models import User, UserSession
from childguard.store.base import utcnow

PASSWORD = "correct horse battery"
IDLE = timedelta(hours=1)


def _events(store: Store) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_the_store_keeps_an_argon2_hash_and_never_the_password(store: Store) -> None:
    user = create_user(
        store, "Alice", PASSWORD, actor="tester", roles=["curate", "match"], email="a@example.org"
    )
    assert user.username == "alice" and user.roles == ("curate", "match")
    with store.session() as session:
        row = session.scalars(select(User)).one()
        stored = [str(getattr(row, c.key)) for c in User.__table__.columns]
    assert row.password_hash.startswith("$argon2id$")
    assert verify_password(row.password_hash, PASSWORD) and not needs_rehash(row.password_hash)
    assert not any(PASSWORD in value for value in stored)
    events = _events(store)
    assert [(e.action, e.actor, e.object_id) for e in events] == [
        ("user.create", "tester", str(user.id))
    ]
    assert events[0].details is not None and events[0].details["roles"] == ["curate", "match"]
    assert PASSWORD not in repr([e.details for e in events])


def test_bad_input_is_refused_before_anything_is_written(store: Store) -> None:
    with pytest.raises(WeakPassword, match="at least 12"):
        create_user(store, "bob", "short", actor="t")
    with pytest.raises(InputFormatError, match="bad username"):
        create_user(store, "no spaces", PASSWORD, actor="t")
    with pytest.raises(InputFormatError, match="unknown role 'root'"):
        create_user(store, "bob", PASSWORD, actor="t", roles=["root"])
    with pytest.raises(InputFormatError, match="no organisation with id 99"):
        create_user(store, "bob", PASSWORD, actor="t", organisation_id=99)
    with pytest.raises(InputFormatError, match="bad email"):
        create_user(store, "bob", PASSWORD, actor="t", email="not-an-address")
    assert list_users(store) == [] and _events(store) == []
    create_user(store, "bob", PASSWORD, actor="t")
    with pytest.raises(UserExists):
        create_user(store, "BOB", PASSWORD, actor="t")
    with pytest.raises(UserNotFound):
        get_user(store, "nobody")


def test_roles_organisation_and_every_write_audited(store: Store) -> None:
    with store.session() as session:
        org_id = create_organisation(session, "Example School").id
    create_user(
        store, "carol", PASSWORD, actor="admin", roles=["org-admin"], organisation_id=org_id
    )
    assert get_user(store, "carol").organisation_id == org_id
    assert grant_roles(store, "carol", ["analyst", "org-admin"], actor="admin").roles == (
        "analyst",
        "org-admin",
    )
    assert revoke_roles(store, "carol", ["org-admin", "hash"], actor="admin").roles == ("analyst",)
    set_password(store, "carol", PASSWORD + "!", actor="admin")
    disable_user(store, "carol", actor="admin")
    disable_user(store, "carol", actor="admin")  # again: no change, nothing audited
    enable_user(store, "carol", actor="admin")
    removed = remove_user(store, "carol", actor="admin")
    assert removed.roles == ("analyst",) and list_users(store) == []
    actions = [(e.action, e.actor) for e in _events(store) if e.object_type == "user_account"]
    assert actions == [
        ("user.create", "admin"),
        ("user.grant", "admin"),
        ("user.revoke", "admin"),
        ("user.password", "admin"),
        ("user.disable", "admin"),
        ("user.enable", "admin"),
        ("user.remove", "admin"),
    ]
    grant = next(e for e in _events(store) if e.action == "user.grant")
    assert grant.details is not None and grant.details["roles"] == ["analyst"]  # only the new one


def test_sign_ins_are_audited_without_the_password(store: Store) -> None:
    user = create_user(store, "dave", PASSWORD, actor="t", roles=["match"])
    signed = authenticate(store, "Dave", PASSWORD)
    assert signed.id == user.id and signed.last_login_at is not None
    with pytest.raises(LoginFailed) as wrong:
        authenticate(store, "dave", "not the password at all")
    assert wrong.value.reason == "wrong-password"
    with pytest.raises(LoginFailed) as unknown:
        authenticate(store, "nobody", PASSWORD)
    assert unknown.value.reason == "unknown-user"
    assert str(wrong.value) == str(unknown.value)  # the message says nothing about who exists
    logins = [e for e in _events(store) if e.action.startswith("user.login")]
    assert [(e.action, e.actor, e.object_id, (e.details or {}).get("reason")) for e in logins] == [
        ("user.login", f"user:{user.id}", str(user.id), None),
        ("user.login_failed", "anonymous", str(user.id), "wrong-password"),
        ("user.login_failed", "anonymous", "", "unknown-user"),
    ]
    text = repr([(e.details, e.object_id) for e in _events(store)])
    assert PASSWORD not in text and "not the password" not in text
    assert "127.0.0.1" not in text


def test_lockout_after_failures_and_its_end(store: Store) -> None:
    create_user(store, "erin", PASSWORD, actor="t")
    lockout = timedelta(seconds=1)
    for _ in range(2):
        with pytest.raises(LoginFailed):
            authenticate(store, "erin", "wrong password!!", max_failures=3, lockout=lockout)
    assert get_user(store, "erin").failed_logins == 2
    with pytest.raises(LoginFailed):
        authenticate(store, "erin", "wrong password!!", max_failures=3, lockout=lockout)
    locked = get_user(store, "erin")
    assert locked.locked() and locked.failed_logins == 0
    with pytest.raises(LoginFailed) as refused:
        authenticate(store, "erin", PASSWORD, max_failures=3, lockout=lockout)
    assert refused.value.reason == "locked"
    assert locked.locked_until is not None
    time.sleep(max(0.0, (locked.locked_until - utcnow()).total_seconds()) + 0.05)
    assert authenticate(store, "erin", PASSWORD, max_failures=3, lockout=lockout).id == locked.id
    after = get_user(store, "erin")
    assert not after.locked() and after.failed_logins == 0
    # A success resets the count: two failures, a success, two failures do not lock.
    for attempt in ("x" * 12, "y" * 12, PASSWORD, "x" * 12, "y" * 12):
        with contextlib.suppress(LoginFailed):
            authenticate(store, "erin", attempt, max_failures=3, lockout=lockout)
    assert not get_user(store, "erin").locked()


def test_disabled_users_cannot_sign_in_and_lose_their_sessions(store: Store) -> None:
    create_user(store, "frank", PASSWORD, actor="t", roles=["hash"])
    _, _, token, _ = sign_in(store, "frank", PASSWORD)
    assert identify_session(store, token, idle=IDLE) is not None
    disable_user(store, "frank", actor="admin")
    assert identify_session(store, token, idle=IDLE) is None
    with pytest.raises(LoginFailed) as refused:
        authenticate(store, "frank", PASSWORD)
    assert refused.value.reason == "disabled"
    enable_user(store, "frank", actor="admin")
    assert identify_session(store, token, idle=IDLE) is None  # ended, not just paused
    assert authenticate(store, "frank", PASSWORD).username == "frank"


def test_sessions_expire_idle_and_absolute_and_a_password_change_ends_the_others(
    store: Store,
) -> None:
    create_user(store, "gina", PASSWORD, actor="t", roles=["curate"])
    span = Lifetime(idle=timedelta(minutes=10), absolute=timedelta(hours=1))
    _, first, token, csrf = sign_in(store, "gina", PASSWORD, lifetime=span)
    with store.session() as session:
        row = session.scalars(select(UserSession)).one()
        assert token not in (row.token_hash, row.csrf_hash) and csrf not in (row.csrf_hash,)
    assert first.csrf_ok(csrf) and not first.csrf_ok(csrf + "x") and not first.csrf_ok(None)
    now = utcnow()
    with store.session() as session:
        assert find_session(session, token, idle=span.idle, now=now + timedelta(minutes=9))
        # used at +9 min, so still live at +18 min; idle past 10 min at +30 min
        assert find_session(session, token, idle=span.idle, now=now + timedelta(minutes=18))
        assert find_session(session, token, idle=span.idle, now=now + timedelta(minutes=30)) is None
    with store.session() as session:
        assert (
            find_session(session, token, idle=timedelta(days=1), now=now + timedelta(hours=2))
            is None
        )
    _, second, other, _ = sign_in(store, "gina", PASSWORD, lifetime=span)
    set_password(store, "gina", "a new long password", actor="user:1", keep_session_id=second.id)
    assert identify_session(store, token, idle=IDLE) is None
    assert identify_session(store, other, idle=IDLE) is not None  # the one it was changed from
    with pytest.raises(LoginFailed):
        authenticate(store, "gina", PASSWORD)
    set_password(store, "gina", "another long password", actor="admin")
    assert identify_session(store, other, idle=IDLE) is None


def test_the_first_admin_is_made_once_by_two_processes_starting_together(store: Store) -> None:
    barrier = threading.Barrier(2)
    results: list[object] = []

    def start() -> None:
        barrier.wait()
        results.append(ensure_first_admin(store))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    made = [r for r in results if r is not None]
    assert len(results) == 2 and len(made) == 1
    user, password = made[0]  # type: ignore[misc]
    assert user.username == "admin" and user.roles == ("admin",)
    assert [u.username for u in list_users(store)] == ["admin"]
    assert authenticate(store, "admin", password).id == user.id
    assert ensure_first_admin(store) is None  # there are users now
    creations = [e for e in _events(store) if e.action == "user.create"]
    assert len(creations) == 1 and password not in repr(creations[0].details)


def test_the_first_admin_takes_a_given_password(store: Store) -> None:
    with pytest.raises(WeakPassword):
        ensure_first_admin(store, password="short")
    made = ensure_first_admin(store, password="the chosen admin password")
    assert made is not None and made[1] == "the chosen admin password"
    assert authenticate(store, "admin", "the chosen admin password").has_role("admin")
