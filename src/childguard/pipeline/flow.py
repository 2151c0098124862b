"""The one road every piece of content takes: source -> media (safe decode) -> signals ->
matcher -> matches -> actions.

Sources are adapters: files, folders and zip members (`childguard.pipeline.sources`) are
hashed on a process pool by `Pipeline.run`; bytes from a crawl, an upload or a hotline fetch
enter as `Content` through `Pipeline.process`. Actions are plain callables given each
record and its outcome (write a report line, record a sighting, answer an API call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from childguard.media import DEFAULT_LIMITS, Content, Limits
from childguard.pipeline.hashing import HashOptions, signals_of
from childguard.pipeline.pool import hash_many
from childguard.pipeline.sources import Source
from childguard.signals.content import ContentSignals

if TYPE_CHECKING:  # the matcher (and the store under it) load only when something is matched
    from childguard.matcher.engine import Matcher
    from childguard.matcher.results import MatchOutcome

Action = Callable[[ContentSignals, "MatchOutcome"], None]


@dataclass
class Pipeline:
    """Hash content and match it against a store's banks (or only hash, with no matcher).

    `robust` adds the robust query views, and ORB features where the matcher's protected
    banks can use them; `dihedral` adds the 8 rotation/flip PDQ variants to plain hashing."""

    matcher: Matcher | None = None
    robust: bool = True
    dihedral: bool = False
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    workers: int | None = None
    progress: bool = False
    batch_size: int = 128

    @property
    def options(self) -> HashOptions:
        features = self.robust and self.matcher is not None and self.matcher.needs_features
        return HashOptions(
            dihedral=self.dihedral, robust=self.robust, features=features, limits=self.limits
        )

    def signals(self, sources: Iterable[Source]) -> Iterator[ContentSignals]:
        """The signals of every source, hashed on the pool, in input order."""
        return hash_many(
            sources, workers=self.workers, progress=self.progress, options=self.options
        )

    def run(
        self, sources: Iterable[Source], actions: Sequence[Action] = ()
    ) -> Iterator[tuple[ContentSignals, MatchOutcome]]:
        """Every source's (record, outcome), in input order, after each action has seen it."""
        from childguard.matcher.results import MatchOutcome

        records = self.signals(sources)
        if self.matcher is None:
            stream: Iterable[tuple[ContentSignals, MatchOutcome]] = (
                (r, MatchOutcome()) for r in records
            )
        else:
            stream = self.matcher.match_stream(records, batch_size=self.batch_size)
        for record, outcome in stream:
            for action in actions:
                action(record, outcome)
            yield record, outcome

    def process(
        self, content: Content, actions: Sequence[Action] = ()
    ) -> tuple[ContentSignals, MatchOutcome]:
        """One piece of content, hashed here in this process, matched, and acted on."""
        from childguard.matcher.results import MatchOutcome

        options = replace(self.options, limits=content.limits)
        record = signals_of(content, options)
        outcome = self.matcher.match(record) if self.matcher is not None else MatchOutcome()
        for action in actions:
            action(record, outcome)
        return record, outcome
