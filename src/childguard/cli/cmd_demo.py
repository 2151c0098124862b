"""`childguard demo`: the main job on embedded defaults (for now: hash the bundled photos)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from childguard.cli import EXIT_OK, EXIT_PARTIAL, app
from childguard.demo import ASSETS
from childguard.hashing import HashRecord, hash_many, iter_files

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".avif"}
)


def hash_table(records: list[HashRecord], root: Path) -> Table:
    """A Rich table of hash records, paths shown relative to `root`."""
    table = Table(title=f"childguard hashes of {root}")
    for column in ("file", "size", "pdq", "quality", "pixels", "format", "sha256 / error"):
        table.add_column(column, overflow="fold")
    for r in records:
        name = str(Path(r.path).relative_to(root)) if Path(r.path).is_relative_to(root) else r.path
        table.add_row(
            name,
            "" if r.size is None else f"{r.size:,}",
            f"{r.pdq[:16]}…" if r.pdq else "",
            "" if r.pdq_quality is None else str(r.pdq_quality),
            f"{r.width}x{r.height}" if r.width else "",
            r.format or "",
            r.error if r.error else f"{(r.sha256 or '')[:12]}…",
        )
    return table


@app.command("demo")
def demo_command(
    folder: Path = typer.Argument(ASSETS, help="Folder of photos (default: the bundled samples)."),
) -> None:
    """Hash a folder of sample photos and print the hashes as a table."""
    sources = [s for s in iter_files([folder]) if Path(s.path).suffix.lower() in IMAGE_SUFFIXES]
    records = list(hash_many(sources, workers=1))
    Console().print(hash_table(records, folder))
    raise typer.Exit(EXIT_PARTIAL if any(r.error for r in records) else EXIT_OK)
