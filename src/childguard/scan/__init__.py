"""Bulk review of a folder, disk image mount or archive: hash everything, match it, report it.

Names load on first use, so that a hashing worker unpickling a listed URL
(`childguard.scan.listing.UrlSource`) loads neither the matcher nor the store."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from childguard.scan.job import ScanOptions, run_scan
    from childguard.scan.summary import ScanSummary

_WHERE = {
    "ScanOptions": "childguard.scan.job",
    "run_scan": "childguard.scan.job",
    "ScanSummary": "childguard.scan.summary",
}

__all__ = ["ScanOptions", "ScanSummary", "run_scan"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
