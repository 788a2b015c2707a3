"""schemathesis against the app's own OpenAPI: every operation, anonymous and as a planner.

Fixed seed, NUL bytes allowed, positive (schema-conforming) and negative (schema-breaking)
inputs, a bounded number of examples per operation and mode. Every answer must be no 5xx,
have a documented status code and match the documented response schema. Each operation runs in
its own rolled-back transaction (the ``app`` fixture), so the fuzzer's writes never stay.

The figures of the run (bad inputs tried / refused cleanly / 5xx / accepted by a write) are
written to tests/artifacts/fuzz-figures.json by the last test of the file.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from conftest import ARTIFACTS
from factories import bearer
from quarters.api import create_app
from quarters.settings import Settings

pytestmark = pytest.mark.slow

SEED = 8
MAX_EXAMPLES = 6  # per operation, mode (positive / negative) and caller (anonymous / planner)
MAX_EXAMPLES_ANALYSIS = 3  # the analyses take seconds each (their caps are another item)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# signing out would end the planner's session for the rest of that operation's cases
ANONYMOUS_ONLY = {("POST", "/api/auth/logout")}

# OGC API Features operations whose remaining 5xx can only be fixed in routes/features.py,
# collections.py or services.py (the OGC standards branch rewrites them). They still run; a
# failure there is an expected failure (xfail), a pass is reported as XPASS. The lead empties
# this after merging the standards branch.
# Today the fuzzer cannot reach them (features.py parses its query parameters by hand and does
# not declare them), so test_ogc_hand_parsed_integers below sends the inputs directly.
# OGC operations whose 5xx could only be fixed in the OGC read path: none since features.py
# declares its parameters and parses integers ASCII-only (kept so a regression is named).
KNOWN_OGC_GAPS: set[tuple[str, str]] = set()

OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in create_app(Settings()).openapi()["paths"].items()
    for method in item)
FIGURES: Counter = Counter()


def _cases(app, method: str, path: str, headers: dict[str, str] | None) -> None:  # noqa: ANN001
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    schema.config.generation.update(allow_x00=True)
    schema.config.update(request_timeout=120)
    examples = MAX_EXAMPLES_ANALYSIS if path.startswith("/api/analysis") else MAX_EXAMPLES
    operation = schema[path][method]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        negative = mode is GenerationMode.NEGATIVE

        @seed(SEED)
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:  # noqa: ANN001
            try:
                response = case.call(headers=headers)
            except UnicodeEncodeError:  # a lone surrogate the HTTP client itself cannot send
                FIGURES["not sendable"] += 1
                return
            FIGURES["requests"] += 1
            bad = case.meta is not None and case.meta.generation.mode.is_negative
            FIGURES["bad inputs tried"] += bad
            if response.status_code >= 500:
                FIGURES["5xx"] += 1
            elif bad and 400 <= response.status_code < 500:
                FIGURES["bad inputs refused cleanly"] += 1
            elif bad and method in WRITES and response.status_code < 300:
                FIGURES["bad inputs accepted by a write"] += 1
            elif bad:  # e.g. a read that ignores a value the schema does not allow
                FIGURES["bad inputs answered by a read"] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            if not negative:
                raise
            FIGURES["operations without a way to break the schema"] += 1  # nothing to negate


def _xfail_known(method: str, path: str) -> None:
    if (method, path) in KNOWN_OGC_GAPS:
        pytest.xfail(f"known OGC gap (fixed in the standards branch): {method} {path}")


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_anonymous(app, method: str, path: str) -> None:  # noqa: ANN001
    try:
        _cases(app, method, path, None)
    except Exception:
        _xfail_known(method, path)
        raise


@pytest.mark.parametrize("method,path", [o for o in OPERATIONS if o not in ANONYMOUS_ONLY],
                         ids=[f"{m} {p}" for m, p in OPERATIONS if (m, p) not in ANONYMOUS_ONLY])
def test_fuzz_planner(app, conn, method: str, path: str) -> None:  # noqa: ANN001
    headers = bearer(None, conn, "planner", "fuzz-planner")
    try:
        _cases(app, method, path, headers)
    except Exception:
        _xfail_known(method, path)
        raise


OGC_INTEGER_PROBES = [
    ("/api/collections/{collection_id}/items", "/api/collections/measures/items?{}", name)
    for name in ("limit", "offset", "district", "parent_id")
] + [("/api/collections/{collection_id}/items/{item_id}", "/api/collections/districts/items/{}",
      None)]


@pytest.mark.parametrize("value", ["²", "--5", "٣", "%2B5", "99999999999999999999"])
@pytest.mark.parametrize("path,url,name", OGC_INTEGER_PROBES,
                         ids=[f"{p[1]}-{p[2]}" for p in OGC_INTEGER_PROBES])
def test_ogc_hand_parsed_integers(client, path: str, url: str, name: str | None,  # noqa: ANN001
                                  value: str) -> None:
    response = client.get(url.format(f"{name}={value}" if name else value))
    if not 400 <= response.status_code < 500:  # a 500, or '٣' taken as 3
        _xfail_known("GET", path)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")


def test_fuzz_figures_written() -> None:
    """Runs last in this file: the figures of both runs, for docs/RELIABILITY.md."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "fuzz-figures.json").write_text(json.dumps(dict(FIGURES), indent=2) + "\n")
    assert FIGURES["requests"] == 0 or FIGURES["bad inputs tried"] > 0
