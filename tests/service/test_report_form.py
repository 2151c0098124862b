"""The public report pages and `POST /v1/reports` over HTTP against the real server: the form
in Dutch, French, German and English (confirmation and refusals in the reporter's language),
the language switcher, the honeypot, the form token and size cap, the status page, the API's
idempotency; and, from a `childguard serve` subprocess, that no client address or user agent
of a reporter reaches the access log or any table."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po
from sqlalchemy import MetaData, select

from childguard.accounts import create_key
from childguard.hotline.reports import report_status
from childguard.jobs import list_jobs
from childguard.service.web import report_pages
from childguard.store import Store, open_store
from childguard.store.hotline_models import Report, ReportUrl

from .conftest import LiveServer, live_server
from .test_ops_serve import serve

# What each language's pages say: the form's title, the confirmation, a refusal of an ftp://
# URL given second, the state of a just-received URL, and a refusal of an unknown code.
LANGUAGES = {
    "nl": (
        "Beelden van seksueel misbruik van kinderen melden",
        "Bedankt, uw melding is ontvangen",
        "Adres 2 (ftp://files.example/x) moet beginnen met http:// of https://.",
        "Ontvangen",
        "Er is geen melding met deze volgcode.",
    ),
    "fr": (
        "Signaler des images d&#39;abus sexuels sur des enfants",
        "Merci, votre signalement a été reçu",
        "L&#39;adresse 2 (ftp://files.example/x) doit commencer par http:// ou https://.",
        "Reçu",
        "Aucun signalement ne correspond à ce code de suivi.",
    ),
    "de": (
        "Darstellungen sexuellen Kindesmissbrauchs melden",
        "Danke, Ihre Meldung ist eingegangen",
        "Adresse 2 (ftp://files.example/x) muss mit http:// oder https:// beginnen.",
        "Eingegangen",
        "Zu diesem Nachverfolgungscode gibt es keine Meldung.",
    ),
    "en": (
        "Report images of child sexual abuse",
        "Thank you, your report was received",
        "Address 2 (ftp://files.example/x) must start with http:// or https://.",
        "Received",
        "No report has this tracking code.",
    ),
}
ACCEPT = {
    "nl": "nl-BE,nl;q=0.9",
    "fr": "fr-BE, en;q=0.5",
    "de": "de-DE,de;q=0.8,en;q=0.2",
    "en": "en",
}


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _h1(html: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", html)
    assert found, html
    return found.group(1)


def _alert(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</p>', html)
    assert found, html
    return found.group(1)


def _code(html: str) -> str:
    found = re.search(r'id="tracking-code">([A-Z0-9-]+)<', html)
    assert found, html
    return found.group(1)


def _reports(store: Store) -> int:
    with store.session() as s:
        return len(s.scalars(select(Report.id)).all())


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_the_form_speaks_the_reporters_language_from_refusal_to_status(
    sqlite_server: LiveServer, lang: str
) -> None:
    title, thanks, refusal, received, unknown = LANGUAGES[lang]
    headers = {"Accept-Language": ACCEPT[lang]}
    with httpx.Client(base_url=sqlite_server.url, headers=headers, timeout=30) as browser:
        form = browser.get("/report")
        assert form.status_code == 200 and form.headers["content-language"] == lang
        assert f'<html lang="{lang}">' in form.text and _h1(form.text) == title
        assert "default-src 'none'" in form.headers["content-security-policy"]
        assert "<script" not in form.text  # no JavaScript, nothing fetched from elsewhere
        assert not re.search(r'(src|href|action)="(https?:)?//', form.text)
        before = _reports(sqlite_server.store)
        bad = browser.post(
            "/report",
            data={
                "csrf_token": _token(form.text),
                "urls": "https://site.example/page\nftp://files.example/x",
                "description": "kept in the form",
            },
        )
        assert bad.status_code == 422 and _alert(bad.text) == refusal
        assert "kept in the form" in bad.text  # what was typed is not lost
        assert _reports(sqlite_server.store) == before
        done = browser.post(
            "/report",
            data={
                "csrf_token": _token(bad.text),
                "urls": f"https://site.example/{lang}\n\nhttps://site.example/{lang}/2\n",
                "description": "seen on a forum",
                "site_type": "forum",
                "content_type": "images",
                "email": f"reporter-{lang}@mail.example",
                "website": "",
            },
        )
        assert done.status_code == 201 and _h1(done.text) == thanks
        code = _code(done.text)
        status = browser.post("/report/status", data={"tracking_code": code.lower()})
        assert status.status_code == 200
        states = re.findall(r'data-state="received">([^<]*)<', status.text)
        assert states == [received, received]
        assert f"https://site.example/{lang}/2" in status.text
        missing = browser.post("/report/status", data={"tracking_code": "AAAA-BBBB-CCCC-DDDD"})
        assert missing.status_code == 404 and _alert(missing.text).startswith(unknown)
    found = report_status(sqlite_server.store, code)
    assert found is not None and len(found.urls) == 2
    with sqlite_server.store.session() as s:
        report = s.scalars(select(Report).order_by(Report.id.desc())).first()
        assert report is not None and report.language == lang and report.channel == "web"
        assert report.hints == {"site_type": "forum", "content_type": "images"}
        assert report.email_encrypted is not None
        assert f"reporter-{lang}".encode() not in report.email_encrypted
        assert report.reporter is None


def test_the_switcher_chooses_and_remembers_the_language(sqlite_server: LiveServer) -> None:
    with httpx.Client(
        base_url=sqlite_server.url, headers={"Accept-Language": "de"}, timeout=30
    ) as browser:
        assert browser.get("/report").headers["content-language"] == "de"
        switched = browser.get("/report", params={"lang": "nl"})
        assert switched.headers["content-language"] == "nl"
        assert 'href="/report?lang=fr"' in switched.text
        assert browser.cookies.get("childguard_lang") == "nl"
        assert browser.get("/report/status").headers["content-language"] == "nl"
    with httpx.Client(
        base_url=sqlite_server.url, headers={"Accept-Language": "es, it;q=0.8"}, timeout=30
    ) as browser:
        assert browser.get("/report").headers["content-language"] == "en"
        # Without the cookie, a form answers in the language it was shown in.
        lookup = browser.post("/report/status", data={"tracking_code": "X", "lang": "de"})
        assert lookup.headers["content-language"] == "de"
        assert _alert(lookup.text).startswith(LANGUAGES["de"][4])


def test_the_honeypot_is_thanked_and_nothing_is_stored(sqlite_server: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as bot:
        form = bot.get("/report", params={"lang": "fr"})
        before = _reports(sqlite_server.store)
        jobs = len(list_jobs(sqlite_server.store, kind="hotline-report"))
        answer = bot.post(
            "/report",
            data={
                "csrf_token": _token(form.text),
                "urls": "https://spam.example/",
                "website": "https://spam.example/",
            },
        )
        assert answer.status_code == 201
        assert _h1(answer.text) == "Merci, votre signalement a été reçu"
        code = _code(answer.text)
        assert bot.post("/report/status", data={"tracking_code": code}).status_code == 404
    assert _reports(sqlite_server.store) == before
    assert len(list_jobs(sqlite_server.store, kind="hotline-report")) == jobs


def test_a_form_without_its_token_from_another_site_or_too_large_is_refused(
    sqlite_server: LiveServer,
) -> None:
    before = _reports(sqlite_server.store)
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as browser:
        form = browser.get("/report", params={"lang": "en"})
        token = _token(form.text)
        urls = {"urls": "https://site.example/x"}
        no_token = browser.post("/report", data=urls)
        assert no_token.status_code == 403 and "expired" in _alert(no_token.text)
        wrong = browser.post("/report", data={**urls, "csrf_token": "forged"})
        assert wrong.status_code == 403
        other_site = browser.post(
            "/report",
            data={**urls, "csrf_token": token},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert other_site.status_code == 403
        huge = browser.post(
            "/report", data={**urls, "csrf_token": token, "description": "x" * 70_000}
        )
        assert huge.status_code == 413 and _alert(huge.text) == "The report is too large."
        hint = browser.post(
            "/report", data={**urls, "csrf_token": _token(huge.text), "site_type": "darkweb"}
        )
        assert hint.status_code == 422 and "from the lists" in _alert(hint.text)
        long_one = browser.post(
            "/report",
            data={"urls": "https://site.example/" + "a" * 2100, "csrf_token": _token(hint.text)},
        )
        assert long_one.status_code == 422
        assert _alert(long_one.text) == "Address 1 is too long (at most 2048 characters)."
    assert _reports(sqlite_server.store) == before


def test_the_report_api_files_reports_idempotently_on_sqlite_and_postgres(
    server: LiveServer,
) -> None:
    body = {
        "urls": ["https://partner.example/a", "https://partner.example/a", "https://b.example/"],
        "description": "from a partner hotline",
        "hints": {"site_type": "forum"},
        "email": "analyst@partner.example",
        "language": "nl",
    }
    with server.client("reporter") as api:
        first = api.post("/v1/reports", json=body, headers={"Idempotency-Key": "case-1"})
        assert first.status_code == 201, first.text
        made = first.json()
        assert made["urls"] == 2 and re.fullmatch(
            r"([A-Z0-9]{4}-){4}[A-Z0-9]{4}", made["tracking_code"]
        )
        again = api.post("/v1/reports", json=body, headers={"Idempotency-Key": "case-1"})
        assert again.status_code == 201 and again.json() == made
        assert again.headers.get("idempotent-replayed") == "true"
        other = api.post(
            "/v1/reports",
            json={**body, "urls": ["https://c.example/"]},
            headers={"Idempotency-Key": "case-1"},
        )
        assert other.status_code == 409
        bad = api.post("/v1/reports", json={"urls": ["https://ok.example/", "javascript:alert(1)"]})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        problem = bad.json()
        assert problem["code"] == "url-scheme" and problem["position"] == 2
        assert "URL 2" in problem["detail"]
        assert api.post("/v1/reports", json={"urls": []}).json()["code"] == "no-urls"
    with server.client("match") as wrong_role:
        assert wrong_role.post("/v1/reports", json=body).status_code == 403
    store = server.store
    with store.session() as s:
        reports = s.scalars(select(Report)).all()
        assert [(r.id, r.channel, r.language) for r in reports] == [(made["id"], "api", "nl")]
        assert reports[0].reporter is not None and reports[0].reporter.startswith("key:")
        assert len(s.scalars(select(ReportUrl)).all()) == 2
    # The tracking code is kept nowhere in clear, the idempotency record included.
    assert made["tracking_code"] not in _everything(store)
    assert report_status(store, made["tracking_code"]) is not None
    assert [j.params for j in list_jobs(store, kind="hotline-report")] == [
        {"report_id": made["id"]}
    ]


def _everything(store: Store) -> str:
    """Every row of every table of the store, as text."""
    metadata = MetaData()
    metadata.reflect(store.engine)
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(table.select()):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


HOST_TOKEN = "T" * 43


def test_no_address_or_user_agent_of_a_reporter_is_logged_or_stored(tmp_path: Path) -> None:
    """Neither of a reporter (the form, the status page, the API) nor of a host answering a
    notice through its link."""
    agent = "ReporterBrowser/9.9 (privacy-probe)"
    with serve(tmp_path) as served:
        store = open_store(f"sqlite:///{tmp_path / 'serve.db'}")
        try:
            reporter_key = create_key(store, "reporter", actor="test")[1]
            with httpx.Client(
                base_url=served.url, headers={"User-Agent": agent}, timeout=30
            ) as browser:
                form = browser.get("/report", params={"lang": "fr"})
                done = browser.post(
                    "/report",
                    data={"csrf_token": _token(form.text), "urls": "https://site.example/x"},
                )
                assert done.status_code == 201, done.text
                looked = browser.post("/report/status", data={"tracking_code": _code(done.text)})
                assert looked.status_code == 200
                filed = browser.post(
                    "/v1/reports",
                    json={"urls": ["https://partner.example/y"]},
                    headers={"Authorization": f"Bearer {reporter_key}"},
                )
                assert filed.status_code == 201, filed.text
                # A host's notice link is as private as a reporter (and its token never logged).
                assert browser.get(f"/host/notice/{HOST_TOKEN}").status_code == 404
                claimed = browser.post(f"/host/notice/{HOST_TOKEN}/removed", data={"comment": "x"})
                assert claimed.status_code in (403, 404)
                # Another route still logs its caller, so the check below can fail.
                assert browser.get("/status").status_code == 200
            deadline = time.monotonic() + 5
            while True:
                lines = [e for e in served.log_lines() if e.get("event") == "http.request"]
                if any(e.get("user_agent") == agent for e in lines):
                    break
                assert time.monotonic() < deadline, lines
                time.sleep(0.05)
            text = served.stderr.read_text()
            stored = _everything(store)
        finally:
            store.close()
    routes = [e.get("route") or e.get("path") for e in lines]
    assert routes.count("/report") == 2 and routes.count("/report/status") == 1
    assert routes.count("/v1/reports") == 1
    assert routes.count("/host/notice/{token}") == 1
    assert routes.count("/host/notice/{token}/removed") == 1
    for entry in lines:
        if (entry.get("route") or "").startswith(("/report", "/v1/reports", "/host")):
            assert "client" not in entry and "user_agent" not in entry, entry
    assert HOST_TOKEN not in text
    health = next(e for e in lines if e.get("user_agent") == agent)
    assert health["route"] == "/status" and health["client"] == "127.0.0.1"
    # Only the health check's line holds the agent; no table holds the agent or the address.
    assert text.count(agent) == 1
    assert "site.example" in stored and agent not in stored and "127.0.0.1" not in stored


def test_the_per_client_rate_limit_holds_for_the_report_pages(tmp_path: Path) -> None:
    with live_server(
        f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "index", rate_limit_per_client="3/minute"
    ) as limited:
        with httpx.Client(base_url=limited.url, timeout=30) as browser:
            form = browser.get("/report")
            assert form.status_code == 200
            data = {"csrf_token": _token(form.text), "urls": "https://site.example/x"}
            assert browser.post("/report", data=data).status_code == 201
            assert browser.get("/report/status").status_code == 200
            refused = browser.post("/report", data=data)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert _reports(limited.store) == 1


def test_every_message_of_the_report_pages_is_translated_with_its_placeholders() -> None:
    web = Path(report_pages.__file__).parent
    used = {
        *report_pages.SITE_TYPES.values(),
        *report_pages.CONTENT_TYPES.values(),
        *report_pages.STATE_LABELS.values(),
        *report_pages.REFUSALS.values(),
        report_pages.FORM_EXPIRED,
        report_pages.TOO_LARGE,
        report_pages.NOT_ACCEPTED,
        report_pages.NO_SUCH_CODE,
    }
    for template in (web / "templates").glob("*report*.html"):
        used |= set(re.findall(r"""_\(\s*["']([^"']+)["']\s*\)""", template.read_text()))
    assert len(used) > 50
    for lang in ("nl", "fr", "de", "en"):
        with (web / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
            catalog = read_po(source, locale=lang)
        ids = {m.id for m in catalog if m.id}
        assert used <= ids, (lang, used - ids)
        for message in catalog:
            if not message.id or lang == "en":
                continue
            text = message.string
            assert isinstance(text, str) and text, (lang, message.id)
            assert sorted(re.findall(r"%\(\w+\)s", text)) == sorted(
                re.findall(r"%\(\w+\)s", str(message.id))
            ), (lang, message.id)
