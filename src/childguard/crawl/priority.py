# Owns the crawl's page priorities: which kind of page a link leads to, and in what order pages
# are fetched and their limit spent.
"""Which kind of page a link leads to, and the order the crawl spends its page limit in.

A crawl has a page limit; on a large site the order decides what it covers. `classify(url)`
names the kind of a page link from its URL alone:

- `image`: a page that shows photos: a path segment such as `photo`, `image`, `gallery`,
  `album`, `media`; or a URL shaped like pages of this crawl that did show images
  (`LinkRanker.saw_images` learns the shapes as the crawl goes);
- `pagination`: the next page of a listing (`?page=N`, `?p=N`, `?offset=N`, `/page/N`);
- `calendar`: a calendar (`/calendar/...`, `?month=5`, `?date=...`) or a date archive with
  nothing after the date (`/2024/05`, `/archive/2024/05/17`): endless, a page per day or month;
- `trap`: a session id in the query (`sid`, `sessionid`, `PHPSESSID`, a long random token), a
  path that repeats a segment, very deep paths or long query strings;
- `other`: anything else.

Image pages, pagination and other pages go to Scrapy's scheduler at once with priorities in
that order (images themselves go first of all, so the hashing queue never runs dry); calendars
and traps are *held back*: they are scheduled only when the crawl has nothing else left to do
(the spider is idle), calendars before traps. Every image page the crawl can reach is therefore
fetched before the first calendar or trap page, and the page limit, spent when a page is
downloaded rather than when its link is seen, goes to them last.
"""

from __future__ import annotations

import re
from collections import Counter
from enum import Enum
from urllib.parse import parse_qsl, urlsplit


class LinkKind(Enum):
    IMAGE = "image"
    PAGINATION = "pagination"
    OTHER = "other"
    CALENDAR = "calendar"
    TRAP = "trap"


# Scheduler priorities (higher first). Images outrank every page.
IMAGE_PRIORITY = 100
PRIORITY = {LinkKind.IMAGE: 60, LinkKind.PAGINATION: 40, LinkKind.OTHER: 20}
HELD_BACK = (LinkKind.CALENDAR, LinkKind.TRAP)  # released in this order when the crawl is idle

_IMAGE_SEGMENTS = frozenset(
    [
        "photo",
        "photos",
        "image",
        "images",
        "picture",
        "pictures",
        "pic",
        "pics",
        "gallery",
        "galleries",
        "album",
        "albums",
        "media",
        "foto",
        "fotos",
        "bild",
        "bilder",
        "img",
        "imgs",
    ]
)
_PAGINATION_KEYS = frozenset(
    ["page", "p", "pg", "paged", "pagenum", "page_num", "offset", "start", "from"]
)
_PAGINATION_PATH = re.compile(r"/(page|seite|pagina|p)/\d+/?$", re.I)
_CALENDAR_KEYS = frozenset(["date", "day", "month", "year", "week", "cal", "calendar", "ical"])
_SESSION_KEYS = frozenset(
    [
        "sid",
        "sessid",
        "sessionid",
        "session",
        "session_id",
        "phpsessid",
        "jsessionid",
        "aspsessionid",
        "cfid",
        "cftoken",
        "token",
        "sess",
    ]
)
_YEAR = re.compile(r"(19|20)\d\d$")
_TOKEN = re.compile(r"[0-9a-f]{16,}|[A-Za-z0-9_-]{24,}", re.I)
MAX_SEGMENTS = 10
MAX_QUERY_KEYS = 5


_CALENDAR_WORDS = frozenset(["calendar", "kalender", "calendrier", "agenda"])


def _is_date_archive(segments: list[str]) -> bool:
    """A path that ends in a date: a year then a month (and a day), `/2024/05`,
    `/archive/2024/05/17`; or a year alone as the whole path (`/2024`)."""
    if len(segments) == 1 and _YEAR.match(segments[0]):
        return True
    for i, seg in enumerate(segments):
        if _YEAR.match(seg):
            rest = segments[i + 1 :]
            if not 1 <= len(rest) <= 2 or not all(p.isdigit() and len(p) <= 2 for p in rest):
                return False
            return 1 <= int(rest[0]) <= 12 and (len(rest) == 1 or 1 <= int(rest[1]) <= 31)
    return False


def classify(url: str) -> LinkKind:
    """The kind of page `url` leads to, from the URL alone (see the module's docstring)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    query = parse_qsl(parts.query, keep_blank_values=True)
    keys = {k.lower() for k, _ in query}
    if (
        keys & _SESSION_KEYS
        or any(_TOKEN.fullmatch(v) for _, v in query)
        or (segments and max(Counter(segments).values()) > 1)
        or len(segments) > MAX_SEGMENTS
        or len(keys) > MAX_QUERY_KEYS
        or any(";jsessionid=" in s.lower() for s in segments)
    ):
        return LinkKind.TRAP
    lowered = [s.lower() for s in segments]
    if keys & _CALENDAR_KEYS or any(s in _CALENDAR_WORDS for s in lowered):
        return LinkKind.CALENDAR
    if any(s in _IMAGE_SEGMENTS for s in lowered):
        return LinkKind.IMAGE
    if _is_date_archive(segments):
        return LinkKind.CALENDAR
    if _PAGINATION_PATH.search(parts.path) or any(
        k.lower() in _PAGINATION_KEYS and v.isdigit() for k, v in query
    ):
        return LinkKind.PAGINATION
    return LinkKind.OTHER


_DIGITS = re.compile(r"\d+")


def shape(url: str) -> str:
    """The URL with digit runs and query values blanked: /photo/17?x=2 -> host/photo/#?x="""
    parts = urlsplit(url)
    keys = "&".join(sorted(k for k, _ in parse_qsl(parts.query, keep_blank_values=True)))
    return f"{parts.hostname}{_DIGITS.sub('#', parts.path)}?{keys}"


class LinkRanker:
    """`classify`, plus what this crawl learned: shapes of pages that showed images."""

    def __init__(self) -> None:
        self._image_shapes: set[str] = set()

    def saw_images(self, page_url: str) -> None:
        self._image_shapes.add(shape(page_url))

    def showed_images(self, url: str) -> bool:
        """Whether pages shaped like `url` showed images in this crawl."""
        return shape(url) in self._image_shapes

    def kind(self, url: str) -> LinkKind:
        found = classify(url)
        if found in (LinkKind.OTHER, LinkKind.PAGINATION) and shape(url) in self._image_shapes:
            return LinkKind.IMAGE
        return found

    @staticmethod
    def priority(kind: LinkKind, depth: int) -> int:
        """The scheduler priority of a page of `kind` at `depth`: shallower first within a kind,
        never crossing into the next kind."""
        if kind in HELD_BACK:
            return -depth
        return PRIORITY[kind] - min(depth, 19)
