"""Bulk review of a folder, disk image mount or archive: hash everything, match it, report it."""

from childguard.scan.job import ScanOptions, ScanSummary, run_scan

__all__ = ["ScanOptions", "ScanSummary", "run_scan"]
