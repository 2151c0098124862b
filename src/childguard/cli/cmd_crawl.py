# Owns the `crawl` and `sightings` command groups.
"""`childguard crawl run|watch ...` and `childguard sightings list|show|export`."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from childguard.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app
from childguard.cli.common import DbOption, err
from childguard.cli.common import fail as _fail
from childguard.cli.common import store_or_exit as _store
from childguard.errors import ChildguardError
from childguard.store import Store

crawl_app = typer.Typer(help="Crawl watched sites for re-posted photos.")
watch_app = typer.Typer(help="Watches: what the crawler looks at, and how often.")
sightings_app = typer.Typer(help="Sightings: where the crawler found matching images.")
crawl_app.add_typer(watch_app, name="watch")
app.add_typer(crawl_app, name="crawl")
app.add_typer(sightings_app, name="sightings")

out = Console()
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
    max_depth: int = typer.Option(3, "--max-depth"),
    max_pages: int = typer.Option(500, "--max-pages"),
    max_images: int = typer.Option(20_000, "--max-images"),
    recheck: str = typer.Option("6h", "--recheck", help="Re-check interval, e.g. 30m, 6h, 1d."),
    ignore_robots: str | None = typer.Option(
        None, "--ignore-robots", help="Do not obey robots.txt; give the reason (it is recorded)."
    ),
    proxy: str | None = typer.Option(None, "--proxy", help="HTTP(S) proxy URL for this watch."),
    profile: Path | None = typer.Option(
        None, "--profiles", help='JSON file: {"domain": {"views": "css", "comments": "css", ...}}'
    ),
    organisation: str | None = typer.Option(None, "--org"),
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
        f"watch {name!r} saved ({len(watch.seeds)} seed(s), domains {', '.join(watch.domains)})"
    )


@watch_app.command("list")
def watch_list(db: str | None = DbOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """List watches and when each last ran."""
    from childguard.crawl.watchstore import list_watches

    with _store(db) as store:
        rows = list_watches(store)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {**w.to_dict(), "last_run_at": last.isoformat() if last else None}
                    for w, last in rows
                ],
                indent=2,
            )
        )
        return
    table = Table("name", "seeds", "domains", "depth", "pages", "recheck", "robots", "last run")
    for w, last in rows:
        table.add_row(
            w.name,
            "\n".join(w.seeds),
            ", ".join(w.domains),
            str(w.max_depth),
            str(w.max_pages),
            f"{w.recheck_every // 60} min",
            "obey" if w.obey_robots else "IGNORED",
            last.isoformat(timespec="seconds") if last else "never",
        )
    out.print(table)


@watch_app.command("show")
def watch_show(name: str, db: str | None = DbOption) -> None:
    """Print a watch as JSON."""
    from childguard.crawl.watchstore import get_watch

    with _store(db) as store:
        typer.echo(json.dumps(get_watch(store, name).to_dict(), indent=2))


@watch_app.command("remove")
def watch_remove(
    name: str,
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
    out.print(f"watch {name!r} removed", highlight=False)


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
    db: str | None = DbOption,
) -> None:
    """Crawl watches now; every crawl runs in its own process. Exit 1 if a crawl failed: it
    could not run, or it fetched no page (every request refused by the SSRF policy, or
    failed)."""
    from childguard.crawl.runner import CrawlOutcome, crawl_watches
    from childguard.crawl.watchstore import due_watches, get_watch

    with _store(db) as store:
        watches = due_watches(store) if due else [get_watch(store, n) for n in names or []]
        url = store.url
    if not watches:
        if not due:
            raise _fail("name at least one watch, or use --due")
        out.print("no watch is due")
        return
    results: list[dict[str, Any]] = []

    def report(outcome: CrawlOutcome) -> None:
        stats = outcome.stats
        if stats is None:
            err.print(f"[red]crawl {outcome.watch} failed:[/red] {outcome.error}", highlight=False)
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
                highlight=False,
            )
        if outcome.problem:
            err.print(
                f"[red]crawl {outcome.watch} failed:[/red] {outcome.problem}",
                highlight=False,
                soft_wrap=True,
            )

    outcomes = crawl_watches(
        url, watches, allow_private=allow_private, robust=robust, on_outcome=report
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


def _emit(rows: list[dict[str, Any]], fmt: str, dest: Any) -> None:
    if fmt == "json":
        dest.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(dest, fieldnames=SIGHTING_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        raise _fail(f"unknown format {fmt!r} (table, json or csv)")


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
    limit: int | None = typer.Option(None, "--limit"),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    db: str | None = DbOption,
) -> None:
    """List sightings, newest first."""
    rows = _rows(db, organisation, site, status, watch, limit)
    if fmt != "table":
        _emit(rows, fmt, sys.stdout)
        return
    table = Table(
        "id", "status", "site", "page", "image", "photo", "org", "dist", "first seen", "seen"
    )
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["status"],
            r["site"],
            r["page_url"],
            r["image_url"],
            _photo_label(r) or r["bank"] or "",
            r["organisation"] or "",
            str(r["distance"]),
            r["first_seen"][:19],
            str(r["times_seen"]),
        )
    out.print(table)


@sightings_app.command("show")
def sightings_show(sighting_id: int, db: str | None = DbOption) -> None:
    """One sighting as JSON, with its page's view/comment counter series."""
    from childguard.crawl.sightings import get_sighting

    with _store(db) as store:
        view = get_sighting(store, sighting_id)
        if view is None:
            raise _fail(f"no sighting with id {sighting_id}")
        data = view.to_dict()
        _name_photos(store, [data])
    typer.echo(json.dumps(data, indent=2))


@sightings_app.command("export")
def sightings_export(
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="File to write (default stdout)."
    ),
    organisation: str | None = OrgOption,
    site: str | None = SiteOption,
    status: str | None = StatusOption,
    watch: str | None = WatchOption,
    db: str | None = DbOption,
) -> None:
    """Export sightings as CSV or JSON: URLs, times and the match (never images)."""
    rows = _rows(db, organisation, site, status, watch, None)
    if output is None:
        _emit(rows, fmt, sys.stdout)
        return
    buf = io.StringIO()
    _emit(rows, fmt, buf)
    output.write_text(buf.getvalue())
    err.print(f"{len(rows)} sightings written to {output}")
