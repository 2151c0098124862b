# Owns guarded fetching by URL (API, hotline): the address policy, redirects, size and time caps.
"""Fetch what a caller names by URL (`/h/hash?url=`, `/m/lookup?url=`,
`/c/bank/<name>/content?url=`, the hotline's reported URLs) under the SSRF policy
(`childguard.netguard.ssrf`):

- the URL's spelling is checked first (scheme, literal addresses in any form, local names);
- every address its host resolves to must be allowed, and so must the address the response
  actually came from (a DNS answer that changed in between is caught there, and the body is
  never read);
- redirects are followed by hand, at most 5, each checked the same way;
- the body is read up to `max_bytes` and no further.

`allow_private` (the `CHILDGUARD_ALLOW_PRIVATE` setting, for tests and local demos) lifts the
address checks; the scheme check stays.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from childguard.errors import ChildguardError
from childguard.netguard.ssrf import forbidden_reason, url_refusal

MAX_REDIRECTS = 5
# getaddrinfo's answers that the name does not exist (not that the resolver failed).
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class FetchRefused(ChildguardError):
    """The URL may not be fetched, or its answer is not usable; the message says why.

    `reason` says which, for callers that act on it: `policy` (the address policy or the
    scheme), `unresolvable` (the host name does not exist), `resolve-failed` (the resolver
    failed, perhaps for a while), `status` (an HTTP error; `status` holds it), `too-large`,
    `redirects`, `network` (a connection refused, reset or timed out)."""

    def __init__(self, message: str, *, reason: str = "policy", status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    data: bytes
    content_type: str  # the response's Content-Type, lower case, without parameters
    headers: dict[str, str] = field(default_factory=dict)  # the final response's, lower-case names


def _check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"scheme {parts.scheme!r} is not fetched (only http and https)")
    if allow_private:
        return
    reason = url_refusal(url)
    if reason:
        raise FetchRefused(f"{url} is not fetched: {reason}")
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        gone = isinstance(exc, socket.gaierror) and exc.errno in _NO_SUCH_NAME
        raise FetchRefused(
            f"cannot resolve {host!r}: {exc}", reason="unresolvable" if gone else "resolve-failed"
        ) from None
    for info in infos:
        address = str(info[4][0])
        why = forbidden_reason(address)
        if why:
            raise FetchRefused(f"{url} is not fetched: {host} resolves to a {why}")


def check_fetchable(url: str, *, allow_private: bool = False) -> None:
    """FetchRefused when the policy above forbids `url` (its spelling or any address its
    host resolves to); for URLs the service will send to later, such as webhooks."""
    _check_url(url, allow_private)


def _check_peer(response: httpx.Response, url: str) -> None:
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer:
        why = forbidden_reason(str(peer[0]))
        if why:
            raise FetchRefused(f"{url} is not fetched: it answered from a {why}")


def fetch(
    url: str, *, max_bytes: int, timeout: float = 30.0, allow_private: bool = False
) -> Fetched:
    """GET `url` under the policy above; FetchRefused saying why it could not."""
    current = url
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(current, allow_private)
            try:
                with client.stream("GET", current) as response:
                    if not allow_private:
                        _check_peer(response, current)
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise FetchRefused(
                            f"{current} answered {response.status_code}",
                            reason="status",
                            status=response.status_code,
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchRefused(
                                f"{current} is over {max_bytes} bytes", reason="too-large"
                            )
                    kind = response.headers.get("content-type", "")
                    return Fetched(
                        current,
                        bytes(body),
                        kind.split(";")[0].strip().lower(),
                        {k.lower(): v for k, v in response.headers.items()},
                    )
            except httpx.HTTPError as exc:
                raise FetchRefused(f"cannot fetch {current}: {exc}", reason="network") from None
    raise FetchRefused(f"{url} redirected more than {MAX_REDIRECTS} times", reason="redirects")
