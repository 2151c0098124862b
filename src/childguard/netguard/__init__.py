# Owns outbound network access: the SSRF address policy, guarded fetching, and page media links.
"""The bottom-layer guard for every fetch childguard makes: the address policy and its Scrapy
resolver and middleware (`ssrf`), guarded HTTP fetching with redirects, size and time caps
(`fetch`), and the media URLs an HTML page shows (`links`)."""
