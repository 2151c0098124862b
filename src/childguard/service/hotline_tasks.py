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
"""

from __future__ import annotations

import threading

from childguard.hotline import processing
from childguard.hotline.assessments import VoteSettings
from childguard.hotline.crypto import derive_key
from childguard.hotline.evidence import EVIDENCE_KEY_PURPOSE, purge_expired
from childguard.hotline.items import DedupeSettings
from childguard.hotline.review import ExposureSettings, PreviewPreferences
from childguard.index.vpdq import DEFAULT_VPDQ_THRESHOLD, VpdqThreshold
from childguard.service.config import HOTLINE_RETENTION, Settings
from childguard.service.scheduler import (
    PeriodicTask,
    SchedulerContext,
    data_dir,
    register_task,
)

INTERVAL_SECONDS = 60.0


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


register_task("hotline", _hotline_task)
