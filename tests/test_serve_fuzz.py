"""The API fuzzed from its own OpenAPI schema (schemathesis + hypothesis) against real ``ecomlab-serve``
processes on 127.0.0.1: no answer may be a 5xx, and every answer must be one the schema documents.

Bounded: ``MAX_EXAMPLES`` generated requests per operation (5 operations per server) and mode (bodies that fit
the schema, and bodies that break it), each with a client timeout; derandomized, so a failure reproduces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")  # the dev extra installs it

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.errors import FailureGroup  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402

from test_serve import _bench_load, _free_port, bundles  # noqa: E402, F401  (bundles: the module's fixture)

MAX_EXAMPLES = 100
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


def _server(bundle: Path, workdir: Path) -> Iterator[str]:
    bench = _bench_load()
    port = _free_port()
    # small limits, so that the fuzzer also reaches 413, 422 over max_batch and max_answer_items
    server = bench.start_server(bundle, port, workdir, "max_batch=64", "max_body_bytes=65536",
                                "max_answer_items=20000", "request_timeout_s=20")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        bench.stop_server(server)
        # a failure the client never saw as a 5xx (a broken answer) still leaves its traceback in the log
        log = (workdir / "server.log").read_text()
        assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def rec_url(bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    yield from _server(bundles["rec"], tmp_path_factory.mktemp("fuzz_rec"))


@pytest.fixture(scope="module")
def sales_url(bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    yield from _server(bundles["sales"], tmp_path_factory.mktemp("fuzz_sales"))


def fuzz(url: str) -> tuple[int, list[str]]:
    """Every operation of the server's OpenAPI schema, ``MAX_EXAMPLES`` generated cases each: the number of
    requests sent and one line per distinct failure (operation, what failed, the body that made it fail).

    Driven through hypothesis directly rather than schemathesis' pytest plugin, whose lazy fixtures need
    pytest internals that pytest 9 no longer has.
    """
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    sent = 0
    failures: dict[tuple[str, str], str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # a GET without parameters has no request that breaks its schema
    runs = [(op, mode) for op in operations for mode in GenerationMode if op.method.upper() == "POST"
            or mode == GenerationMode.POSITIVE]
    for operation, mode in runs:

        @given(case=operation.as_strategy(mode))
        @FUZZ
        def one(case: Any) -> None:
            nonlocal sent
            sent += 1
            response = case.call(timeout=30)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as err:
                what = " | ".join(line.strip() for line in str(err).splitlines() if line.strip().startswith("- "))
                failures.setdefault((case.operation.label, what), f"{response.status_code} for {case.body!r:.300}")

        one()
    return sent, [f"{label}: {what}: {example}" for (label, what), example in failures.items()]


@pytest.mark.slow  # ~750 requests to a real server, after training a tiny bundle: ~1 min
def test_fuzz_recommender_api(rec_url: str) -> None:
    sent, failures = fuzz(rec_url)
    assert sent >= 6 * MAX_EXAMPLES and not failures, "\n".join(failures)


@pytest.mark.slow  # ~750 requests; ETS refits on every history it is sent: ~1 min
def test_fuzz_forecaster_api(sales_url: str) -> None:
    sent, failures = fuzz(sales_url)
    assert sent >= 6 * MAX_EXAMPLES and not failures, "\n".join(failures)
