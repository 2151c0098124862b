"""SSRF policy: addresses, URL spellings, and real crawls that must be refused."""

from __future__ import annotations

from typing import Any

import pytest

from childguard.crawl.runner import run_crawl
from childguard.crawl.watch import Watch
from childguard.netguard.ssrf import forbidden_reason, url_refusal


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "fd00:ec2::254",
        "ff02::1",
    ],
)
def test_forbidden_addresses(ip: str) -> None:
    assert forbidden_reason(ip) is not None


@pytest.mark.parametrize(
    "ip", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_allowed(ip: str) -> None:
    assert forbidden_reason(ip) is None


def test_metadata_reason_is_specific() -> None:
    assert forbidden_reason("169.254.169.254") == "cloud metadata address"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://2130706433/",
        "http://[::ffff:7f00:1]/",
        "http://localhost:8080/",
        "http://a.localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "http://[::1]:80/",
    ],
)
def test_url_spellings_refused(url: str) -> None:
    assert url_refusal(url) is not None


def test_public_url_allowed() -> None:
    assert url_refusal("https://pics.example/a.jpg") is None


def _watch(seed: str) -> Watch:
    return Watch(
        name="ssrf",
        seeds=(seed,),
        download_delay=0,
        obey_robots=False,
        robots_override_reason="test site has no robots.txt",
    )


def test_crawl_refuses_redirect_to_loopback_link_to_metadata_and_private_dns(
    site: Any, db_url: str, make_photo: Any
) -> None:
    """The seed is on a (static-)public address; everything private it leads to is refused."""
    site.page(
        "/",
        f"""<html><body>
        <a href="/go">redirect</a><img src="/go.jpg">
        <img src="http://169.254.169.254/latest/meta-data/iam.jpg">
        <img src="http://private.test:{site.port}/secret.jpg">
        <img src="http://127.0.0.1:{site.port}/direct.jpg"></body></html>""",
    )
    site.routes["/go"] = type(site.routes["/"])(
        b"", 302, "text/html", {"Location": f"http://127.0.0.1:{site.port}/inner"}
    )
    site.routes["/go.jpg"] = type(site.routes["/"])(
        b"", 302, "text/html", {"Location": f"http://127.0.0.1:{site.port}/inner.jpg"}
    )
    site.page("/inner", "<img src='/inner.jpg'>")
    for path in ("/secret.jpg", "/direct.jpg", "/inner.jpg"):
        site.image(path, make_photo(5))
    # Only the seed's host is exempted (allow_private scoped to one name); nothing it leads to is.
    stats = run_crawl(
        _watch(f"http://seed.test:{site.port}/"),
        store_url=db_url,
        static_hosts={"seed.test": ["127.0.0.1"], "private.test": ["10.0.0.7", "127.0.0.1"]},
        settings_overrides={"CHILDGUARD_ALLOW_PRIVATE_HOSTS": ["seed.test"]},
        hash_workers=0,
    )
    assert site.count("/") == 1  # the seed page was fetched
    assert site.count("/go") == 1 and site.count("/go.jpg") == 1
    assert (
        site.count("/inner") == 0 and site.count("/inner.jpg") == 0
    )  # redirects to 127.0.0.1 refused
    assert site.count("/secret.jpg") == 0  # private.test resolves only to private addresses
    assert site.count("/direct.jpg") == 0  # literal loopback refused
    assert stats.ssrf_refused >= 4  # redirect, metadata, private DNS, literal loopback


def test_crawl_of_loopback_seed_refused_without_allow_private(site: Any, db_url: str) -> None:
    site.page("/", "<img src='/a.jpg'>")
    stats = run_crawl(_watch(site.url("/")), store_url=db_url, hash_workers=0)
    assert site.count("/") == 0
    assert stats.pages == 0 and stats.ssrf_refused >= 1


def test_hostname_resolving_to_private_refused(site: Any, db_url: str) -> None:
    site.page("/", "<img src='/a.jpg'>")
    stats = run_crawl(
        _watch(f"http://rebind.test:{site.port}/"),
        store_url=db_url,
        hash_workers=0,
        static_hosts={"rebind.test": ["127.0.0.1"]},
    )
    assert site.count("/") == 0
    assert stats.ssrf_refused >= 1
