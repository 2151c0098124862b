"""The crawler: Scrapy spiders and pipelines that find re-posted images and record sightings.

Public entry points: `Watch` (what to crawl), `run_crawl` (crawl once, in a fresh
process), `extract_page` (what a page shows), and the sightings queries in
`childguard.crawl.sightings`. See docs/crawl.md.
"""

from childguard.crawl.watch import SiteProfile, Watch

__all__ = ["SiteProfile", "Watch"]
