"""SSRF through the proxy setting and the host exemption: real crawls against real local servers
on 127.0.0.1 (a recording proxy, a second port of an exempt host), and the peer check that a
proxied response gets."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse

from childguard.crawl.runner import run_crawl
from childguard.crawl.watch import Watch
from childguard.errors import InputFormatError
from childguard.netguard.ssrf import Exemption, SsrfGuardMiddleware, proxy_refusal
from local_http import serving


class Recorder:
    """A local server that answers every request with a small page and records its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with recorder.lock:
                    recorder.lines.append(self.requestline)
                body = b"<html><body>proxied page</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    with serving(rec.handler()) as url:
        yield rec, url


def _watch(seed: str, proxy: str | None = None) -> Watch:
    return Watch(
        name="ssrf-proxy",
        seeds=(seed,),
        download_delay=0,
        obey_robots=False,
        robots_override_reason="test site has no robots.txt",
        proxy=proxy,
        max_pages=2,
    )


def test_loopback_proxy_refused_without_allow_private(
    recorder: tuple[Recorder, str], db_url: str
) -> None:
    rec, proxy = recorder
    rec.lines.clear()
    stats = run_crawl(_watch("http://example.com/", proxy), store_url=db_url, hash_workers=0)
    assert rec.lines == []  # not one connection through the loopback proxy
    assert stats.ssrf_refused >= 1


def test_proxy_exempted_by_its_exact_host_and_port_is_used(
    recorder: tuple[Recorder, str], db_url: str
) -> None:
    rec, proxy = recorder
    rec.lines.clear()
    endpoint = proxy.removeprefix("http://")
    run_crawl(
        _watch("http://example.com/", proxy),
        store_url=db_url,
        hash_workers=0,
        settings_overrides={"CHILDGUARD_ALLOW_PRIVATE_HOSTS": [endpoint]},
    )
    assert rec.lines and rec.lines[0].startswith("GET http://example.com/")


@pytest.mark.parametrize(
    "proxy",
    [
        "http://169.254.169.254:80",
        "http://[::ffff:169.254.169.254]:80",
        "http://0.0.0.0:3128",
        "http://224.0.0.1:3128",
        "socks5://proxy.example:1080",
    ],
)
def test_proxy_no_proxy_may_have_is_refused_when_the_watch_is_made(proxy: str) -> None:
    with pytest.raises(InputFormatError):
        _watch("http://example.com/", proxy)


def test_proxy_refusal_checks_every_address_of_its_host() -> None:
    assert proxy_refusal("http://px.test:3128", {"px.test": ["93.184.216.34"]}) is None
    why = proxy_refusal("http://px.test:3128", {"px.test": ["93.184.216.34", "10.0.0.8"]})
    assert why is not None and "10.0.0.8" in why
    assert proxy_refusal("http://127.0.0.1:3128") is not None


def test_exemption_covers_only_the_port_it_names_or_the_seed_names() -> None:
    exempt = Exemption(["seed.test", "127.0.0.1:5000"], ["http://seed.test:4000/"])
    assert exempt.covers("seed.test", 4000)
    assert not exempt.covers("seed.test", 4001)
    assert not exempt.covers("seed.test", 80)
    assert exempt.covers_url("http://127.0.0.1:5000/a.jpg")
    assert not exempt.covers_url("http://127.0.0.1:5001/a.jpg")
    assert Exemption(["demo.test"]).covers("demo.test", 80)  # no seed names it: default ports


def test_exempt_host_is_not_exempt_on_another_port(
    site: Any, recorder: tuple[Recorder, str], db_url: str, make_photo: Any
) -> None:
    rec, other = recorder
    rec.lines.clear()
    other_port = other.rsplit(":", 1)[1]
    site.page("/", f"<html><body><img src='http://seed.test:{other_port}/x.jpg'></body></html>")
    stats = run_crawl(
        _watch(f"http://seed.test:{site.port}/"),
        store_url=db_url,
        static_hosts={"seed.test": ["127.0.0.1"]},
        settings_overrides={"CHILDGUARD_ALLOW_PRIVATE_HOSTS": ["seed.test"]},
        hash_workers=0,
    )
    assert site.count("/") == 1  # the seed's own port is exempt
    assert rec.lines == []  # the same host on another port is not
    assert stats.ssrf_refused >= 1


def _response(url: str, peer: str) -> HtmlResponse:
    return HtmlResponse(url, body=b"<html></html>", ip_address=ipaddress.ip_address(peer))


def test_proxied_response_from_a_private_peer_is_refused() -> None:
    guard = SsrfGuardMiddleware(False)
    request = Request("http://example.com/", meta={"proxy": "http://px.example:3128"})
    with pytest.raises(IgnoreRequest):
        guard.process_response(request, _response(request.url, "127.0.0.1"))
    public = _response(request.url, "93.184.216.34")
    assert guard.process_response(request, public) is public


def test_proxied_response_through_an_exempt_proxy_passes() -> None:
    guard = SsrfGuardMiddleware(False, ["127.0.0.1:3128"])
    request = Request("http://example.com/", meta={"proxy": "http://127.0.0.1:3128"})
    response = _response(request.url, "127.0.0.1")
    assert guard.process_response(request, response) is response
    other = Request("http://example.com/", meta={"proxy": "http://127.0.0.1:3129"})
    with pytest.raises(IgnoreRequest):
        guard.process_response(other, _response(other.url, "127.0.0.1"))
