"""The HTTP server: every endpoint through FastAPI's TestClient, and one real uvicorn subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import ecomlab
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
    assert bad.status_code == 422 and "not a finite number" in bad.text
    assert sales_client.post("/forecast", json={"history": history, "horizon": 0}).status_code == 422
    assert sales_client.post("/recommend", json={"user_ids": ["u0000"]}).status_code == 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # starts a real server process: interpreter, torch and onnxruntime imports take ~10 s here
def test_real_server_subprocess(bundles: dict[str, Path], tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(BIN / "ecomlab-serve"), f"bundle={bundles['rec']}", f"port={port}",
                             f"hydra.run.dir={tmp_path}/hydra"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.3)
        response = httpx.post(f"{url}/recommend", json={"user_ids": ["u0000", "nobody"], "k": 3}, timeout=10)
        assert response.status_code == 200 and len(response.json()["results"]) == 2
        assert httpx.post(f"{url}/recommend", json={"user_ids": ["u0000"], "extra": 1}, timeout=10).status_code == 422
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
