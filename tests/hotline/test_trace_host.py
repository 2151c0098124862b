"""The host trace against local servers: addresses, reverse DNS, the CDN hint, and the RDAP
abuse contact from a local RDAP-shaped server; nothing reaches the internet."""

from __future__ import annotations

import json

from childguard.hotline.trace import HostTracer, abuse_contact, cdn_hint
from hotline.hotline_site import Route, serving

RDAP = {
    "objectClassName": "ip network",
    "handle": "NET-127-0-0-0-1",
    "entities": [
        {
            "roles": ["registrant"],
            "handle": "ORG-1",
            "entities": [
                {
                    "roles": ["abuse"],
                    "handle": "ABUSE-1",
                    "vcardArray": [
                        "vcard",
                        [
                            ["version", {}, "text", "4.0"],
                            ["fn", {}, "text", "Example Abuse Desk"],
                            ["email", {}, "text", "abuse@host.example"],
                        ],
                    ],
                }
            ],
        }
    ],
}


def test_a_trace_resolves_reverses_hints_the_cdn_and_asks_rdap_for_the_abuse_contact() -> None:
    with serving() as rdap:
        rdap.routes["/ip/127.0.0.1"] = Route(json.dumps(RDAP).encode(), "application/rdap+json")
        tracer = HostTracer(
            resolve=lambda host: ["127.0.0.1", "::1"],
            reverse=lambda ip: {"127.0.0.1": "host.example"}.get(ip),
            geo=lambda ip: {"asn": 64500, "country": "BE"},
            rdap_base=rdap.url(""),
            allow_private=True,
        )
        trace = tracer.trace("https://pics.example/a.jpg", {"CF-Ray": "8a1b-BRU"})
    assert trace["host"] == "pics.example"
    assert trace["addresses"][0] == {
        "ip": "127.0.0.1",
        "reverse": "host.example",
        "asn": 64500,
        "country": "BE",
    }
    assert trace["addresses"][1]["reverse"] is None
    assert (trace["asn"], trace["country"], trace["cdn"]) == (64500, "BE", "Cloudflare")
    assert trace["abuse"] == {
        "handle": "ABUSE-1",
        "name": "Example Abuse Desk",
        "email": "abuse@host.example",
    }
    assert "errors" not in trace


def test_rdap_is_asked_only_when_configured_and_its_failure_is_noted_not_raised() -> None:
    quiet = HostTracer(resolve=lambda host: ["127.0.0.1"], reverse=lambda ip: None)
    assert quiet.trace("http://a.example/", {})["abuse"] is None
    with serving() as rdap:  # no route: 404
        broken = HostTracer(
            resolve=lambda host: ["127.0.0.1"],
            reverse=lambda ip: None,
            rdap_base=rdap.url(""),
            allow_private=True,
        )
        trace = broken.trace("http://a.example/", {})
    assert trace["abuse"] is None and "answered 404" in trace["errors"][0]
    guarded = HostTracer(
        resolve=lambda host: ["127.0.0.1"], reverse=lambda ip: None, rdap_base="http://127.0.0.1:9"
    )
    assert "not fetched" in guarded.trace("http://a.example/", {})["errors"][0]


def test_cdn_hints_and_abuse_contacts_from_plain_data() -> None:
    assert cdn_hint({"Via": "1.1 abc.cloudfront.net (CloudFront)"}) == "Amazon CloudFront"
    assert cdn_hint({"X-Served-By": "cache-bru1234-BRU"}) == "Fastly"
    assert cdn_hint({"Server": "nginx"}) is None
    assert abuse_contact({"entities": [{"roles": ["technical"]}]}) is None


def test_country_and_network_come_from_the_shipped_offline_database() -> None:
    tracer = HostTracer(resolve=lambda host: ["8.8.8.8", "127.0.0.1"], reverse=lambda ip: None)
    trace = tracer.trace("https://pics.example/a.jpg", {})
    public, loopback = trace["addresses"]
    assert (public["country"], public["as_org"]) == ("US", "GOOGLE")
    assert public["as_network"].startswith("8.8.")
    assert (trace["country"], trace["as_org"]) == ("US", "GOOGLE")
    assert loopback == {"ip": "127.0.0.1", "reverse": None}
