"""Bulk review of a folder, disk image mount or archive: hash everything, match it, report it."""

from childguard.scan.job import ScanOptions, run_scan
from childguard.scan.summary import ScanSummary

__all__ = ["ScanOptions", "ScanSummary", "run_scan"]
