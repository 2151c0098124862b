# Owns the service's server-rendered pages: their routes, templates and page headers.
"""The web pages: Jinja2 templates under `templates/`, no JavaScript and nothing fetched from
elsewhere. `pages` has the sign-in page; the organisation and hotline pages build on its
`base.html`."""
