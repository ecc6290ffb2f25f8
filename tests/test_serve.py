"""The HTTP server: every endpoint through FastAPI's TestClient, its limits on a real granian server in this
process, and real ``ecomlab-serve`` subprocesses (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import ecomlab
import ecomlab.export
from ecomlab.export.writer import export_run
from ecomlab.serve import create_app
from test_export import TINY_SALES, TINY_SHOP, train_run

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    rec = train_run(root / "bpr", ["model=bpr", *TINY_SHOP, "trainer.max_epochs=1"])
    sales = train_run(root / "ets", ["model=ets", *TINY_SALES])
    return {"rec": export_run(rec, "onnx", root / "bpr_bundle"), "sales": export_run(sales, "native", root / "ets_bundle")}


@pytest.fixture(scope="module")
def rec_client(bundles: dict[str, Path]) -> TestClient:
    return TestClient(create_app(ecomlab.load(bundles["rec"]), max_batch=50))


@pytest.fixture(scope="module")
def sales_client(bundles: dict[str, Path]) -> TestClient:
    return TestClient(create_app(ecomlab.load(bundles["sales"])))


def test_health_and_model_card(rec_client: TestClient) -> None:
    health = rec_client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok", "task": "ranking", "model": "bpr",
                                                           "format": "onnx"}
    card = rec_client.get("/model").json()
    assert card["model"] == "bpr" and "test/ndcg@10" in card["metrics"]["metrics"]
    assert card["model_card"].startswith("# bpr on synthetic_shop") and "model/scores.onnx" in card["files"]


def test_recommend_batch_with_fallbacks_matches_python_api(rec_client: TestClient, bundles: dict[str, Path]) -> None:
    model = ecomlab.load(bundles["rec"])
    users = model.users.raw[:3].tolist()
    body = {"user_ids": [*users, "stranger", "newcomer"], "k": 5,
            "histories": {"newcomer": model.items.raw[:2].tolist()}}
    response = rec_client.post("/recommend", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["query"] for r in results] == body["user_ids"]
    assert [r["source"] for r in results] == ["model"] * 3 + ["popularity", "history"]
    expected = model.recommend(body["user_ids"], k=5, histories=body["histories"])
    assert [r["items"] for r in results] == [e.items for e in expected]
    assert results[0]["scores"] == pytest.approx(expected[0].scores)
    only = rec_client.post("/recommend", json={"user_ids": users[:1], "k": 3, "exclude_seen": False,
                                               "candidates": model.items.raw[:3].tolist()}).json()
    assert sorted(only["results"][0]["items"]) == sorted(model.items.raw[:3].tolist())


def test_similar_items(rec_client: TestClient, bundles: dict[str, Path]) -> None:
    items = ecomlab.load(bundles["rec"]).items.raw[:2].tolist()
    response = rec_client.post("/similar-items", json={"item_ids": items, "k": 4})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["query"] for r in results] == items and all(len(r["items"]) == 4 for r in results)
    assert items[0] not in results[0]["items"] and results[0]["source"] == "item_vectors"


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/recommend", {"user_ids": ["u0000"], "k": 5, "colour": "red"}, 422, "Extra inputs are not permitted"),
        ("/recommend", {"user_ids": []}, 422, "at least 1 item"),
        ("/recommend", {"user_ids": ["u0000"], "k": 0}, 422, "greater than or equal to 1"),
        ("/recommend", {"user_ids": ["u0000"], "k": "ten"}, 422, "valid integer"),
        ("/recommend", {"user_ids": [True]}, 422, "valid string"),  # JSON true is not the user id 1
        ("/recommend", {"k": 5}, 422, "Field required"),
        ("/recommend", {"user_ids": ["u0000"], "candidates": ["no-such-item"]}, 404, "unknown candidate item ids"),
        ("/recommend", {"user_ids": [f"u{i}" for i in range(51)]}, 422, "max_batch=50"),
        ("/similar-items", {"item_ids": ["no-such-item"]}, 404, "unknown item ids"),
        ("/similar-items", {"items": ["i0001"]}, 422, "Extra inputs"),
        ("/forecast", {"history": [{"unique_id": "a", "ds": "2024-01-01", "y": 1.0}]}, 400, "ranking bundle"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(rec_client: TestClient, path: str, body: dict, status: int,
                                            needle: str) -> None:
    response = rec_client.post(path, json=body)
    assert response.status_code == status, response.text
    assert needle in response.text


def test_malformed_json_is_422(rec_client: TestClient) -> None:
    response = rec_client.post("/recommend", content=b'{"user_ids": ["u0000",', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.text


def test_body_over_the_limit_is_413_declared_or_streamed(bundles: dict[str, Path]) -> None:
    client = TestClient(create_app(ecomlab.load(bundles["rec"]), max_body_bytes=2_000))
    users = ecomlab.load(bundles["rec"]).users.raw[:3].tolist()
    small = client.post("/recommend", json={"user_ids": users, "k": 3})
    assert small.status_code == 200, small.text
    big = {"user_ids": [f"user-{i:06d}" for i in range(400)], "k": 3}  # ~5,600 bytes of JSON
    declared = client.post("/recommend", json=big)
    assert declared.status_code == 413 and "max_body_bytes=2000" in declared.json()["detail"]
    body = json.dumps(big).encode()
    # no Content-Length: the body arrives in chunks and is counted as it comes
    streamed = client.post("/recommend", content=(body[i:i + 512] for i in range(0, len(body), 512)),
                           headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "more than 2000 bytes" in streamed.json()["detail"]
    assert client.post("/recommend", json={"user_ids": users, "k": 3}).status_code == 200


def test_slow_model_call_gets_503_and_the_server_keeps_serving(bundles: dict[str, Path]) -> None:
    slow = ecomlab.load(bundles["rec"])
    release = threading.Event()
    real_recommend = slow.recommend

    def stuck(*args: object, **kwargs: object) -> object:
        release.wait(timeout=30)  # a model call that hangs until the test lets it go
        return real_recommend(*args, **kwargs)

    slow.recommend = stuck  # type: ignore[method-assign]
    client = TestClient(create_app(slow, request_timeout_s=0.3))
    try:
        started = time.monotonic()
        response = client.post("/recommend", json={"user_ids": ["u0000"], "k": 3})
        waited = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert "request_timeout_s=0.3" in response.json()["detail"] and waited < 10
        # the stuck call still occupies its thread; everything else is answered
        assert client.get("/health").status_code == 200
        items = slow.items.raw[:1].tolist()
        assert client.post("/similar-items", json={"item_ids": items, "k": 2}).status_code == 200
    finally:
        release.set()
    assert client.post("/recommend", json={"user_ids": ["u0000"], "k": 3}).status_code == 200


def test_limits_must_be_positive(bundles: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="request_timeout_s=0"):
        create_app(ecomlab.load(bundles["rec"]), request_timeout_s=0)


RAW = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("client", "path", "body"),
    [
        ("rec", "/recommend", b'{"user_ids": ["u0000"], "k": 1e999}'),
        ("rec", "/recommend", b'{"user_ids": ["u0000"], "k": NaN}'),
        ("rec", "/recommend", b'{"user_ids": ["u0000"], "k": -Infinity}'),
        ("rec", "/recommend", b'{"user_ids": ["u0000"], "k": 2.5}'),
        ("rec", "/recommend", b'{"user_ids": [NaN]}'),
        ("rec", "/recommend", b'{"user_ids": ["u0000"], "candidates": [1e999]}'),
        ("rec", "/recommend", b'{"user_ids": ["x"], "histories": {"x": [Infinity]}}'),
        ("rec", "/recommend", b'{"user_ids": ["u0000"], "exclude_seen": NaN}'),
        ("rec", "/similar-items", b'{"item_ids": [-1e999], "k": 3}'),
        ("rec", "/similar-items", b'{"item_ids": ["i0001"], "k": NaN}'),
        ("sales", "/forecast", b'{"history": [{"unique_id": "a", "ds": "2024-01-01", "y": NaN}]}'),
        ("sales", "/forecast", b'{"history": [{"unique_id": "a", "ds": "2024-01-01", "y": 1e999}]}'),
        ("sales", "/forecast", b'{"history": [{"unique_id": NaN, "ds": "2024-01-01", "y": 1}]}'),
        ("sales", "/forecast", b'{"history": [{"unique_id": "a", "ds": "2024-01-01", "y": 1}], "horizon": 1e999}'),
        ("sales", "/forecast", b'{"history": [{"unique_id": "a", "ds": "2024-01-01", "y": 1}], "levels": [NaN]}'),
    ],
)
def test_numbers_that_are_not_finite_integers_are_422_anywhere(bundles: dict[str, Path], client: str, path: str,
                                                             body: bytes) -> None:
    # pydantic refuses these, but its error echoes the input: inf and NaN used to fail the 422's own rendering (500)
    app = create_app(ecomlab.load(bundles[client]))
    response = TestClient(app, raise_server_exceptions=False).post(path, content=body, headers=RAW)
    assert response.status_code == 422, response.text
    assert any(f"should be a {what}" in response.text for what in ("finite number", "valid integer",
                                                                   "valid boolean")), response.text
    json.loads(response.text)  # strict JSON: no bare NaN or Infinity in the answer


def test_ids_that_utf8_cannot_carry_come_back_escaped(rec_client: TestClient) -> None:
    # a lone surrogate is valid JSON (\ud800) but not encodable as UTF-8: an unknown user is echoed as the query
    response = rec_client.post("/recommend", content=b'{"user_ids": ["\\ud800"], "k": 2}', headers=RAW)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["query"] == "\ud800"
    missing = rec_client.post("/similar-items", content=b'{"item_ids": ["\\udfff"]}', headers=RAW)
    assert missing.status_code == 404 and "\\udfff" in missing.text


def test_an_answer_over_max_answer_items_is_refused_before_any_work(bundles: dict[str, Path]) -> None:
    model = ecomlab.load(bundles["rec"])
    app = create_app(model, max_answer_items=100)
    client = TestClient(app)
    users = model.users.raw[:10].tolist()
    assert client.post("/recommend", json={"user_ids": users, "k": 10}).status_code == 200
    big = client.post("/recommend", json={"user_ids": [*users, users[0]], "k": 10})
    assert big.status_code == 422 and "11 users x k=10 = 110 entries" in big.text and "max_answer_items=100" in big.text
    # k past the catalogue or the candidates is bounded by them, not refused
    assert client.post("/recommend", json={"user_ids": users, "k": 10_000,
                                           "candidates": model.items.raw[:5].tolist()}).status_code == 200
    assert client.post("/similar-items", json={"item_ids": model.items.raw[:2].tolist(), "k": 10_000}).status_code == 422
    assert app.state.model_calls.chunks == 2  # the refused requests computed nothing
    sales = TestClient(create_app(ecomlab.load(bundles["sales"]), max_answer_items=100))
    rows = [{"unique_id": s, "ds": f"2020-{m:02d}-01", "y": 1.0 + m} for s in ("a", "b") for m in range(1, 13)]
    refused = sales.post("/forecast", json={"history": rows, "horizon": 51})
    assert refused.status_code == 422 and "2 series x horizon 51 = 102 entries" in refused.text


def _computing_threads() -> list[str]:
    """Names of the threads whose stack is inside the bundle's model code (``ecomlab.export``) right now."""
    package = str(Path(ecomlab.export.__file__).parent) + os.sep
    names = {t.ident: t.name for t in threading.enumerate()}
    return [names.get(ident, str(ident)) for ident, frame in sys._current_frames().items()
            if any(s.filename.startswith(package) for s in traceback.extract_stack(frame))]


def test_a_timed_out_request_stops_its_work(bundles: dict[str, Path]) -> None:
    model = ecomlab.load(bundles["rec"])
    # one user per chunk (chunk_scores = the catalogue size): 1,000 model calls, far past a 50 ms deadline
    app = create_app(model, request_timeout_s=0.05, chunk_scores=model.n_items)
    client = TestClient(app)
    users = (model.users.raw.tolist() * 10)[:1000]
    response = client.post("/recommend", json={"user_ids": users, "k": 5})
    assert response.status_code == 503, response.text
    assert "request_timeout_s=0.05" in response.json()["detail"] and "stopped" in response.json()["detail"]
    calls = app.state.model_calls
    deadline = time.monotonic() + 30  # one chunk is one user's scores: the thread is gone long before this
    while (calls.in_flight or _computing_threads()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.in_flight == 0 and not _computing_threads(), (calls, _computing_threads())
    assert calls.stopped == 1 and calls.chunks < len(users), calls  # it stopped early, not after all 1,000 users
    done = calls.chunks
    time.sleep(0.2)
    assert calls.chunks == done  # and nothing computes on afterwards
    fast = TestClient(create_app(model, request_timeout_s=30, chunk_scores=model.n_items))
    assert fast.post("/recommend", json={"user_ids": users[:50], "k": 5}).status_code == 200


class LiveServer:
    """``app`` on a real granian server (:class:`ecomlab.serve.HTTPServer`) in a thread of this process."""

    def __init__(self, app: object, **options: float) -> None:
        from ecomlab.serve import HTTPServer

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = HTTPServer(app, "127.0.0.1", self.port, **options)  # type: ignore[arg-type]
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import asyncio

        asyncio.run(self.server.serve(on_listening=self.ready.set))

    def __enter__(self) -> LiveServer:
        self.thread.start()
        assert self.ready.wait(60), "the server did not start listening"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(timeout=60)

    def until_closed(self, payload: bytes, wait_s: float = 30) -> bytes:
        """Send ``payload`` on a new connection and read until the server closes it; what it answered."""
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.settimeout(wait_s)  # a socket the server keeps open fails the test here (socket.timeout)
            sock.sendall(payload)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data


def test_idle_slow_header_and_idle_keep_alive_sockets_are_closed(bundles: dict[str, Path]) -> None:
    app = create_app(ecomlab.load(bundles["rec"]), body_timeout_s=1)
    with LiveServer(app, header_timeout_s=1) as live:
        assert live.until_closed(b"") == b""  # connected, never sent a byte
        assert live.until_closed(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a") == b""  # head never ends
        answered = live.until_closed(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # then idle keep-alive
        assert answered.startswith(b"HTTP/1.1 200") and answered.endswith(b'"format":"onnx"}')
        late = live.until_closed(b"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                                 b"\r\nContent-Length: 100\r\n\r\n{\"user_ids\"")  # a body that stops coming
        assert late.startswith(b"HTTP/1.1 408") and b"body_timeout_s=1 s" in late
        # everyone else is served throughout
        users = ecomlab.load(bundles["rec"]).users.raw[:2].tolist()
        assert httpx.post(f"{live.url}/recommend", json={"user_ids": users, "k": 3}).status_code == 200


def test_model_calls_past_limit_concurrency_get_503_at_once(bundles: dict[str, Path]) -> None:
    model = ecomlab.load(bundles["rec"])
    app = create_app(model, request_timeout_s=30, chunk_scores=model.n_items, limit_concurrency=1)
    users = (model.users.raw.tolist() * 20)[:1000]
    with LiveServer(app) as live:
        first: list[httpx.Response] = []
        worker = threading.Thread(target=lambda: first.append(httpx.post(
            f"{live.url}/recommend", json={"user_ids": users, "k": 5}, timeout=60)))
        worker.start()
        deadline = time.monotonic() + 30
        while app.state.model_calls.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        # the first is 1,000 model calls of one user each: it is still computing when this one arrives
        second = httpx.post(f"{live.url}/recommend", json={"user_ids": users[:1], "k": 5}, timeout=60)
        worker.join(timeout=60)
        assert second.status_code == 503 and "limit_concurrency=1" in second.text, second.text
        assert first and first[0].status_code == 200, first
        assert httpx.get(f"{live.url}/health").status_code == 200


def test_forecast_endpoint(sales_client: TestClient, bundles: dict[str, Path]) -> None:
    history = [{"unique_id": "shop", "ds": f"20{10 + m // 12}-{m % 12 + 1:02d}-01", "y": 100.0 + m % 12 * 3 + m}
               for m in range(48)]
    response = sales_client.post("/forecast", json={"history": history, "horizon": 6})
    assert response.status_code == 200, response.text
    rows = response.json()["forecasts"]
    assert len(rows) == 6 and rows[0]["ds"].startswith("2014-01-01") and rows[-1]["ds"].startswith("2014-06-01")
    assert {"y_hat", "lo_80", "hi_95", "q0.1"} <= set(rows[0])
    assert all(r["lo_95"] <= r["lo_80"] <= r["y_hat"] <= r["hi_80"] <= r["hi_95"] for r in rows)
    bad = sales_client.post("/forecast", json={"history": [{**history[0], "y": "NaN"}]})
    assert bad.status_code == 422 and "finite number" in bad.text
    assert sales_client.post("/forecast", json={"history": history, "horizon": 0}).status_code == 422
    assert sales_client.post("/recommend", json={"user_ids": ["u0000"]}).status_code == 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(bundle: Path, port: int, workdir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "ecomlab-serve"), f"bundle={bundle}", f"port={port}",
                             f"hydra.run.dir={workdir}", *extra], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _first_line(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    """The first line the process prints (``""`` if it exits or stays silent for ``timeout`` seconds)."""
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""


@pytest.mark.slow  # starts two real server processes: interpreter, torch and onnxruntime imports take ~10 s each
def test_real_server_subprocess(bundles: dict[str, Path], tmp_path: Path) -> None:
    port = _free_port()
    proc = _serve(bundles["rec"], port, tmp_path / "first")
    try:
        url = f"http://127.0.0.1:{port}"
        line = _first_line(proc)
        assert line == f"serving bpr (ranking) from {bundles['rec']} on {url}\n", (line, proc.poll())
        # the line comes once the port accepts connections: no retry needed
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        response = httpx.post(f"{url}/recommend", json={"user_ids": ["u0000", "nobody"], "k": 3}, timeout=10)
        assert response.status_code == 200 and len(response.json()["results"]) == 2
        assert httpx.post(f"{url}/recommend", json={"user_ids": ["u0000"], "extra": 1}, timeout=10).status_code == 422
        # a second server on the same port is refused; granian alone would share it (SO_REUSEPORT)
        second = _serve(bundles["rec"], port, tmp_path / "second")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2 and out == "", (second.returncode, out, err)
        assert err.count("\n") == 1 and err.startswith(f"error: port={port}: cannot listen on 127.0.0.1:{port}"), err
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err  # SIGTERM: a clean stop


@pytest.mark.slow  # a console-script subprocess: ~8 s of imports on the shared machine
def test_a_busy_port_exits_2_without_claiming_to_serve(bundles: dict[str, Path], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _serve(bundles["rec"], port, tmp_path / "hydra")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (proc.returncode, out, err)
    assert out == "" and "serving" not in err, (out, err)
    assert err == (f"error: port={port}: cannot listen on 127.0.0.1:{port} (Address already in use); is another "
                   "server running there? choose another port=\n")


@pytest.mark.slow  # a console-script subprocess: ~6 s of imports on the shared machine
def test_unknown_bundle_path_exits_2_with_a_message(tmp_path: Path) -> None:
    proc = subprocess.run([str(BIN / "ecomlab-serve"), f"bundle={tmp_path}/nowhere", "port=1",
                           f"hydra.run.dir={tmp_path}/hydra"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"bundle={tmp_path}/nowhere: no such directory" in proc.stderr


def _bench_load() -> object:
    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_load.py"
    spec = importlib.util.spec_from_file_location("bench_load", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # a real server and 2,000 requests: ~1 min on 2 shared cores
def test_load_from_16_clients_is_served_without_errors(bundles: dict[str, Path], tmp_path: Path) -> None:
    bench = _bench_load()
    port = _free_port()
    server = bench.start_server(bundles["rec"], port, tmp_path, "max_body_bytes=4096")
    users = ecomlab.load(bundles["rec"]).users.raw.tolist()
    url = f"http://127.0.0.1:{port}"
    try:
        result = bench.run_load(url, 2_000, 16, lambda i: {"user_ids": [users[i % len(users)]], "k": 5},
                                max_seconds=400, expect_items=5)
        assert result["requests_sent"] == 2_000 and result["errors"] == 0, result
        # the limits still hold once the load is over
        big = httpx.post(f"{url}/recommend", json={"user_ids": [f"u{i:05d}" for i in range(1000)]}, timeout=10)
        assert big.status_code == 413 and "max_body_bytes=4096" in big.text
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        bench.stop_server(server)


@pytest.mark.slow  # a real server, 1,000 sockets held for 20 s: ~45 s on 2 shared cores
def test_a_thousand_held_sockets_do_not_deny_health(bundles: dict[str, Path], tmp_path: Path) -> None:
    bench = _bench_load()
    port = _free_port()
    server = bench.start_server(bundles["rec"], port, tmp_path)  # header_timeout_s: 5 s, as configs/serve.yaml
    url = f"http://127.0.0.1:{port}"
    try:
        with bench.HeldConnections("127.0.0.1", port, 1000) as held:
            assert held.wait_open(120), held.stats()
            # a fresh connection every 50 ms for 20 s; a probe unanswered after 5 s counts as a failure
            probes = bench.probe_health(url, seconds=20, timeout=5.0)
            stats = held.stats()
        assert probes["probes"] > 20 and probes["ok"] == probes["probes"], probes
        # the sockets really were held (reopened as the server closed them) and the server closed both kinds
        assert stats["held_mean"] > 900 and stats["connect_errors"] == 0, stats
        assert stats["closed_by_server"]["idle"] > 0 and stats["closed_by_server"]["slow_headers"] > 0, stats
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        bench.stop_server(server)
