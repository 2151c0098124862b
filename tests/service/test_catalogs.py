"""The pages' catalogs: every area's messages in each of the four languages (English may leave
one as written), with the same placeholders, and the messages of the organisation's
registration script among them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from childguard.service.web import org_register_pages
from childguard.service.web.i18n import LANGUAGES, LOCALE_DIR

AREAS = sorted(p.name for p in (LOCALE_DIR / "en" / "LC_MESSAGES").glob("*.po"))


def _catalog(lang: str, area: str) -> dict[str, str]:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / area).open("rb") as source:
        return {str(m.id): str(m.string) for m in read_po(source, locale=lang) if m.id}


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\(\w+\)s|%s", text))


@pytest.mark.parametrize("area", AREAS)
def test_every_language_has_every_message_of_an_area_with_its_placeholders(area: str) -> None:
    english = _catalog("en", area)
    assert len(english) > 5
    for lang in LANGUAGES:
        catalog = _catalog(lang, area)
        assert set(catalog) == set(english), (lang, set(english) ^ set(catalog))
        for msgid, text in catalog.items():
            if lang == "en" and not text:  # English shows the message as written
                continue
            assert text, (lang, msgid)
            assert _placeholders(text) == _placeholders(msgid), (lang, msgid)


def test_the_registration_scripts_messages_are_in_its_catalog() -> None:
    used = {
        *org_register_pages.SCRIPT_MESSAGES.values(),
        *org_register_pages.FINDING_LABELS.values(),
    }
    english = _catalog("en", "org_register.po")
    assert used <= set(english), used - set(english)
    from childguard.protect.register import WARNING_CODES

    assert "resigned" in org_register_pages.SCRIPT_MESSAGES
    for code in WARNING_CODES:  # the script shows a warning as message("warning_<code>")
        assert f"warning_{code.replace('-', '_')}" in org_register_pages.SCRIPT_MESSAGES
    js = (Path(org_register_pages.STATIC_DIR) / "org" / "add.js").read_text()
    for key in re.findall(r'message\("(\w+)"', js):
        assert key in org_register_pages.SCRIPT_MESSAGES, key


def test_every_message_the_templates_and_page_modules_mark_is_in_a_catalog() -> None:
    """A message marked `_("...")` in a template or a page module is in one of the areas'
    catalogs (and so, by the test above, in every language)."""
    web = Path(org_register_pages.__file__).parent
    known = set().union(*(_catalog("en", area) for area in AREAS))
    marked = re.compile(r"""\b_\(\s*["']([^"'\n]+)["']\s*\)""")
    used: dict[str, str] = {}
    for path in [*(web / "templates").glob("*.html"), *web.glob("*.py")]:
        for message in marked.findall(path.read_text()):
            used.setdefault(message, path.name)
    assert len(used) > 100
    missing = {m: where for m, where in used.items() if m not in known}
    assert not missing, missing
