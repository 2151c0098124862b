"""Video URLs on pages: `<video src>`, `<source>` in `<video>`, `og:video`, links to video
files."""

from __future__ import annotations

from childguard.netguard.links import extract_page, is_media_url, is_video_url

PAGE = "https://example.org/gallery/index.html"


def test_video_tags_sources_and_meta() -> None:
    html = """<html><head>
      <meta property="og:video" content="/media/og.mp4">
      <meta property="og:video:secure_url" content="https://cdn.example.org/og-secure.mp4">
      <meta property="og:video:url" content="clips/og-url.webm">
      <meta name="twitter:player:stream" content="https://cdn.example.org/tw.mp4">
    </head><body>
      <video src="direct.mp4" poster="/poster.jpg"></video>
      <video controls><source src="/v/a.webm" type="video/webm">
        <source src="/v/a.mp4" type="video/mp4"></video>
      <source srcset="/not-a-video.jpg">
      <a href="/download/film.mkv">download</a> <a href="/page2">next</a>
      <video><source src="javascript:alert(1)"><source src="data:video/mp4;base64,AAAA"></video>
    </body></html>"""
    got = extract_page(html, PAGE)
    assert got.video_urls == [
        "https://example.org/gallery/direct.mp4",
        "https://example.org/v/a.webm",
        "https://example.org/v/a.mp4",
        "https://example.org/media/og.mp4",
        "https://cdn.example.org/og-secure.mp4",
        "https://example.org/gallery/clips/og-url.webm",
        "https://cdn.example.org/tw.mp4",
        "https://example.org/download/film.mkv",
    ]
    assert "https://example.org/poster.jpg" in got.image_urls
    assert set(got.video_urls) <= set(got.image_urls)  # one media list for the spider
    assert got.links == ["https://example.org/page2"]


def test_video_url_suffixes() -> None:
    assert is_video_url("https://x.org/a/b.MP4?x=1")
    assert is_media_url("https://x.org/a.webm") and is_media_url("https://x.org/a.jpg")
    assert not is_video_url("https://x.org/a.jpg") and not is_media_url("https://x.org/a")
