# Owns `childguard bundle verify`: checking a referral bundle's hashes from the command line.
"""`childguard bundle verify BUNDLE.zip [--manifest-sha256 HEX] [--json]`: read a referral
bundle back and check every file's SHA-256 and size against its manifest, that nothing
unlisted is in it, its VICS document's shape, and, when given, the manifest's SHA-256 the
sender recorded (the referral's `manifest_sha256`, also in the email, webhook or api
request). Needs no store: a recipient can run it. Exit 0 when everything matches, 1 when
something does not (each problem on stderr), 2 for a file that cannot be read.

Thin over `childguard.hotline.bundles.verify_bundle`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from childguard.cli import EXIT_PARTIAL, app
from childguard.cli.common import fail

bundle_app = typer.Typer(help="Check referral bundles.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("verify")
def verify(
    path: Path = typer.Argument(..., help="The bundle zip."),
    manifest_sha256: str | None = typer.Option(
        None, "--manifest-sha256", help="The manifest's SHA-256 the sender recorded."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check every hash of a referral bundle."""
    from childguard.hotline.bundles import verify_bundle

    if not path.is_file():
        raise fail(f"no such file: {path}")
    expected = manifest_sha256.strip().lower() if manifest_sha256 else None
    check = verify_bundle(path, manifest_sha256=expected)
    if as_json:
        typer.echo(json.dumps(check.to_dict(), indent=1))
    else:
        for entry in check.files:
            mark = "ok" if entry["ok"] else "MISMATCH"
            typer.echo(f"{mark:8} {entry['sha256']}  {entry['bytes']:>10}  {entry['name']}")
        typer.echo(f"manifest {check.manifest_sha256 or '-'}")
    for problem in check.problems:
        typer.echo(f"problem: {problem}", err=True)
    if not check.ok:
        raise typer.Exit(EXIT_PARTIAL)
