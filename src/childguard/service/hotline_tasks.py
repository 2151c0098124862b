# Owns the hotline's place in the service: its processing settings and its periodic tasks.
"""The hotline's processing inside each service worker. The `hotline` task's factory gives the
processing its settings (`childguard.hotline.processing.configure`): the evidence directory
`<data dir>/evidence`, the evidence key `derive_key(service secret, "hotline-evidence")`, and
private addresses only with `allow_private_fetch`. The `hotline-report` jobs that reports queue
then run on the `jobs` task. The task itself, one worker at a time (`singleton`), fetches again
every URL whose retry is due (`process_due`) and purges expired evidence (`purge_expired`),
every `INTERVAL_SECONDS`.

The `hotline_*` settings (`service/config.py`) reach the library here: `processing_settings`
(near-duplicate thresholds, fetch attempts, evidence retention), `vote_settings` (votes
needed, retention of decisions) and `exposure_settings` (the daily cap, break reminders),
which the review's routes and pages use.

What leaves the hotline runs here too. The `hotline-notices` task (one worker at a time, every
`NOTICE_SECONDS`) proposes the routes of items decided since its last round
(`childguard.hotline.routing.propose_routes`, with `hotline_home_country` until a supervisor
sets one), marks referral sends left `sending` by a dead process `uncertain`
(`childguard.hotline.referrals.settle_stale`), re-sends the notices that are due
(`childguard.hotline.notices.send_due`) and runs the removal checks that are due
(`childguard.hotline.removal.check_due`); a step that fails is logged and the others still
run.
`notice_settings` and `notice_transport` give the notices their settings: the notifier
(`hotline_notifier_name`, `hotline_notifier_email`), the renotice interval and escalation
(`hotline_renotice_hours`, `hotline_escalate_after`), the host link (its lifetime
`hotline_host_link_days`, its key derived from the service's secret, its base URL from
`CHILDGUARD_PUBLIC_URL`, else `http://<host>:<port>`), SMTP from the alerts' environment
(`CHILDGUARD_SMTP_HOST`, ...; without it an email notice fails and is retried), and the
webhooks' signing secrets derived from the service's secret (a platform destination's own at
its address, else the address's). `removal_settings` gives
the checks their interval (`hotline_removal_check_hours`), the time a removal must hold
(`hotline_verify_after_hours`), the PDQ threshold and the private-address setting.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from childguard.alerts.email import SmtpSettings
from childguard.hotline import notices, processing, referrals, removal, routing
from childguard.hotline.assessments import VoteSettings
from childguard.hotline.crypto import derive_key
from childguard.hotline.evidence import EVIDENCE_KEY_PURPOSE, purge_expired
from childguard.hotline.items import DedupeSettings
from childguard.hotline.review import ExposureSettings, PreviewPreferences
from childguard.index.vpdq import DEFAULT_VPDQ_THRESHOLD, VpdqThreshold
from childguard.log import get_logger
from childguard.netguard.fetch import check_fetchable
from childguard.service.config import HOTLINE_RETENTION, Settings
from childguard.service.scheduler import (
    PeriodicTask,
    SchedulerContext,
    data_dir,
    register_task,
)
from childguard.store.base import utcnow
from childguard.store.db import Store

log = get_logger(__name__)

INTERVAL_SECONDS = 60.0
NOTICE_SECONDS = 60.0
PUBLIC_URL_ENV = "CHILDGUARD_PUBLIC_URL"
SMTP_HOST_ENV = "CHILDGUARD_SMTP_HOST"


def retention(settings: Settings) -> dict[str, int]:
    """Evidence retention in days per outcome (`pending`: waiting for a decision)."""
    return {
        outcome: int(getattr(settings, name))
        for name, outcomes in HOTLINE_RETENTION.items()
        for outcome in outcomes
    }


def dedupe_settings(settings: Settings) -> DedupeSettings:
    """How near two items must be to be one."""
    vpdq = VpdqThreshold(
        query_percent=settings.hotline_vpdq_percent,
        bank_percent=DEFAULT_VPDQ_THRESHOLD.bank_percent,
    )
    return DedupeSettings(pdq=settings.hotline_pdq_threshold, vpdq=vpdq)


def vote_settings(settings: Settings) -> VoteSettings:
    """Votes needed for a final assessment, and the retention a decision sets."""
    return VoteSettings(votes_needed=settings.hotline_votes_required, retention=retention(settings))


def preview_default(settings: Settings) -> PreviewPreferences:
    """The hotline's default preview blur and greyscale, under each analyst's own choice."""
    return PreviewPreferences(settings.hotline_preview_blur, settings.hotline_preview_greyscale)


def exposure_settings(settings: Settings) -> ExposureSettings:
    """The analysts' daily cap of content on screen, and how often to remind of a break."""
    return ExposureSettings(
        daily_cap_seconds=settings.hotline_daily_cap_minutes * 60,
        break_every_seconds=settings.hotline_break_every_minutes * 60,
    )


def processing_settings(context: SchedulerContext) -> processing.ProcessingSettings:
    """The processing's settings for this service."""
    settings = context.settings
    return processing.ProcessingSettings(
        evidence_dir=data_dir(settings) / "evidence",
        evidence_key=derive_key(context.secret_key, EVIDENCE_KEY_PURPOSE),
        allow_private=settings.allow_private_fetch,
        dedupe=dedupe_settings(settings),
        retention=retention(settings),
        give_up_after=settings.hotline_fetch_attempts,
    )


def _hotline_task(context: SchedulerContext) -> PeriodicTask:
    settings = processing_settings(context)
    processing.configure(settings)

    def run(_: threading.Event) -> None:
        processing.process_due(context.store, settings)
        purge_expired(context.store)

    return PeriodicTask("hotline", INTERVAL_SECONDS, run, singleton=True)


def public_url(settings: Settings) -> str:
    """The service's address as hosts reach it, for the links in notices."""
    return os.environ.get(PUBLIC_URL_ENV) or f"http://{settings.host}:{settings.port}"


def notice_settings(settings: Settings, secret_key: bytes) -> notices.NoticeSettings:
    """The notices' settings for this service (see the module doc)."""
    return notices.NoticeSettings(
        link_key=derive_key(secret_key, notices.LINK_KEY_PURPOSE),
        link_base=public_url(settings),
        notifier_name=settings.hotline_notifier_name,
        notifier_email=settings.hotline_notifier_email,
        renotice=timedelta(hours=settings.hotline_renotice_hours),
        escalate_after=settings.hotline_escalate_after,
        link_days=settings.hotline_host_link_days,
    )


def smtp_settings(settings: Settings) -> SmtpSettings | None:
    """The SMTP server notices and referrals go through: the alerts' (`CHILDGUARD_SMTP_*`),
    sending from `hotline_notifier_email` when it is set; None without `CHILDGUARD_SMTP_HOST`."""
    if not os.environ.get(SMTP_HOST_ENV):
        return None
    smtp = SmtpSettings.from_env()
    if settings.hotline_notifier_email:
        smtp = replace(smtp, sender=settings.hotline_notifier_email)
    return smtp


def notice_transport(
    settings: Settings, secret_key: bytes, store: Store
) -> notices.NoticeTransport:
    """How this service's notices leave: SMTP (`smtp_settings`), webhooks to addresses the
    address policy allows, signed with the platform destination's secret or the address's
    (`notices.signing_secret`)."""
    smtp = smtp_settings(settings)

    def check(url: str) -> None:
        check_fetchable(url, allow_private=settings.allow_private_fetch)

    return notices.NoticeTransport(
        smtp=smtp,
        webhook_secret=lambda address: notices.signing_secret(store, secret_key, address),
        check_url=check,
    )


def removal_settings(settings: Settings) -> removal.RemovalSettings:
    """The removal checks' settings for this service."""
    return removal.RemovalSettings(
        interval=timedelta(hours=settings.hotline_removal_check_hours),
        verify_after=timedelta(hours=settings.hotline_verify_after_hours),
        pdq_threshold=settings.hotline_pdq_threshold,
        allow_private=settings.allow_private_fetch,
    )


def _notices_task(context: SchedulerContext) -> PeriodicTask:
    settings = context.settings
    store = context.store

    def run(_: threading.Event) -> None:
        now = utcnow()
        steps: list[tuple[str, Callable[[], object]]] = [
            (
                "propose_routes",
                lambda: routing.propose_routes(
                    store, default_home=settings.hotline_home_country, now=now
                ),
            ),
            ("settle_stale", lambda: referrals.settle_stale(store, now=now)),
            (
                "send_due",
                lambda: notices.send_due(
                    store,
                    transport=notice_transport(settings, context.secret_key, store),
                    settings=notice_settings(settings, context.secret_key),
                    now=now,
                ),
            ),
            (
                "check_due",
                lambda: removal.check_due(store, now=now, settings=removal_settings(settings)),
            ),
        ]
        failed: list[str] = []
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # the other steps still run; the round counts as failed
                log.exception("hotline.task_step_failed", step=name, error=str(exc))
                failed.append(name)
        if failed:
            raise RuntimeError(f"the hotline-notices round failed in {', '.join(failed)}")

    return PeriodicTask("hotline-notices", NOTICE_SECONDS, run, singleton=True)


register_task("hotline", _hotline_task)
register_task("hotline-notices", _notices_task)
