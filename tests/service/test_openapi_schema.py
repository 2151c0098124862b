"""Property-based tests of the OpenAPI document against the running server (schemathesis):
for every operation, generated requests, sent with a key of the operation's owner role,
never get a 5xx, and every answer's status code, content type and body are the ones the
document gives. Bounded: a few examples an operation, well under a minute in all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from childguard.banks import EntryRecord, add_entries, create_bank
from childguard.service import Settings, create_app
from childguard.service.auth import RoleRule, api_routes, rule_of

from .conftest import LiveServer, live_server

APP = create_app(Settings(db_url="sqlite://"))
# The coverage phase (schemathesis' boundary and negative cases, built while the suite is
# collected) is left out: it costs more than the rest of this module in every test worker.
SCHEMA = schemathesis.openapi.from_dict(
    APP.openapi(),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
)
# (METHOD, path template) -> the role whose key the operation is called with (None: public).
OWNER = {
    (method.upper(), route.path): (rule.role if isinstance(rule, RoleRule) else None)
    for route in api_routes(APP.routes)
    if (rule := rule_of(route)) is not None
    for method in route.methods
}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 4
BUDGET_SECONDS = 60.0
_STARTED: list[float] = []


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the whole module, with a bank and an entry for the generated calls."""
    base: Path = tmp_path_factory.mktemp("schema")
    with live_server(
        f"sqlite:///{base / 'store.db'}", base / "index", max_request_bytes=256 * 1024
    ) as running:
        create_bank(running.store, "KNOWN", "known-abuse", actor="test")
        add_entries(running.store, "KNOWN", [EntryRecord("pdq", "f" * 64)], actor="test")
        _STARTED.append(time.monotonic())
        yield running


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, api: LiveServer) -> None:
    if _STARTED and time.monotonic() - _STARTED[0] > BUDGET_SECONDS:
        pytest.skip(f"the schema tests' {BUDGET_SECONDS:.0f} s budget is spent")
    role = OWNER.get((case.method.upper(), case.path))
    headers = {"Authorization": f"Bearer {api.keys[role]}"} if role else {}
    case.call_and_validate(base_url=api.url, headers=headers, checks=CHECKS, timeout=30)
