# Owns the `crawl` and `sightings` command groups.
"""`childguard crawl run|watch ...` and `childguard sightings list|show|export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from childguard.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app
from childguard.cli.common import DbOption, ProgressOption, err, out, styled, want_progress
from childguard.cli.common import fail as _fail
from childguard.cli.common import store_or_exit as _store
from childguard.cli.output import (
    Column,
    FormatOption,
    JsonShortOption,
    OutputOption,
    check_output,
    choose_format,
    elide_middle,
    emit,
    emit_one,
)
from childguard.errors import ChildguardError

if TYPE_CHECKING:
    from childguard.store import Store

crawl_app = typer.Typer(help="Crawl watched sites for re-posted photos.")
watch_app = typer.Typer(help="Watches: what the crawler looks at, and how often.")
sightings_app = typer.Typer(help="Sightings: where the crawler found matching images.")
crawl_app.add_typer(watch_app, name="watch")
app.add_typer(crawl_app, name="crawl")
app.add_typer(sightings_app, name="sightings")

SIGHTING_COLUMNS = (
    "id",
    "status",
    "site",
    "page_url",
    "image_url",
    "bank",
    "organisation",
    "photo_file_name",
    "photo_title",
    "signal_type",
    "distance",
    "first_seen",
    "last_seen",
    "times_seen",
    "removed_at",
    "page_title",
    "entry_id",
    "watch_name",
)


@watch_app.command("add")
def watch_add(
    name: str = typer.Argument(..., help="Name of the watch."),
    seed: list[str] = typer.Option(..., "--seed", help="Seed URL (repeat for more)."),
    domain: list[str] = typer.Option(
        [], "--domain", help="Allowed domain (default: the seeds' hosts)."
    ),
    max_depth: int = typer.Option(3, "--max-depth", help="Links to follow from a seed."),
    max_pages: int = typer.Option(500, "--max-pages", help="Pages to fetch at most per crawl."),
    max_images: int = typer.Option(
        20_000, "--max-images", help="Images to fetch at most per crawl."
    ),
    recheck: str = typer.Option("6h", "--recheck", help="Re-check interval, e.g. 30m, 6h, 1d."),
    ignore_robots: str | None = typer.Option(
        None, "--ignore-robots", help="Do not obey robots.txt; give the reason (it is recorded)."
    ),
    proxy: str | None = typer.Option(None, "--proxy", help="HTTP(S) proxy URL for this watch."),
    profile: Path | None = typer.Option(
        None, "--profiles", help='JSON file: {"domain": {"views": "css", "comments": "css", ...}}'
    ),
    organisation: str | None = typer.Option(
        None, "--org", help="The organisation whose photos this watch looks for."
    ),
    delay: float = typer.Option(0.25, "--delay", help="Seconds between requests to one domain."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a watch of the same name."),
    db: str | None = DbOption,
) -> None:
    """Add (or replace) a watch."""
    from childguard.crawl.watch import Watch
    from childguard.crawl.watchstore import save_watch

    try:
        profiles = json.loads(profile.read_text()) if profile else {}
        watch = Watch.from_dict(
            {
                "name": name,
                "seeds": seed,
                "allowed_domains": domain,
                "max_depth": max_depth,
                "max_pages": max_pages,
                "max_images": max_images,
                "recheck_every": recheck,
                "obey_robots": ignore_robots is None,
                "robots_override_reason": ignore_robots,
                "proxy": proxy,
                "profiles": profiles,
                "organisation": organisation,
                "download_delay": delay,
            }
        )
    except (OSError, ValueError, ChildguardError) as exc:
        raise _fail(str(exc)) from None
    with _store(db) as store:
        save_watch(store, watch, replace=replace)
    out.print(
        f"watch {name!r} saved ({len(watch.seeds)} seed(s), domains {', '.join(watch.domains)})",
        soft_wrap=True,
    )


WATCH_COLUMNS = (
    Column("name"),
    Column("seeds", show=lambda seeds: "\n".join(seeds or []), max_width=40),
    Column("domains", show=lambda d: ", ".join(d or [])),
    Column("max_depth", "depth", justify="right"),
    Column("max_pages", "pages", justify="right"),
    Column("recheck_every", "recheck", show=lambda s: f"{int(s) // 60} min"),
    Column("obey_robots", "robots", show=lambda obey: "obey" if obey else "IGNORED"),
    Column("last_run_at", "last run", show=lambda at: (at or "never")[:19]),
)


@watch_app.command("list")
def watch_list(
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """List watches and when each last ran (table, json, jsonl or csv)."""
    from childguard.crawl.watchstore import list_watches

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    with _store(db) as store:
        watches = list_watches(store)
    rows = [
        {
            **w.to_dict(),
            "domains": list(w.domains),
            "last_run_at": last.isoformat() if last else None,
        }
        for w, last in watches
    ]
    if chosen == "table":
        for row in rows:
            row["seeds"] = [elide_middle(seed, 40) for seed in row.get("seeds") or []]
    emit(rows, chosen, columns=WATCH_COLUMNS, output=output, title="Watches")


@watch_app.command("show")
def watch_show(
    name: str = typer.Argument(..., help="Name of the watch."), db: str | None = DbOption
) -> None:
    """Print a watch as JSON."""
    from childguard.crawl.watchstore import get_watch

    with _store(db) as store:
        typer.echo(json.dumps(get_watch(store, name).to_dict(), indent=2))


@watch_app.command("remove")
def watch_remove(
    name: str = typer.Argument(..., help="Name of the watch."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    db: str | None = DbOption,
) -> None:
    """Remove a watch (its sightings stay)."""
    from childguard.crawl.watchstore import get_watch, remove_watch

    with _store(db) as store:
        get_watch(store, name)
        if not yes and not typer.confirm(f"remove watch {name!r}? (its sightings stay)"):
            err.print("nothing removed")
            raise typer.Exit(EXIT_USAGE)
        remove_watch(store, name)
    out.print(f"watch {name!r} removed")


@crawl_app.command("run")
def crawl_run(
    names: list[str] = typer.Argument(
        None, help="Watches to crawl (default: with --due, those due)."
    ),
    due: bool = typer.Option(False, "--due", help="Crawl every watch due for its re-check."),
    allow_private: bool = typer.Option(
        False, "--allow-private", help="Allow private/loopback addresses (tests and the demo only)."
    ),
    robust: bool = typer.Option(
        True,
        "--robust/--plain",
        help="Also hash robust views (borders, regions, mirrors) of every image (~10 ms each).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run stats as JSON."),
    worker: str | None = typer.Option(
        None, "--worker", help="This worker's name in the watches' leases (default: host:pid)."
    ),
    lease: str = typer.Option(
        "2m",
        "--lease",
        help="How long a claimed watch stays this worker's without a renewal (e.g. 30s, 2m).",
    ),
    progress: bool | None = ProgressOption,
    db: str | None = DbOption,
) -> None:
    """Crawl watches now; every crawl runs in its own process. Each watch is claimed first, so
    workers on several processes or machines sharing the database split the due watches: a
    watch another worker holds is skipped, and one whose worker died is taken over once its
    lease expires. Exit 1 if a crawl failed: it could not run, or it fetched no page (every
    request refused by the SSRF policy, or failed)."""
    from datetime import timedelta

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from childguard.crawl.leases import worker_name
    from childguard.crawl.runner import CrawlOutcome, crawl_watches
    from childguard.crawl.watch import parse_duration
    from childguard.crawl.watchstore import due_watches, get_watch

    try:
        lease_s = parse_duration(lease)
    except ChildguardError as exc:
        raise _fail(f"--lease: {exc}") from None
    if lease_s < 1:
        raise _fail("--lease must be at least 1s")

    with _store(db) as store:
        watches = (
            due_watches(store, unfinished=True)
            if due
            else [get_watch(store, n) for n in names or []]
        )
        url = store.url
    if not watches:
        if not due:
            raise _fail("name at least one watch, or use --due")
        out.print("no watch is due")
        return
    results: list[dict[str, Any]] = []
    bar = Progress(
        SpinnerColumn(),
        TextColumn("crawling", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("watches", markup=False),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not want_progress(progress),
    )
    task = bar.add_task("crawl", total=len(watches))

    def report(outcome: CrawlOutcome) -> None:
        bar.advance(task)
        stats = outcome.stats
        if outcome.skipped is not None:
            out.print(f"{outcome.watch}: skipped, {outcome.skipped}", soft_wrap=True)
            return
        if stats is None:
            err.print(
                styled((f"crawl {outcome.watch} failed:", "red"), f" {outcome.error}"),
                soft_wrap=True,
            )
            return
        data = stats.to_dict()
        data.pop("scrapy")
        results.append(data)
        if not as_json:
            out.print(
                f"{outcome.watch}: {stats.pages} pages, {stats.images} images "
                f"({stats.images_hashed} hashed, {stats.images_cached + stats.images_not_modified} "
                f"from cache), {stats.new_sightings} new sightings, "
                f"{stats.sightings_removed} removed, "
                f"{stats.ssrf_refused} refused by the SSRF policy, {stats.elapsed_s:.1f}s",
                soft_wrap=True,
            )
        if outcome.problem:
            err.print(
                styled((f"crawl {outcome.watch} failed:", "red"), f" {outcome.problem}"),
                soft_wrap=True,
            )

    with bar:
        outcomes = crawl_watches(
            url,
            watches,
            allow_private=allow_private,
            robust=robust,
            on_outcome=report,
            holder=worker or worker_name(),
            lease=timedelta(seconds=lease_s),
            force=not due,
        )
    failed = sum(1 for o in outcomes if o.problem)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)


def _rows(
    db: str | None,
    organisation: str | None,
    site: str | None,
    status: str | None,
    watch: str | None,
    limit: int | None,
) -> list[dict[str, Any]]:
    from childguard.crawl.sightings import list_sightings

    if status is not None and status not in ("online", "removed", "changed"):
        raise _fail(f"--status must be online, removed or changed, not {status!r}")
    with _store(db) as store:
        views = list_sightings(
            store, organisation=organisation, site=site, status=status, watch=watch, limit=limit
        )
        rows = [v.to_dict() for v in views]
        _name_photos(store, rows)
    return rows


def _name_photos(store: Store, rows: list[dict[str, Any]]) -> None:
    """Add `photo_file_name` and `photo_title`: the protected photo a sighting matched (None
    when it matched no protected photo, or the photo was removed since)."""
    from childguard.protect.register import photos_for_entry

    names: dict[int, tuple[str | None, str | None]] = {}
    with store.session() as s:
        for row in rows:
            entry = row.get("entry_id")
            if entry is not None and row.get("bank_kind") == "protected" and entry not in names:
                photos = photos_for_entry(s, entry)
                names[entry] = (photos[0].file_name, photos[0].title) if photos else (None, None)
            found = names.get(entry) if entry is not None else None
            row["photo_file_name"], row["photo_title"] = found or (None, None)


def _photo_label(row: dict[str, Any]) -> str:
    name = row.get("photo_file_name")
    if not name:
        return ""
    return f"{name} ({row['photo_title']})" if row.get("photo_title") else str(name)


URL_WIDTH = 32
TABLE_COLUMNS = (
    Column("id", justify="right"),
    Column("status"),
    Column("where", "page / image", max_width=URL_WIDTH, min_width=URL_WIDTH),
    Column("what", "photo / org"),
    Column("seen", "first seen"),
)


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """A sighting as the table shows it, in 80 columns: both URLs shortened in their middle,
    one above the other; the status above the distance; the photo (else the bank) above the
    organisation; the first day seen above its time and the number of times."""
    first = str(row.get("first_seen") or "")
    return {
        "id": row["id"],
        "status": f"{row['status']}\ndist {row.get('distance')}",
        "where": "\n".join(
            elide_middle(str(row.get(k) or ""), URL_WIDTH) for k in ("page_url", "image_url")
        ),
        "what": "\n".join(
            part
            for part in (_photo_label(row) or row.get("bank") or "", row.get("organisation"))
            if part
        ),
        "seen": f"{first[:10]}\n{first[11:16]} {row.get('times_seen')}x",
    }


def _emit_sightings(rows: list[dict[str, Any]], fmt: str, output: Path | None) -> None:
    if fmt == "table":
        emit([_table_row(r) for r in rows], fmt, columns=TABLE_COLUMNS, output=output)
        return
    emit(rows, fmt, columns=TABLE_COLUMNS, output=output, fields=SIGHTING_COLUMNS)


OrgOption = typer.Option(None, "--org", help="Only this organisation's sightings.")
SiteOption = typer.Option(None, "--site", help="Only this site (host or parent domain).")
StatusOption = typer.Option(None, "--status", help="online, removed or changed.")
WatchOption = typer.Option(None, "--watch", help="Only this watch's sightings.")


@sightings_app.command("list")
def sightings_list(
    organisation: str | None = OrgOption,
    site: str | None = SiteOption,
    status: str | None = StatusOption,
    watch: str | None = WatchOption,
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many."),
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """List sightings, newest first (table, json, jsonl or csv)."""
    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    rows = _rows(db, organisation, site, status, watch, limit)
    _emit_sightings(rows, chosen, output)


@sightings_app.command("show")
def sightings_show(
    sighting_id: int = typer.Argument(..., help="The sighting's id (see `sightings list`)."),
    fmt: str | None = typer.Option(
        None, "--format", help="json (default), jsonl or csv; a -o file's suffix implies one."
    ),
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """One sighting, with its page's view/comment counter series."""
    from childguard.crawl.sightings import get_sighting

    chosen = choose_format(fmt, as_json, output, allowed=("json", "jsonl", "csv"), default="json")
    check_output(output)
    with _store(db) as store:
        view = get_sighting(store, sighting_id)
        if view is None:
            raise _fail(f"no sighting with id {sighting_id}")
        data = view.to_dict()
        _name_photos(store, [data])
    emit_one(data, chosen, output=output, table=lambda _dest: None)


@sightings_app.command("export")
def sightings_export(
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="csv (default), json, jsonl or table; a -o file's suffix implies one.",
    ),
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    organisation: str | None = OrgOption,
    site: str | None = SiteOption,
    status: str | None = StatusOption,
    watch: str | None = WatchOption,
    db: str | None = DbOption,
) -> None:
    """Export sightings: URLs, times and the match (never images). In CSV a cell a spreadsheet
    would run as a formula (a page title starting with `=`) is written with a leading `'`."""
    chosen = choose_format(fmt, as_json, output, default="csv")
    check_output(output)
    rows = _rows(db, organisation, site, status, watch, None)
    _emit_sightings(rows, chosen, output)
