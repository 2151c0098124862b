# Owns the organisations' scheduled tasks: due crawl watches, album monitors and digests.
"""The organisations' scheduled tasks."""

from __future__ import annotations
