# Owns the process's structured logging set-up and the loggers that modules take from it.
"""Structured logging: JSON lines on stderr when not on a terminal, readable key=value otherwise.

structlog (with what it pulls in: Rich's tracebacks, asyncio, Twisted's logger where Twisted
is installed) costs about 0.15 s to import, more than a small `childguard hash` spends on its
work. So it is imported on the first log line that passes the level, not at start-up:
`configure` records the choice, and `get_logger` hands out a logger that drops calls below
the configured level without importing anything, and otherwise sets structlog up (once, with
the recorded choice) and passes the call on. Once structlog is loaded, `configure` applies at
once, as before.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import structlog
    from structlog.typing import FilteringBoundLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}

# The level below which calls are dropped before structlog is loaded (None: not configured,
# structlog's own defaults apply), and a configuration waiting for structlog's first use.
_min_level: int | None = None
_pending: tuple[str, bool] | None = None


def configure(level: str = "INFO", json: bool | None = None) -> None:
    """Set up structlog once for the process. `json=None` picks JSON when stderr is not a TTY."""
    global _min_level, _pending
    use_json = (not sys.stderr.isatty()) if json is None else json
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    number = logging.getLevelName(level)
    _min_level = number if isinstance(number, int) else None
    if "structlog" in sys.modules:
        _pending = None
        _apply(level, use_json)
    else:
        _pending = (level, use_json)


def _apply(level: str, use_json: bool) -> None:
    import structlog

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # Look sys.stderr up at each log call: tests (and embedding apps) swap it.
        logger_factory=_current_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _structlog() -> Any:
    """structlog, imported and set up with the configuration `configure` recorded."""
    global _pending
    import structlog

    if _pending is not None:
        level, use_json = _pending
        _pending = None
        _apply(level, use_json)
    return structlog


def _current_stderr_logger(*_args: object) -> structlog.PrintLogger:
    import structlog

    return structlog.PrintLogger(sys.stderr)


class _LazyLogger:
    """A logger that loads structlog on its first call at or above the configured level."""

    __slots__ = ("_name", "_real")

    def __init__(self, name: str) -> None:
        self._name = name
        self._real: Any = None

    def _logger(self) -> Any:
        if self._real is None:
            self._real = _structlog().get_logger(self._name)
        return self._real

    def __getattr__(self, attr: str) -> Any:
        wanted = _LEVELS.get(attr)
        if wanted is not None and _min_level is not None and wanted < _min_level:
            return _drop
        return getattr(self._logger(), attr)


def _drop(*_args: Any, **_kwargs: Any) -> None:
    return None


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger for `name` (a structlog bound logger, loaded on its first use)."""
    return cast("FilteringBoundLogger", _LazyLogger(name))
