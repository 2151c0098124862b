# Owns the hotline's place in the service: its processing settings and its periodic tasks.
"""The hotline's processing inside each service worker. The `hotline` task's factory gives the
processing its settings (`childguard.hotline.processing.configure`): the evidence directory
`<data dir>/evidence`, the evidence key `derive_key(service secret, "hotline-evidence")`, and
private addresses only with `allow_private_fetch`. The `hotline-report` jobs that reports queue
then run on the `jobs` task. The task itself, one worker at a time (`singleton`), fetches again
every URL whose retry is due (`process_due`) and purges expired evidence (`purge_expired`),
every `INTERVAL_SECONDS`.
"""

from __future__ import annotations

import threading

from childguard.hotline import processing
from childguard.hotline.crypto import derive_key
from childguard.hotline.evidence import EVIDENCE_KEY_PURPOSE, purge_expired
from childguard.service.scheduler import (
    PeriodicTask,
    SchedulerContext,
    data_dir,
    register_task,
)

INTERVAL_SECONDS = 60.0


def processing_settings(context: SchedulerContext) -> processing.ProcessingSettings:
    """The processing's settings for this service."""
    return processing.ProcessingSettings(
        evidence_dir=data_dir(context.settings) / "evidence",
        evidence_key=derive_key(context.secret_key, EVIDENCE_KEY_PURPOSE),
        allow_private=context.settings.allow_private_fetch,
    )


def _hotline_task(context: SchedulerContext) -> PeriodicTask:
    settings = processing_settings(context)
    processing.configure(settings)

    def run(_: threading.Event) -> None:
        processing.process_due(context.store, settings)
        purge_expired(context.store)

    return PeriodicTask("hotline", INTERVAL_SECONDS, run, singleton=True)


register_task("hotline", _hotline_task)
