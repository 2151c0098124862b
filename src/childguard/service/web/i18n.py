# Owns the web pages' languages: the four supported, the catalogs, and choosing one per request.
"""Languages of the server-rendered pages: Dutch, French, German and English.

Each page area keeps its own catalog file, `locale/<lang>/LC_MESSAGES/<area>.po` (the report
form's is `messages.po`); `CATALOGS[lang]` merges every `.po` file of a language, compiled in
memory when this module is imported, so there is no build step and areas never share a file.

`choose_language(request, cookie)` takes `?lang=`, else the area's cookie, else the browser's
`Accept-Language` (Babel's `negotiate_locale`), else English.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from babel import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from fastapi import Request

LANGUAGES = {"nl": "Nederlands", "fr": "Français", "de": "Deutsch", "en": "English"}
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def _compiled(path: Path, language: str) -> Translations:
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def _catalog(language: str) -> NullTranslations:
    """Every catalog file of `language`, merged (none: the messages as written, in English)."""
    merged: Translations | None = None
    for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        part = _compiled(path, language)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged if merged is not None else NullTranslations()


CATALOGS: dict[str, NullTranslations] = {lang: _catalog(lang) for lang in LANGUAGES}


def accept_language(header: str) -> list[str]:
    """The language tags of an `Accept-Language` header, most wanted first."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        if not tag or tag == "*" or not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", tag):
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _sep, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, index, tag.lower()))
    return [tag for _q, _i, tag in sorted(weighted)]


def choose_language(request: Request, cookie: str) -> tuple[str, bool]:
    """The page's language, and whether it was chosen with `?lang=` (to remember it in
    `cookie`)."""
    asked = request.query_params.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked, True
    kept = request.cookies.get(cookie, "").lower()
    if kept in LANGUAGES:
        return kept, False
    preferred = accept_language(request.headers.get("accept-language", ""))
    found = negotiate_locale(preferred, list(LANGUAGES), sep="-")
    return (found if found in LANGUAGES else DEFAULT_LANGUAGE), False
