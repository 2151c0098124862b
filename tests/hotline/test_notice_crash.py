"""A process killed with SIGKILL after the SMTP server accepted a notice and before the sending
was recorded never sends it twice: a fresh process's round finds the `sending` row, makes it
`uncertain` and counts it as sent; the SMTP server (a real one) holds exactly one message. On
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from childguard.hotline import routing
from childguard.hotline.notices import create_notice, get_notice, send_due
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.referral_models import NoticeSend
from hotline.hotline_site import serving
from hotline.notice_fixtures import LINK_KEY, Inbox, inbox, notice_settings, routed, transport

__all__ = ["inbox"]

# The sender: confirms and sends the notice; once the message went out it raises the flag
# and waits to be killed, before the sending is recorded.
SENDER = """
import os, sys, time
from pathlib import Path
from childguard.alerts.email import SmtpSettings
from childguard.hotline.notices import NoticeSettings, NoticeTransport, send_notice
from childguard.store import open_store

url, notice_id, host, port, flag, key = sys.argv[1:7]

def pause(notice, sequence):
    # Written aside and renamed, so the test never reads the flag half written.
    Path(flag + ".part").write_text(f"{notice}:{sequence}")
    os.replace(flag + ".part", flag)
    time.sleep(120)

store = open_store(url)
send_notice(
    store,
    int(notice_id),
    actor="user:1",
    transport=NoticeTransport(smtp=SmtpSettings(host=host, port=int(port)), after_send=pause),
    settings=NoticeSettings(link_key=bytes.fromhex(key)),
)
print("recorded")
"""

# A fresh process's round of due notices, at the given time.
ROUND = """
import json, sys
from datetime import datetime
from childguard.alerts.email import SmtpSettings
from childguard.hotline.notices import NoticeSettings, NoticeTransport, send_due
from childguard.store import open_store

url, host, port, now, key = sys.argv[1:6]
store = open_store(url)
done = send_due(
    store,
    transport=NoticeTransport(smtp=SmtpSettings(host=host, port=int(port))),
    settings=NoticeSettings(link_key=bytes.fromhex(key)),
    now=datetime.fromisoformat(now),
)
print(json.dumps(done.to_dict()))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_a_kill_between_the_send_and_its_record_never_sends_twice(
    store: Store, store_url: str, inbox: Inbox, tmp_path: Path
) -> None:
    with serving() as site:
        route_ids = routed(store, site, 41, now=utcnow())
    draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
    flag = tmp_path / "sent.flag"
    sender = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SENDER,
            store_url,
            str(draft.id),
            inbox.host,
            str(inbox.port),
            str(flag),
            LINK_KEY.hex(),
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert sender.poll() is None, sender.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the sender never sent"
            time.sleep(0.05)
        assert len(inbox.messages) == 1
        sender.send_signal(signal.SIGKILL)
        out, _ = sender.communicate(timeout=30)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    assert sender.returncode == -signal.SIGKILL and b"recorded" not in out
    assert flag.read_text() == f"{draft.id}:1"
    with store.session() as s:
        (row,) = s.scalars(select(NoticeSend).where(NoticeSend.notice_id == draft.id)).all()
        assert row.state == "sending"
    assert get_notice(store, draft.id).sends == 0

    later = utcnow() + timedelta(minutes=2)
    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            ROUND,
            store_url,
            inbox.host,
            str(inbox.port),
            later.isoformat(),
            LINK_KEY.hex(),
        ],
        env=_env(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    done = json.loads(fresh.stdout.decode().strip().splitlines()[-1])
    assert done["uncertain"] == [draft.id] and done["sent"] == []
    assert len(inbox.messages) == 1  # never sent again
    notice = get_notice(store, draft.id)
    assert [(s.sequence, s.state) for s in notice.sendings] == [(1, "uncertain")]
    assert notice.sends == 1 and notice.first_sent_at == notice.sendings[0].started_at
    assert routing.get_route(store, route_ids[0]).state == "notified"

    # Another round before the interval sends nothing; the next notice after it is number 2.
    settings = notice_settings()
    quiet = send_due(store, transport=transport(inbox), settings=settings, now=later)
    assert quiet.sent == [] and len(inbox.messages) == 1
    next_at = notice.next_send_at
    assert next_at is not None
    renotice = send_due(store, transport=transport(inbox), settings=settings, now=next_at)
    assert renotice.sent == [draft.id] and len(inbox.messages) == 2
    assert inbox.messages[1]["Message-ID"] == f"<{draft.reference}.2@childguard.notice>"
