# Owns the `protect` and `org` command groups.
"""`childguard protect register|list|show|remove|check|alerts` and
`childguard org add|edit|remove|list|show`: organisations, their protected photos, the
pre-publish check and alert delivery."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app
from childguard.cli.common import (
    DbOption,
    JsonOption,
    ProgressOption,
    WorkersOption,
    err,
    out,
    want_progress,
)
from childguard.cli.common import actor_name as _actor
from childguard.cli.common import fail as _fail
from childguard.cli.common import store_or_exit as _store
from childguard.cli.output import (
    Column,
    FormatOption,
    JsonShortOption,
    OutputOption,
    check_output,
    choose_format,
    emit,
    plain_table,
)
from childguard.errors import ChildguardError

protect_app = typer.Typer(help="Protect an organisation's published photos.")
org_app = typer.Typer(help="Organisations that protect their photos, and their contacts.")
app.add_typer(protect_app, name="protect")
app.add_typer(org_app, name="org")


def _parse_when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(
            f"--published-at must be an ISO date or time, e.g. 2024-06-01: {value!r}"
        ) from None
    if when.tzinfo is None:
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return when


@org_app.command("add")
def org_add(
    name: str = typer.Argument(..., help="Organisation name."),
    email: list[str] = typer.Option([], "--email", help="Contact email (repeatable)."),
    webhook: str | None = typer.Option(None, "--webhook", help="Webhook URL for alerts."),
    secret: str | None = typer.Option(
        None, "--webhook-secret", help="HMAC secret (default: a new random one)."
    ),
    digest: bool = typer.Option(False, "--daily-digest", help="One digest a day, not each alert."),
    db: str | None = DbOption,
) -> None:
    """Add an organisation; it gets its own bank of kind `protected`."""
    from childguard.protect.organisations import create_organisation

    with _store(db, create=True) as store, store.session() as s:
        org = create_organisation(
            s,
            name,
            emails=email,
            webhook_url=webhook,
            webhook_secret=secret,
            alert_mode="daily" if digest else "immediate",
            actor=_actor(),
        )
        out.print(f"organisation {org.name!r} added (bank {org.bank.name!r})")
        if org.webhook_secret and not secret:
            out.print(f"webhook secret: {org.webhook_secret}")


@org_app.command("edit")
def org_edit(
    name: str = typer.Argument(..., help="Organisation name."),
    email: list[str] = typer.Option(
        [], "--email", help="Contact email (repeatable); replaces the emails it had."
    ),
    no_email: bool = typer.Option(False, "--no-email", help="Remove every contact email."),
    webhook: str | None = typer.Option(None, "--webhook", help="New webhook URL for alerts."),
    no_webhook: bool = typer.Option(False, "--no-webhook", help="Remove the webhook."),
    secret: str | None = typer.Option(None, "--webhook-secret", help="New HMAC secret."),
    new_secret: bool = typer.Option(False, "--new-secret", help="A new random webhook secret."),
    digest: bool | None = typer.Option(
        None, "--daily-digest/--immediate", help="One digest a day, or each alert at once."
    ),
    db: str | None = DbOption,
) -> None:
    """Change an organisation's contacts or alert mode (audited). Its undelivered alerts are
    queued again for the new contacts."""
    from childguard.protect.organisations import get_organisation, update_organisation

    if email and no_email:
        raise _fail("give --email or --no-email, not both")
    with _store(db) as store, store.session() as s:
        org = get_organisation(s, name)
        changes = update_organisation(
            s,
            org,
            emails=[] if no_email else (email or None),
            webhook_url=webhook,
            remove_webhook=no_webhook,
            webhook_secret=secret,
            new_secret=new_secret,
            alert_mode=None if digest is None else ("daily" if digest else "immediate"),
            actor=_actor(),
        )
        requeued = changes.pop("requeued_alerts")
        if not changes:
            out.print(f"organisation {org.name!r} unchanged")
            return
        out.print(
            f"organisation {org.name!r} changed: {', '.join(changes)}"
            + (f"; {requeued} undelivered alert(s) queued again" if requeued else ""),
        )
        if "webhook_secret" in changes and not secret:
            out.print(f"webhook secret: {org.webhook_secret}")


@org_app.command("remove")
def org_remove(
    name: str = typer.Argument(..., help="Organisation name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    db: str | None = DbOption,
) -> None:
    """Remove an organisation with its photos, bank, alerts and keys (audited; sightings
    stay)."""
    from childguard.protect.organisations import (
        get_organisation,
        removal_summary,
        remove_organisation,
    )

    with _store(db) as store, store.session() as s:
        org = get_organisation(s, name)
        what = removal_summary(s, org).describe()
        if not yes and not typer.confirm(f"remove organisation {org.name!r} with {what}?"):
            err.print("nothing removed")
            raise typer.Exit(EXIT_USAGE)
        remove_organisation(s, org, actor=_actor())
    out.print(f"organisation {name!r} removed with {what}")


def _org_dict(org: Any, photos: int) -> dict[str, Any]:
    return {
        "name": org.name,
        "emails": org.emails,
        "webhook_url": org.webhook_url,
        "alert_mode": org.alert_mode,
        "bank": org.bank.name,
        "photos": photos,
        "created_at": org.created_at.isoformat(),
    }


ORG_COLUMNS = (
    Column("name"),
    Column("emails", show=lambda emails: ", ".join(emails or [])),
    Column("webhook_url", "webhook", show=lambda url: url or "-", max_width=40, url=True),
    Column("alert_mode", "alerts"),
    Column("photos", justify="right"),
)


@org_app.command("list")
def org_list(
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """List organisations (table, json, jsonl or csv)."""
    from childguard.protect.organisations import list_organisations
    from childguard.protect.register import list_photos

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    with _store(db) as store, store.session() as s:
        rows = [_org_dict(o, len(list_photos(s, o))) for o in list_organisations(s)]
    emit(rows, chosen, columns=ORG_COLUMNS, output=output, title="Organisations")


@org_app.command("show")
def org_show(
    name: str = typer.Argument(..., help="Organisation name."),
    db: str | None = DbOption,
    reveal_secret: bool = typer.Option(False, "--secret", help="Also print the webhook secret."),
) -> None:
    """Show one organisation (with --secret, its webhook secret too)."""
    from childguard.protect.organisations import get_organisation
    from childguard.protect.register import list_photos

    with _store(db) as store, store.session() as s:
        org = get_organisation(s, name)
        data = _org_dict(org, len(list_photos(s, org)))
        if reveal_secret:
            data["webhook_secret"] = org.webhook_secret
    out.print_json(json.dumps(data))


@protect_app.command("register")
def protect_register(
    directory: Path = typer.Argument(..., exists=True, help="Folder (or file) of photos."),
    org: str = typer.Option(..., "--org", help="Organisation name."),
    title: list[str] = typer.Option([], "--title", help="FILE=TITLE (repeatable)."),
    published_url: str | None = typer.Option(
        None, "--published-url", help="Where it is published."
    ),
    published_at: str | None = typer.Option(None, "--published-at", help="When (ISO date)."),
    workers: int | None = WorkersOption,
    progress: bool | None = ProgressOption,
    db: str | None = DbOption,
) -> None:
    """Hash the photos here and store their signatures (never the images) for ORG."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from childguard.pipeline.pool import default_workers
    from childguard.protect.organisations import get_organisation
    from childguard.protect.register import iter_image_files, register_photos

    titles: dict[str, str] = {}
    for item in title:
        if "=" not in item:
            raise _fail(f"--title wants FILE=TITLE, got {item!r}")
        k, v = item.split("=", 1)
        titles[k.strip()] = v.strip()
    when = _parse_when(published_at)
    files = list(iter_image_files(directory))
    bar = Progress(
        TextColumn("registering", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed", markup=False),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not want_progress(progress),
    )
    with _store(db) as store, store.session() as s, bar:
        organisation = get_organisation(s, org)
        task = bar.add_task("register", total=len(files), failed=0)
        failures = 0

        def signed(_path: Path, failed: bool) -> None:
            nonlocal failures
            failures += failed
            bar.update(task, advance=1, failed=failures)

        report = register_photos(
            s,
            files,
            organisation,
            titles=titles,
            published_url=published_url,
            published_at=when,
            actor=_actor(),
            workers=min(workers or default_workers(), max(1, len(files))),
            on_signed=signed,
        )
    out.print(
        f"registered {len(report.registered)}, already registered {len(report.already)}, "
        + (f"signed anew {len(report.resigned)}, " if report.resigned else "")
        + f"failed {len(report.failed)}"
    )
    for path_text, reason in report.failed:
        err.print(f"  skipped {path_text}: {reason}", soft_wrap=True)
    for photo, warning in report.warnings:
        err.print(f"  hard to find {photo.file_name}: {warning.reason}", soft_wrap=True)
    raise typer.Exit(EXIT_PARTIAL if report.failed else EXIT_OK)


def _photo_dict(p: Any) -> dict[str, Any]:
    from childguard.protect.register import photo_warning

    warning = photo_warning(p)
    return {
        "id": p.id,
        "organisation": p.organisation.name,
        "file_name": p.file_name,
        "title": p.title,
        "published_url": p.published_url,
        "published_at": p.published_at.isoformat() if p.published_at else None,
        "registered_at": p.registered_at.isoformat(),
        "size": f"{p.width}x{p.height}",
        "pdq": p.pdq,
        "pdq_quality": p.pdq_quality,
        "sha256": p.sha256,
        "warning": warning.as_json() if warning else None,
    }


PHOTO_COLUMNS = (
    Column("id", justify="right"),
    Column("organisation"),
    Column("file_name", "file"),
    Column("title"),
    Column("fingerprint", "pdq / sha256"),
    Column("registered_at", "registered", show=lambda at: str(at or "")[:19]),
    Column("warning", show=lambda w: w["code"] if w else ""),
)


@protect_app.command("list")
def protect_list(
    org: str | None = typer.Option(None, "--org", help="Only this organisation's photos."),
    warning: str | None = typer.Option(
        None,
        "--warning",
        help="Only the photos with this warning: outdated (signed by an earlier version: "
        "register it again from its original), plain, few-keypoints, or any.",
    ),
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """List protected photos (table, json, jsonl or csv)."""
    from childguard.protect.organisations import get_organisation
    from childguard.protect.register import list_photos

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    with _store(db) as store, store.session() as s:
        owner = get_organisation(s, org) if org else None
        photos = [_photo_dict(p) for p in list_photos(s, owner, warning=warning)]
    if chosen == "table":
        for p in photos:
            p["fingerprint"] = (p["pdq"] or p["sha256"])[:16] + "…"
    emit(photos, chosen, columns=PHOTO_COLUMNS, output=output, title="Protected photos")


@protect_app.command("show")
def protect_show(
    photo_id: int = typer.Argument(..., help="The photo's id (see `protect list`)."),
    db: str | None = DbOption,
) -> None:
    """Show one protected photo and the bank entries registered for it."""
    from childguard.protect.register import get_photo, photo_signals

    with _store(db) as store, store.session() as s:
        photo = get_photo(s, photo_id)
        data = _photo_dict(photo)
        data["signals"] = [
            {"role": role, "entry_id": e.id, "signal_type": e.signal_type, "value": e.value}
            for role, e in photo_signals(s, photo)
        ]
    out.print_json(json.dumps(data))


@protect_app.command("remove")
def protect_remove(
    photo_id: int = typer.Argument(..., help="The photo's id (see `protect list`)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    db: str | None = DbOption,
) -> None:
    """Remove a protected photo and its bank entries (audited)."""
    from childguard.protect.register import get_photo, remove_photo

    with _store(db) as store, store.session() as s:
        photo = get_photo(s, photo_id)
        label = f"{photo.file_name}" + (f" ({photo.title})" if photo.title else "")
        if not yes and not typer.confirm(
            f"remove protected photo {photo_id}, {label}, and its bank entries?"
        ):
            err.print("nothing removed")
            raise typer.Exit(EXIT_USAGE)
        n = remove_photo(s, photo, actor=_actor())
        out.print(f"removed photo {photo_id} and {n} bank entries")


@protect_app.command("check")
def protect_check(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The photo to check."),
    strip: Path | None = typer.Option(
        None, "-o", "--output", "--strip", help="Write a copy without metadata to this file."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check a photo before publishing: GPS, serial numbers, owner names, dates.

    Exit code 3 when identifying metadata was found (0 when clean, or when --strip wrote a clean
    copy)."""
    from childguard.protect.prepublish import check_before_publishing, write_stripped_copy

    try:
        report = check_before_publishing(path)
        stripped = write_stripped_copy(path, strip) if strip else None
    except (ChildguardError, FileExistsError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        out.print_json(json.dumps([f.__dict__ for f in report.findings]))
    elif report.clean:
        out.print(f"{path}: no identifying metadata found")
    else:
        table = plain_table("severity", "field", "value", "why", title=str(path))
        for f in report.findings:
            table.add_row(f.severity, f.field, f.value, f.why)
        out.print(table)
    if stripped is not None:
        out.print(f"wrote {strip} ({'clean' if stripped.clean else 'NOT clean'})")
        raise typer.Exit(EXIT_OK if stripped.clean else EXIT_FOUND)
    raise typer.Exit(EXIT_OK if report.clean else EXIT_FOUND)


@protect_app.command("alerts")
def protect_alerts(
    db: str | None = DbOption,
    send: bool = typer.Option(True, "--send/--queue-only", help="Also deliver pending alerts."),
    force_digest: bool = typer.Option(False, "--force-digest", help="Send daily digests now."),
) -> None:
    """Queue alerts for new sightings of protected photos and deliver them (SMTP settings come
    from CHILDGUARD_SMTP_* variables). A failed delivery is tried again in a later run on a
    schedule (5 min, 15 min, 1 h, ... up to 8 tries), then given up. Exit 1 when a delivery
    failed or an alert waits on a retry, with each alert's last error on stderr."""
    import os

    from childguard.alerts.dispatch import AlertTransport, queue_and_deliver
    from childguard.alerts.email import SmtpSettings

    smtp = SmtpSettings.from_env() if os.environ.get("CHILDGUARD_SMTP_HOST") else None
    transport = AlertTransport(smtp=smtp) if send else None
    with _store(db) as store, store.session() as s:
        done = queue_and_deliver(s, transport, force_digest=force_digest)
    out.print(f"queued {len(done.queued)} new alert(s)")
    report = done.delivery
    if report is None:
        return
    out.print(
        f"sent {len(report.sent)}, failed {len(report.retrying)} (to be tried again), "
        f"gave up {len(report.failed)}, held back {report.held}",
    )
    for alert_id, error in report.failed:
        err.print(f"  alert {alert_id} gave up: {error}", soft_wrap=True)
    for alert_id, error, at in report.retrying:
        err.print(
            f"  alert {alert_id} failed: {error} (next try {_when(at)})",
            soft_wrap=True,
        )
    for alert_id, error, at in report.retry_later:
        err.print(
            f"  alert {alert_id} waits to be tried again {_when(at)}; last error: {error}",
            soft_wrap=True,
        )
    for name, count in report.no_contact:
        err.print(
            f"  {count} alert(s) of {name} held: it has no email or webhook "
            f"(add one with `childguard org edit {name!r} --email ...` or `--webhook ...`)",
            soft_wrap=True,
        )
    raise typer.Exit(EXIT_OK if report.ok else EXIT_PARTIAL)


def _when(at: datetime) -> str:
    from datetime import UTC

    return f"at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
