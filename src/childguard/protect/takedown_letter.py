# Owns the wording of an organisation's takedown request to a host, in four languages.
"""The plain-text letter an organisation sends a host to ask for a copy of its photo to be
taken down: `render_letter(sighting, ...) -> TakedownLetter` (subject, body, file name).

It is pre-filled with what childguard knows: the page and image URLs, when the copy was first
and last seen and its status, the matched photo's file name and title, where and when the
organisation published it, the match (signal type and distance) and the organisation's contact.
It says what the photo is (the organisation's own photo of a child, re-posted without consent)
and never describes it further. Dutch, French, German and English; any other language tag
gets English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from childguard.crawl.sightings import SightingView

LETTER_LANGUAGES = ("nl", "fr", "de", "en")

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Request to remove a re-posted photo from {host}",
        "greeting": "To the abuse or content team of {host},",
        "intro": (
            "{org} published the photo named below on its own site. A copy of it has been "
            "re-posted on your service without our consent. It shows a child in our care. "
            "We ask you to remove it under your terms of service and to keep it from being "
            "uploaded again."
        ),
        "where": "Where the copy is",
        "page": "Page",
        "image": "Image URL",
        "first_seen": "First seen",
        "last_seen": "Last seen",
        "status": "Status when this letter was made",
        "photo": "Our photo",
        "file": "File name",
        "title": "Title",
        "published": "Published at",
        "published_on": "Published on",
        "match": "How it was found",
        "match_line": (
            "The copy matches our photo by its perceptual hash ({signal}, distance {distance}; "
            "0 is identical)."
        ),
        "contact": "Please reply to {contact}, or to the address this letter came from.",
        "thanks": "Thank you for your help.",
        "none": "-",
        "statuses": "online=still online,removed=removed,changed=changed since",
    },
    "nl": {
        "subject": "Verzoek om een opnieuw geplaatste foto te verwijderen van {host}",
        "greeting": "Aan het abuse- of contentteam van {host},",
        "intro": (
            "{org} heeft de hieronder genoemde foto op de eigen site gepubliceerd. Een kopie "
            "ervan is zonder onze toestemming opnieuw geplaatst op uw dienst. De foto toont een "
            "kind dat aan ons is toevertrouwd. Wij vragen u de kopie te verwijderen op grond "
            "van uw gebruiksvoorwaarden en te voorkomen dat zij opnieuw wordt geüpload."
        ),
        "where": "Waar de kopie staat",
        "page": "Pagina",
        "image": "Afbeeldings-URL",
        "first_seen": "Voor het eerst gezien",
        "last_seen": "Laatst gezien",
        "status": "Status toen deze brief werd gemaakt",
        "photo": "Onze foto",
        "file": "Bestandsnaam",
        "title": "Titel",
        "published": "Gepubliceerd op (adres)",
        "published_on": "Gepubliceerd op (datum)",
        "match": "Hoe de kopie is gevonden",
        "match_line": (
            "De kopie komt overeen met onze foto volgens de perceptuele hash ({signal}, "
            "afstand {distance}; 0 is identiek)."
        ),
        "contact": "Antwoord graag aan {contact}, of aan het adres waarvan deze brief komt.",
        "thanks": "Dank u voor uw hulp.",
        "none": "-",
        "statuses": "online=nog online,removed=verwijderd,changed=sindsdien gewijzigd",
    },
    "fr": {
        "subject": "Demande de retrait d'une photo republiée sur {host}",
        "greeting": "À l'équipe abus ou contenus de {host},",
        "intro": (
            "{org} a publié la photo indiquée ci-dessous sur son propre site. Une copie a été "
            "republiée sur votre service sans notre accord. Elle montre un enfant qui nous est "
            "confié. Nous vous demandons de la retirer en vertu de vos conditions d'utilisation "
            "et d'empêcher qu'elle soit de nouveau mise en ligne."
        ),
        "where": "Où se trouve la copie",
        "page": "Page",
        "image": "URL de l'image",
        "first_seen": "Vue pour la première fois",
        "last_seen": "Vue pour la dernière fois",
        "status": "État au moment de cette lettre",
        "photo": "Notre photo",
        "file": "Nom du fichier",
        "title": "Titre",
        "published": "Publiée à l'adresse",
        "published_on": "Publiée le",
        "match": "Comment elle a été trouvée",
        "match_line": (
            "La copie correspond à notre photo par son empreinte perceptuelle ({signal}, "
            "distance {distance} ; 0 signifie identique)."
        ),
        "contact": "Merci de répondre à {contact}, ou à l'adresse d'où vient cette lettre.",
        "thanks": "Merci de votre aide.",
        "none": "-",
        "statuses": "online=toujours en ligne,removed=retirée,changed=modifiée depuis",
    },
    "de": {
        "subject": "Bitte um Entfernung eines erneut veröffentlichten Fotos von {host}",
        "greeting": "An das Abuse- oder Content-Team von {host},",
        "intro": (
            "{org} hat das unten genannte Foto auf der eigenen Website veröffentlicht. Eine "
            "Kopie davon wurde ohne unsere Zustimmung auf Ihrem Dienst erneut veröffentlicht. "
            "Es zeigt ein Kind, das uns anvertraut ist. Wir bitten Sie, die Kopie nach Ihren "
            "Nutzungsbedingungen zu entfernen und ein erneutes Hochladen zu verhindern."
        ),
        "where": "Wo die Kopie ist",
        "page": "Seite",
        "image": "Bild-URL",
        "first_seen": "Zuerst gesehen",
        "last_seen": "Zuletzt gesehen",
        "status": "Status bei Erstellung dieses Briefes",
        "photo": "Unser Foto",
        "file": "Dateiname",
        "title": "Titel",
        "published": "Veröffentlicht unter",
        "published_on": "Veröffentlicht am",
        "match": "Wie sie gefunden wurde",
        "match_line": (
            "Die Kopie stimmt mit unserem Foto über seinen perzeptuellen Hash überein "
            "({signal}, Abstand {distance}; 0 ist identisch)."
        ),
        "contact": (
            "Bitte antworten Sie an {contact} oder an die Adresse, von der dieser Brief kam."
        ),
        "thanks": "Vielen Dank für Ihre Hilfe.",
        "none": "-",
        "statuses": "online=noch online,removed=entfernt,changed=seitdem geändert",
    },
}


@dataclass(frozen=True)
class TakedownLetter:
    """A letter ready to send: its language, subject, plain-text body and a file name."""

    language: str
    subject: str
    body: str
    file_name: str


def _when(value: datetime | None, none: str) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else none


def render_letter(
    sighting: SightingView,
    *,
    org_name: str,
    contact: str | None,
    photo_file: str | None,
    photo_title: str | None,
    published_url: str | None,
    published_at: datetime | None,
    language: str = "en",
) -> TakedownLetter:
    """The takedown request for the host of `sighting`'s page, in `language`."""
    lang = language if language in _TEXT else "en"
    t = _TEXT[lang]
    host = urlsplit(sighting.page_url).hostname or urlsplit(sighting.image_url).hostname or "?"
    statuses = dict(pair.split("=", 1) for pair in t["statuses"].split(","))
    none = t["none"]
    lines = [
        t["greeting"].format(host=host),
        "",
        t["intro"].format(org=org_name),
        "",
        f"{t['where']}:",
        f"  {t['page']}: {sighting.page_url}",
        f"  {t['image']}: {sighting.image_url}",
        f"  {t['first_seen']}: {_when(sighting.first_seen, none)}",
        f"  {t['last_seen']}: {_when(sighting.last_seen, none)}",
        f"  {t['status']}: {statuses.get(sighting.status, sighting.status)}",
        "",
        f"{t['photo']}:",
        f"  {t['file']}: {photo_file or none}",
        f"  {t['title']}: {photo_title or none}",
        f"  {t['published']}: {published_url or none}",
        f"  {t['published_on']}: {_when(published_at, none)}",
        "",
        f"{t['match']}:",
        "  " + t["match_line"].format(signal=sighting.signal_type, distance=sighting.distance),
        "",
        t["contact"].format(contact=contact or org_name),
        "",
        t["thanks"],
        "",
        org_name,
        contact or "",
    ]
    body = "\n".join(lines).rstrip() + "\n"
    return TakedownLetter(
        language=lang,
        subject=t["subject"].format(host=host),
        body=body,
        file_name=f"takedown-request-sighting-{sighting.id}-{lang}.txt",
    )
