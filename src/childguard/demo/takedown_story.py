# Owns the demo's takedown chapter: routes, a police bundle, a notice, a takedown, time to removal.
"""The hotline after the assessment, against the running service of the hotline chapter:
`run_takedown(...) -> TakedownResult`.

1. a supervisor (signed in) sets the home country and a police destination that takes bundles
   by download, with an age key made for the demo (the police's private half stays in the
   demo's folder, to show the evidence can be opened by them alone);
2. an analyst lists the proposed routes (`/v1/hotline/routes`): every URL of the assessed
   picture and of the copies that inherited its assessment goes to the police (the local
   site's country is unknown, so the home country's police); the analyst confirms them;
3. the analyst builds one referral bundle with the evidence encrypted to the police's key,
   downloads it, checks every file against its manifest (`verify_bundle`) and decrypts one
   piece of evidence with the police's key; records it handed over and acknowledged;
4. a notice to the site's abuse address by email (a local SMTP server on 127.0.0.1) carries
   the URLs, hashes, reason, a preservation request and the host's link;
5. the site takes the copies down; the host opens its link and says so; the removal checks
   (re-fetching each URL) find them gone (`removed`), and a second check verifies it;
6. the supervisor's statistics give the time to removal, and the dashboard shows it.

Nothing here leaves the machine: the site, the SMTP server and the service are on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pyrage
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler
from pyrage import x25519

from childguard.errors import ChildguardError
from childguard.hotline.bundles import verify_bundle

POLICE = "Federal police (demo)"
HOME_COUNTRY = "BE"
HOST_ABUSE = "abuse@hotline-site.test"
EXTERNAL_REF = "PJF-DEMO-0042"
_LINK = re.compile(r"(https?://\S+/host/notice/[A-Za-z0-9_-]+)")
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_DASHBOARD_LINE = re.compile(r"Median time to removal:.*?routes removed\)", re.S)


class TakedownDemoError(ChildguardError):
    """A step of the takedown chapter did not happen; the message says which."""


@dataclass
class TakedownResult:
    """What the takedown chapter did, for the summary and the tests."""

    routes: list[dict[str, Any]] = field(default_factory=list)
    referral: dict[str, Any] = field(default_factory=dict)
    bundle_files: list[str] = field(default_factory=list)
    bundle_ok: bool = False
    evidence_opened: bool = False
    notice: dict[str, Any] = field(default_factory=dict)
    emails: int = 0
    host_link: str | None = None
    claim_status: int | None = None
    checks: list[str] = field(default_factory=list)
    final_states: list[str] = field(default_factory=list)
    removal: dict[str, Any] = field(default_factory=dict)
    dashboard: str = ""  # the supervisors' dashboard's line on the time to removal


class _Collect(MessageHandler):
    def __init__(self, box: list[Message]) -> None:
        super().__init__()
        self.box = box

    def handle_message(self, message: Message) -> None:
        self.box.append(message)


@dataclass
class Mailbox:
    """A local SMTP server on 127.0.0.1 that keeps what it receives (the host's inbox)."""

    port: int
    messages: list[Message] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def running(cls, port: int) -> Iterator[Mailbox]:
        box = cls(port)
        controller = Controller(_Collect(box.messages), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            yield box
        finally:
            controller.stop()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in str(m.get("To", ""))]


def smtp_environment(port: int) -> dict[str, str]:
    """The variables that point the service's notices at the local mailbox."""
    return {
        "CHILDGUARD_SMTP_HOST": "127.0.0.1",
        "CHILDGUARD_SMTP_PORT": str(port),
        "CHILDGUARD_SMTP_FROM": "hotline@childguard.demo",
    }


def _json(answer: httpx.Response, what: str, status: int = 200) -> Any:
    if answer.status_code != status:
        raise TakedownDemoError(f"{what} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()


def _body_text(message: Message) -> str:
    if message.is_multipart():
        parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
        message = parts[0] if parts else message
    payload = message.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)


def run_takedown(
    base: str,
    supervisor: httpx.Client,
    analyst: httpx.Client,
    mailbox: Mailbox,
    *,
    take_down: Sequence[Path],
    workdir: Path,
    say: Any,
) -> TakedownResult:
    """The chapter (see the module doc) against the service at `base`; `take_down` are the
    site's files the host removes."""
    result = TakedownResult()
    say("[bold]7. Routing, a police bundle, a notice, the takedown and the time to removal[/bold]")
    police_key = x25519.Identity.generate()
    key_file = workdir / "police-demo.agekey"
    key_file.write_text(str(police_key) + "\n")
    key_file.chmod(0o600)
    _json(supervisor.put("/v1/hotline/home-country", json={"country": HOME_COUNTRY}), "home")
    police = _json(
        supervisor.post(
            "/v1/hotline/destinations",
            json={
                "name": POLICE,
                "kind": "police",
                "country": HOME_COUNTRY,
                "channel": "download",
                "vics_profile": "uk",
                "public_key": str(police_key.to_public()),
            },
        ),
        "the police destination",
        201,
    )
    say(
        f"   supervisor: home country {HOME_COUNTRY}; destination {POLICE!r} (download, VICS "
        f"uk, evidence encrypted to its age key; the private half in {key_file.name})"
    )

    listed = _json(analyst.get("/v1/hotline/routes", params={"confirmed": "false"}), "routes")
    routes = [r for r in listed["items"] if r["route"] == "police"]
    if not routes:
        raise TakedownDemoError("no police route was proposed for the assessed picture")
    for r in routes:
        say(
            f"     route {r['id']}: item {r['item_id']} at {r['url']} -> {r['route']} "
            f"({r['reason']})"
        )
    ids = [r["id"] for r in routes]
    confirmed = _json(
        analyst.post("/v1/hotline/routes/confirm", json={"route_ids": ids}), "confirm"
    )
    result.routes = confirmed["items"]
    say(f"   analyst confirms {len(ids)} routes: nothing leaves before this")

    referral = _json(
        analyst.post(
            "/v1/hotline/referrals",
            json={"route_ids": ids, "destination_id": police["id"], "with_media": True},
        ),
        "the referral",
        201,
    )
    download = analyst.get(f"/v1/hotline/referrals/{referral['id']}/bundle")
    if download.status_code != 200:
        raise TakedownDemoError(f"the bundle download answered {download.status_code}")
    bundle = workdir / f"{referral['reference']}.zip"
    bundle.write_bytes(download.content)
    check = verify_bundle(bundle, manifest_sha256=referral["manifest_sha256"])
    result.bundle_ok = check.ok
    if not check.ok:
        raise TakedownDemoError(f"the bundle does not check: {'; '.join(check.problems)}")
    with zipfile.ZipFile(bundle) as archive:
        result.bundle_files = sorted(archive.namelist())
        evidence = [n for n in result.bundle_files if n.endswith(".age")]
        if evidence:
            opened = pyrage.decrypt(archive.read(evidence[0]), [police_key])
            expected = Path(evidence[0]).name.removesuffix(".age")
            result.evidence_opened = hashlib.sha256(opened).hexdigest() == expected
    say(
        f"   referral {referral['reference']}: {len(result.bundle_files)} files "
        f"({', '.join(n for n in result.bundle_files if not n.endswith('.age'))} and "
        f"{len(evidence)} encrypted evidence files), manifest SHA-256 "
        f"{referral['manifest_sha256'][:16]}..; every hash checks"
        + ("; the police's key opens the evidence" if result.evidence_opened else "")
    )
    sent = _json(analyst.post(f"/v1/hotline/referrals/{referral['id']}/send", json={}), "send")
    acked = _json(
        analyst.post(
            f"/v1/hotline/referrals/{referral['id']}/acknowledge",
            json={"external_ref": EXTERNAL_REF},
        ),
        "the acknowledgement",
    )
    result.referral = acked
    say(f"   handed over ({sent['state']}), acknowledged by the police as {EXTERNAL_REF}")

    notice = _json(
        analyst.post(
            "/v1/hotline/notices",
            json={
                "route_ids": ids,
                "recipient_kind": "host",
                "channel": "email",
                "address": HOST_ABUSE,
                "recipient_name": "the image site's abuse desk",
            },
        ),
        "the notice",
        201,
    )
    sent_notice = _json(analyst.post(f"/v1/hotline/notices/{notice['id']}/send"), "the send")
    result.notice = sent_notice
    inbox = mailbox.to(HOST_ABUSE)
    result.emails = len(inbox)
    if not inbox:
        raise TakedownDemoError("the notice did not reach the local mailbox")
    body = _body_text(inbox[-1])
    link = _LINK.search(body)
    result.host_link = link.group(1) if link else None
    say(
        f"   notice {sent_notice['reference']} by email to {HOST_ABUSE}: "
        f"\u201c{inbox[-1]['Subject']}\u201d ({len(ids)} URLs, their hashes, a preservation "
        "request, the host's link); re-sent every 24 h until removal"
    )

    for path in take_down:
        path.unlink(missing_ok=True)
    if result.host_link is not None:
        with httpx.Client(timeout=30) as host:
            page = host.get(result.host_link)
            token = _FORM_TOKEN.search(page.text)
            claim = host.post(
                result.host_link + "/removed",
                data={"csrf_token": token.group(1) if token else "", "comment": "taken down"},
            )
            result.claim_status = claim.status_code
    say(
        f"   the site takes the {len(take_down)} copies down; the host opens its link (no "
        f"account) and says so ({result.claim_status}): a claim only brings the check forward"
    )
    for round_ in ("check", "second check"):
        states = []
        for route_id in ids:
            done = _json(analyst.post(f"/v1/hotline/routes/{route_id}/check"), "a check")
            states.append(f"{done['result']}->{done['state']}")
        result.checks.append(", ".join(states))
        say(f"   removal {round_}: {', '.join(sorted(set(states)))}")
    result.final_states = [
        _json(analyst.get(f"/v1/hotline/routes/{i}"), "a route")["state"] for i in ids
    ]
    stats = _json(supervisor.get("/v1/hotline/statistics/removal"), "statistics")
    overall = stats["groups"][0] if stats["groups"] else {}
    result.removal = overall
    removal = overall.get("removal", {})
    hours = removal.get("median_hours")
    within = overall.get("removed_within_days", {}).get("1")
    say(
        f"   [bold]time to removal: median {hours:.4f} h ({(hours or 0) * 3600:.0f} s) from the "
        f"report, {removal.get('count')} of {overall.get('routes')} routes removed, "
        f"{100 * (within or 0):.0f}% within a day[/bold]"
        if hours is not None
        else "   time to removal: no route removed"
    )
    page = supervisor.get("/hotline/dashboard")
    found = _DASHBOARD_LINE.search(page.text) if page.status_code == 200 else None
    if found is None:
        raise TakedownDemoError(f"the dashboard answered {page.status_code} without its figure")
    result.dashboard = " ".join(re.sub(r"<[^>]+>", "", found.group(0)).split())
    say(f"   the supervisors' dashboard ({base}/hotline/dashboard): {result.dashboard}")
    return result
