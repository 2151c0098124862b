"""The hotline: anonymous reports of URLs, the items they bring in (deduplicated across every
report and crawl), the analysts' review and classification."""
