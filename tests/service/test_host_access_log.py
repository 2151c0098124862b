"""The host link's pages are private in the access log (no client address or user agent);
`test_report_form.py` checks it on the log of a real `childguard serve`."""

from __future__ import annotations

from childguard.service.access_log import is_private


def test_the_host_pages_are_private_prefixes_and_nothing_else_is() -> None:
    assert is_private("/host") and is_private("/host/notice/abc/removed")
    assert not is_private("/hostile") and not is_private("/v1/hotline/notices")
