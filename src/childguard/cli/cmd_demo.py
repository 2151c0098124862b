# Owns the `demo` command.
"""`childguard demo`: the core story on embedded defaults (see `childguard.demo.story`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from childguard.cli import EXIT_OK, EXIT_PARTIAL, app
from childguard.cli.common import fail
from childguard.errors import ChildguardError

# The story's own console: its steps are written with Rich markup.
out = Console()


@app.command("demo")
def demo_command(
    workdir: Path | None = typer.Option(
        None,
        "--workdir",
        help="Empty folder for the demo's store, sites and report (default: a new temp folder).",
    ),
    keep: bool = typer.Option(
        False,
        "--keep",
        help="Keep the whole work folder (store, sites); by default only the HTML report is kept.",
    ),
    photos: Path | None = typer.Option(
        None,
        "--photos",
        help="Folder of benign photos for the album (default: .cache/photos from `make photos`, "
        "else the bundled samples).",
    ),
) -> None:
    """Run the core story on this machine: an organisation registers its album, a crawler finds
    the transformed re-posts on a local image-sharing site, the organisation is alerted, two
    re-posts are taken down and show as removed, and a view spike on the album raises an alert.

    Everything is served on 127.0.0.1 and stored in a SQLite database in the work folder; your
    own childguard store is never touched. Exit 0 when the story ran, 1 when it ran but a step
    fell short (no re-post found, no spike alert), 2 on an error.
    """
    from childguard.demo.story import run_demo

    own_folder = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="childguard-demo-")) if workdir is None else workdir
    if folder.exists() and not folder.is_dir():
        raise fail(f"--workdir {folder} is not a folder")
    try:
        result = run_demo(folder, out=out, photos=photos)
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    finally:
        if own_folder and not keep:
            _keep_only_report(folder)
    out.print(
        f"\n[bold]Done in {result.elapsed_s:.0f}s.[/bold] Report: ",
        escape(str(result.report_path)),
        "" if keep or not own_folder else " (rerun with --keep to keep the demo's store)",
        sep="",
        highlight=False,
    )
    short = not result.found or not result.spike_alerts or not result.removed_sightings
    raise typer.Exit(EXIT_PARTIAL if short else EXIT_OK)


def _keep_only_report(folder: Path) -> None:
    """Delete the demo's store and sites; leave the report (if one was written)."""
    for child in folder.iterdir():
        if child.name == "report.html":
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
