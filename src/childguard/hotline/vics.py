# Owns the VICS JSON 2.0 document of a referral: the items' hashes and their category.
"""A VICS JSON 2.0 document (Project VIC's data model, as Griffeye Analyze, CAID and the
national VICS networks exchange it) for a set of hotline items in one category profile.

The document is an OData `Media` collection::

    {"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
     "value": [{"MediaID": 12, "Category": 1, "MD5": "...", "SHA1": "...", "MediaSize": 14301,
                "MimeType": "image/jpeg", "IsDistributed": true, "IsPrecategorized": false,
                "Comments": "...", "MediaFiles": [{"FileName": "...", "FilePath": "<url>"}],
                "AlternativeHashes": [{"HashName": "SHA256", "HashValue": "..."},
                                      {"HashName": "PDQ", "HashValue": "..."}]}]}

The Category is the item's label in scheme `vics` under the destination's profile (`US` or
`UK`, `hotline/schemes/vics_us.py`, `vics_uk.py`); an item with no label in that profile (the
UK profile has none for a non-indecent image) carries no Category rather than a guess. Hex
digests are upper case, as Project VIC distributes them; `MediaID` is the item's id.

What could be checked and what could not. The VICS data model itself is shared by Project VIC
only under agreement, so no normative copy was available. Checked against public code that
reads or writes VICS files: the `@odata.context` URL and its profile segment, the `Media`
container and `value` list, `MediaID`, `Category`, `MD5`, `SHA1`, `MediaSize`, `MimeType`,
`MediaFiles` with `FileName` and `FilePath`, `AlternativeHashes` with `HashName` and
`HashValue` (seen holding SHA1 and PhotoDNA), `IsDistributed`, `IsPrecategorized`,
`VictimIdentified`, `OffenderIdentified`, `Series`, `Tags`. Not checked: `Comments` (named in
our brief, not found in the public code), and the `HashName` spellings `SHA256` and `PDQ`
(our choice; readers that do not know them skip them). The importer
`childguard.banks.formats.vics` reads this document back (MD5, SHA1 and Category).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from childguard.errors import InputFormatError

DATA_MODEL = "2.0"
CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#Media"
# A destination's `vics_profile` to the profile segment and the scheme profile of the labels.
PROFILES = {"us": "US", "uk": "UK"}
SCHEME = "vics"


class InvalidVicsProfile(InputFormatError):
    """A VICS profile other than `us` or `uk`."""


@dataclass(frozen=True)
class VicsMedia:
    """One item as VICS sees it: its id, hashes, size and type, its labels in scheme `vics`
    (profile -> category), and the URLs it was seen at."""

    media_id: int
    md5: str | None
    sha1: str | None
    sha256: str
    pdq: str | None
    byte_size: int
    media_type: str | None
    categories: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    comment: str | None = None


def profile_name(profile: str) -> str:
    """The VICS profile segment (`US`, `UK`) of a destination's `vics_profile`."""
    found = PROFILES.get(profile.strip().lower())
    if found is None:
        raise InvalidVicsProfile(
            f"VICS profile {profile!r} is not one childguard derives; want one of "
            f"{sorted(PROFILES)}"
        )
    return found


def _file_name(url: str) -> str:
    tail = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or url


def media_record(media: VicsMedia, profile: str) -> dict[str, Any]:
    """The `Media` record of one item under `profile` (`US` or `UK`)."""
    record: dict[str, Any] = {"MediaID": media.media_id}
    category = media.categories.get(profile)
    if category is not None and category.isdigit():
        record["Category"] = int(category)
    if media.md5:
        record["MD5"] = media.md5.upper()
    if media.sha1:
        record["SHA1"] = media.sha1.upper()
    record["MediaSize"] = media.byte_size
    if media.media_type:
        record["MimeType"] = media.media_type
    record["IsDistributed"] = bool(media.urls)
    record["IsPrecategorized"] = False
    if media.comment:
        record["Comments"] = media.comment
    record["MediaFiles"] = [{"FileName": _file_name(url), "FilePath": url} for url in media.urls]
    alternative = [{"HashName": "SHA256", "HashValue": media.sha256.upper()}]
    if media.pdq:
        alternative.append({"HashName": "PDQ", "HashValue": media.pdq.upper()})
    record["AlternativeHashes"] = alternative
    return record


def document(items: Iterable[VicsMedia], profile: str) -> dict[str, Any]:
    """The VICS JSON 2.0 `Media` document of `items` in a destination's profile (`us`/`uk`)."""
    name = profile_name(profile)
    return {
        "@odata.context": CONTEXT.format(profile=name),
        "value": [media_record(m, name) for m in items],
    }


def check_document(doc: Any) -> list[str]:
    """What is wrong with a VICS document as `document` writes it (empty: nothing)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["a VICS document is a JSON object"]
    context = doc.get("@odata.context")
    if not isinstance(context, str) or not any(
        context == CONTEXT.format(profile=p) for p in PROFILES.values()
    ):
        problems.append(f"@odata.context is not a VICS 2.0 Media context: {context!r}")
    value = doc.get("value")
    if not isinstance(value, list):
        return [*problems, "value is not a list"]
    for number, record in enumerate(value, 1):
        problems.extend(f"media {number}: {p}" for p in _check_record(record))
    return problems


def _check_record(record: Any) -> Sequence[str]:
    if not isinstance(record, dict):
        return ["not an object"]
    problems = []
    if not isinstance(record.get("MediaID"), int):
        problems.append("MediaID is not a number")
    if not record.get("MD5") and not record.get("SHA1"):
        problems.append("neither MD5 nor SHA1")
    category = record.get("Category")
    if category is not None and (isinstance(category, bool) or not isinstance(category, int)):
        problems.append("Category is not a number")
    for hashed in record.get("AlternativeHashes", []):
        if not isinstance(hashed, dict) or not {"HashName", "HashValue"} <= set(hashed):
            problems.append("an AlternativeHashes entry lacks HashName or HashValue")
    return problems
