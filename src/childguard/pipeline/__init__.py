"""The content pipeline: source adapters, the signals stage, the pool, and the one road from
content to actions (`Pipeline`)."""

from childguard.pipeline.flow import Action, Pipeline
from childguard.pipeline.hashing import (
    HashOptions,
    compact_features,
    hash_bytes,
    hash_file,
    hash_source,
    pdq_dihedral,
    signals_of,
)
from childguard.pipeline.pool import default_workers, hash_many
from childguard.pipeline.sources import (
    ARCHIVE_SEPARATOR,
    MEDIA_SUFFIXES,
    SkipCallback,
    Source,
    iter_files,
)

__all__ = [
    "ARCHIVE_SEPARATOR",
    "MEDIA_SUFFIXES",
    "Action",
    "HashOptions",
    "Pipeline",
    "SkipCallback",
    "Source",
    "compact_features",
    "default_workers",
    "hash_bytes",
    "hash_file",
    "hash_many",
    "hash_source",
    "iter_files",
    "pdq_dihedral",
    "signals_of",
]
