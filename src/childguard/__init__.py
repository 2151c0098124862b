"""childguard: protect children's images online.

The package is library-first: the CLI, the API and the web UI call the plain
functions of the modules below them. See docs/ and ../shared/DESIGN.md for the
vocabulary (content, signal, bank, match, sighting, report, item, assessment).
"""

from childguard import forksafe as _forksafe  # noqa: F401  (installs the fork hook)

__version__ = "0.1.0"
