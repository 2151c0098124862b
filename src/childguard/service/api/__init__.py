# Owns the service's routers: health checks and the HMA-compatible API (our /v1 comes next).
"""The routes of the service. Each route is thin: it reads the request, calls a plain
function and answers its result; each declares its owner role (`childguard.service.auth`)."""
