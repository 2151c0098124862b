# Owns the NCMEC-shaped export: a CyberTipline report of hotline items as XML, and its check.
"""An XML export shaped like an NCMEC CyberTipline report, for a hotline that passes items to
NCMEC or to a partner who takes that format.

The document is `<cybertiplineExport>` holding one `<report>` and one `<fileDetails>` per
item, in the order NCMEC's reporting API takes them (a report is opened, then each file's
details are sent):

- `report/incidentSummary`: `incidentType` (always "Child Pornography (possession,
  manufacture, and distribution)"), `incidentDateTime` (the earliest first seen);
- `report/internetDetails/webPageIncident` (`thirdPartyHostedContent="true"`: the hotline
  does not host what it reports): one `url` per place the items were seen, then
  `additionalInfo` with childguard's reference;
- `report/reporter/reportingPerson`: the hotline (notifier name in `firstName`, its email);
- per item `fileDetails`: `fileId` (`childguard-item-<id>`), `originalFileName`,
  `locationOfFile` (the first URL), `fileViewedByEsp` (true: an analyst assessed it),
  `publiclyAvailable` (true), `fileRelevance` ("Reported"), `fileAnnotations` (the labels of
  scheme `ncmec-annotation`, empty elements), `industryClassification` (A1, A2, B1, B2, the
  label of scheme `ncmec` profile `industry`), then `originalFileHash` with `hashType` MD5,
  SHA1 and SHA256.

NCMEC publishes its XSD only to registered reporters; none could be found through the package
registries (PyPI has `ncmec-cybertip`, a client whose models give element names, order and
enumerations, and no XSD). So the export is checked against `STRUCTURE`, written down here
from those models: for each element, its children in order with how many times each may
appear, the enumerations of text values, the presence-flag elements that must be empty, and
the date-time fields. `check_export` returns every departure. Two differences from NCMEC's own
documents are deliberate: `fileDetails` has no `reportId` (NCMEC assigns it when the report
is opened), and the wrapper element is ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree

from childguard.errors import ChildguardError
from childguard.hotline.bundles import BundleItem, gather
from childguard.store import audit
from childguard.store.db import Store

ROOT = "cybertiplineExport"
INCIDENT_TYPE = "Child Pornography (possession, manufacture, and distribution)"
INCIDENT_TYPES = (
    INCIDENT_TYPE,
    "Child Sex Trafficking",
    "Child Sex Tourism",
    "Child Sexual Molestation",
    "Misleading Domain Name",
    "Misleading Words or Digital Images on the Internet",
    "Online Enticement of Children for Sexual Acts",
    "Unsolicited Obscene Material Sent to a Child",
)
INDUSTRY_CLASSIFICATIONS = ("A1", "A2", "B1", "B2")
FILE_RELEVANCE = ("Reported", "Supplemental Reported")
# fileAnnotations' flags, in the schema's order.
FILE_ANNOTATIONS = (
    "animeDrawingVirtualHentai",
    "potentialMeme",
    "viral",
    "possibleSelfProduction",
    "physicalHarm",
    "violenceGore",
    "bestiality",
    "liveStreaming",
    "infant",
    "generativeAi",
)
HASH_TYPES = (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256"))
MANY = None
# element -> its children in order: (name, least, most; None for unbounded).
STRUCTURE: dict[str, tuple[tuple[str, int, int | None], ...]] = {
    ROOT: (("report", 1, 1), ("fileDetails", 0, MANY)),
    "report": (
        ("incidentSummary", 1, 1),
        ("internetDetails", 0, MANY),
        ("reporter", 1, 1),
        ("additionalInfo", 0, 1),
    ),
    "incidentSummary": (
        ("incidentType", 1, 1),
        ("platform", 0, 1),
        ("incidentDateTime", 1, 1),
        ("incidentDateTimeDescription", 0, 1),
    ),
    "internetDetails": (("webPageIncident", 1, 1),),
    "webPageIncident": (("url", 1, MANY), ("additionalInfo", 0, 1)),
    "reporter": (("reportingPerson", 1, 1), ("contactPerson", 0, 1)),
    "reportingPerson": (("firstName", 0, 1), ("lastName", 0, 1), ("email", 0, MANY)),
    "fileDetails": (
        ("fileId", 1, 1),
        ("originalFileName", 0, 1),
        ("uploadedToEspTimestamp", 0, 1),
        ("locationOfFile", 0, 1),
        ("fileViewedByEsp", 0, 1),
        ("exifViewedByEsp", 0, 1),
        ("publiclyAvailable", 0, 1),
        ("fileRelevance", 0, 1),
        ("fileAnnotations", 0, 1),
        ("industryClassification", 0, 1),
        ("originalFileHash", 0, MANY),
        ("additionalInfo", 0, MANY),
    ),
    "fileAnnotations": tuple((name, 0, 1) for name in FILE_ANNOTATIONS),
}
ENUMERATIONS: dict[str, tuple[str, ...]] = {
    "incidentType": INCIDENT_TYPES,
    "industryClassification": INDUSTRY_CLASSIFICATIONS,
    "fileRelevance": FILE_RELEVANCE,
    "fileViewedByEsp": ("true", "false"),
    "publiclyAvailable": ("true", "false"),
}
DATETIMES = ("incidentDateTime", "uploadedToEspTimestamp")
MAX_LENGTHS = {"originalFileName": 2056, "locationOfFile": 2083, "platform": 256}


# The outcomes an export is made for: what NCMEC's CyberTipline takes as apparent CSAM.
EXPORTED_OUTCOMES = ("baseline", "nationally-illegal")


class NotExportable(ChildguardError):
    """An item that is not decided illegal is not exported."""


@dataclass(frozen=True)
class Reporter:
    """Who the export says reports: the hotline."""

    name: str
    email: str | None = None


def _sub(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    node = etree.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = text
    return node


def _file_name(url: str) -> str:
    tail = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or url


def export(
    items: Sequence[BundleItem], reporter: Reporter, *, reference: str | None = None
) -> bytes:
    """The export of `items` (at least one) as UTF-8 XML."""
    if not items:
        raise ValueError("an NCMEC export needs at least one item")
    root = etree.Element(ROOT)
    report = _sub(root, "report")
    summary = _sub(report, "incidentSummary")
    _sub(summary, "incidentType", INCIDENT_TYPE)
    first = min(datetime.fromisoformat(i.first_seen) for i in items)
    _sub(summary, "incidentDateTime", first.isoformat())
    urls = list(dict.fromkeys(url for item in items for url in item.urls()))
    if urls:
        details = _sub(report, "internetDetails")
        page = _sub(details, "webPageIncident", thirdPartyHostedContent="true")
        for url in urls:
            _sub(page, "url", url)
        if reference:
            _sub(page, "additionalInfo", f"childguard reference {reference}")
    who = _sub(report, "reporter")
    person = _sub(who, "reportingPerson")
    _sub(person, "firstName", reporter.name[:100])
    if reporter.email:
        _sub(person, "email", reporter.email)
    for item in items:
        _file_details(root, item)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _file_details(root: Any, item: BundleItem) -> None:
    node = _sub(root, "fileDetails")
    _sub(node, "fileId", f"childguard-item-{item.item_id}")
    urls = item.urls()
    if urls:
        _sub(node, "originalFileName", _file_name(urls[0])[:2056])
        _sub(node, "locationOfFile", urls[0][:2083])
    _sub(node, "fileViewedByEsp", "true")
    _sub(node, "publiclyAvailable", "true" if urls else "false")
    _sub(node, "fileRelevance", "Reported")
    flags = {lb["profile"] for lb in item.labels() if lb["scheme"] == "ncmec-annotation"}
    if flags & set(FILE_ANNOTATIONS):
        annotations = _sub(node, "fileAnnotations")
        for name in FILE_ANNOTATIONS:
            if name in flags:
                _sub(annotations, name)
    industry = item.label("ncmec", "industry")
    if industry in INDUSTRY_CLASSIFICATIONS:
        _sub(node, "industryClassification", industry)
    values = {"md5": item.md5, "sha1": item.sha1, "sha256": item.sha256}
    for key, hash_type in HASH_TYPES:
        if values[key]:
            _sub(node, "originalFileHash", values[key], hashType=hash_type)


def export_items(
    store: Store,
    item_ids: Sequence[int],
    *,
    actor: str,
    reporter: Reporter,
    reference: str | None = None,
) -> bytes:
    """The export of decided illegal items, audited (`item.ncmec_export` on each item).
    UnknownItem for an unknown item; NotExportable for one not decided baseline or nationally
    illegal."""
    items = gather(store, item_ids)
    for item in items:
        if item.outcome not in EXPORTED_OUTCOMES:
            raise NotExportable(
                f"item {item.item_id} is {item.outcome or 'not decided'}: only items decided "
                f"{' or '.join(EXPORTED_OUTCOMES)} are exported"
            )
    data = export(items, reporter, reference=reference)
    with store.session() as session:
        for item in items:
            audit.record(
                session,
                actor=actor,
                action="item.ncmec_export",
                object_type="item",
                object_id=item.item_id,
                details={"reference": reference},
            )
    return data


def check_export(data: bytes) -> list[str]:
    """Every way `data` departs from `STRUCTURE` (empty: none)."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag != ROOT:
        return [f"the root is <{root.tag}>, not <{ROOT}>"]
    problems: list[str] = []
    _check(root, ROOT, problems)
    return problems


def _check(node: Any, path: str, problems: list[str]) -> None:
    tag = node.tag
    spec = STRUCTURE.get(tag)
    children = [c for c in node if isinstance(c.tag, str)]
    if tag in FILE_ANNOTATIONS and (children or (node.text or "").strip()):
        problems.append(f"{path}: a flag element must be empty")
    if spec is None:
        if children and tag not in FILE_ANNOTATIONS:
            problems.append(f"{path}: <{tag}> takes no child elements")
        _check_text(node, path, problems)
        return
    position = 0
    names = [name for name, _, _ in spec]
    counts: dict[str, int] = {}
    for child in children:
        if child.tag not in names:
            problems.append(f"{path}: <{child.tag}> is not allowed here")
            continue
        index = names.index(child.tag)
        if index < position:
            problems.append(f"{path}: <{child.tag}> is out of order")
        position = max(position, index)
        counts[child.tag] = counts.get(child.tag, 0) + 1
        _check(child, f"{path}/{child.tag}", problems)
    for name, least, most in spec:
        found = counts.get(name, 0)
        if found < least:
            problems.append(f"{path}: <{name}> is required")
        if most is not None and found > most:
            problems.append(f"{path}: <{name}> may appear at most {most} time(s)")
    if tag == "webPageIncident":
        third = node.get("thirdPartyHostedContent")
        if third is not None and third not in ("true", "false"):
            problems.append(f"{path}: thirdPartyHostedContent must be true or false")


def _check_text(node: Any, path: str, problems: list[str]) -> None:
    text = (node.text or "").strip()
    tag = node.tag
    if tag in ENUMERATIONS and text not in ENUMERATIONS[tag]:
        problems.append(f"{path}: {text!r} is not one of {list(ENUMERATIONS[tag])}")
    if tag in DATETIMES:
        try:
            datetime.fromisoformat(text)
        except ValueError:
            problems.append(f"{path}: {text!r} is not a date and time")
    if tag in MAX_LENGTHS and len(text) > MAX_LENGTHS[tag]:
        problems.append(f"{path}: longer than {MAX_LENGTHS[tag]} characters")
    if tag == "originalFileHash":
        if not text:
            problems.append(f"{path}: an empty hash")
        hash_type = node.get("hashType")
        if not hash_type or len(hash_type) > 64:
            problems.append(f"{path}: hashType is required (at most 64 characters)")
    if tag in ("url", "fileId") and not text:
        problems.append(f"{path}: empty")
