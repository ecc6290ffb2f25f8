"""``ecomlab-serve``: an exported bundle behind HTTP (FastAPI + uvicorn), on localhost by default.

    ecomlab-serve bundle=bundles/bpr_shop port=8000

    POST /recommend      {"user_ids": ["u1", "u2"], "k": 10, "exclude_seen": true,
                          "candidates": null, "histories": {"new-user": ["i3", "i9"]}}
    POST /similar-items  {"item_ids": ["i3"], "k": 5}
    POST /forecast       {"history": [{"unique_id": "a", "ds": "2024-01-01", "y": 3.0}, ...], "horizon": 12}
    GET  /health         liveness and what is loaded
    GET  /model          the model card as JSON (manifest, test metrics, README text)

Every request body is a pydantic model that forbids unknown fields; malformed JSON, unknown fields and
out-of-range values get 422 with pydantic's message, unknown item ids 404, a route the loaded bundle does not
serve (``/forecast`` on a recommender) 400. Requests carry batches of up to ``max_batch`` users, items or
series. Answers and fallbacks are those of :func:`ecomlab.load` (see :mod:`ecomlab.export.api`).
A bad ``bundle`` (missing, changed files) exits with code 2 and one message before the server starts.

Limits that keep one client from taking the server down (``configs/serve.yaml``): a body larger than
``max_body_bytes`` gets 413 before it is parsed (declared or streamed: the count stops at the limit); a
request whose model call runs longer than ``request_timeout_s`` gets 503 with a message (the call is
abandoned to finish in its worker thread; the client is answered and the server goes on); more than
``limit_concurrency`` open requests get uvicorn's 503. The load test (``scripts/bench_load.py``,
``experiments/serving/load_test.md``) shows the server under 16 concurrent clients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import hydra
import pandas as pd
from fastapi import FastAPI, HTTPException
from omegaconf import DictConfig
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecomlab.cli import quiet_third_party, user_errors_exit_2
from ecomlab.export.api import LoadedForecaster, LoadedRecommender, load
from ecomlab.utils import config_dir

RawId = str | int
T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(Strict):
    user_ids: list[RawId] = Field(min_length=1, description="raw user ids; unknown ones fall back")
    k: int = Field(10, ge=1, le=10_000)
    exclude_seen: bool = True
    candidates: list[RawId] | None = Field(None, min_length=1, description="rank only these raw item ids")
    histories: dict[str, list[RawId]] | None = Field(None, description="raw item ids of unknown users")


class SimilarItemsRequest(Strict):
    item_ids: list[RawId] = Field(min_length=1)
    k: int = Field(10, ge=1, le=10_000)


class Observation(Strict):
    unique_id: RawId
    ds: str
    y: float


class ForecastRequest(Strict):
    history: list[Observation] = Field(min_length=1, description="long format: one row per series and date")
    horizon: int | None = Field(None, ge=1, le=10_000)
    levels: list[int] | None = Field(None, description="central interval levels in (0, 100)")


class Ranked(BaseModel):
    query: RawId
    items: list[RawId]
    scores: list[float]
    source: str


class RankedResponse(BaseModel):
    results: list[Ranked]


class ForecastResponse(BaseModel):
    forecasts: list[dict[str, Any]]


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app (and JSON parsing) sees it.

    A declared ``Content-Length`` over the limit is refused at once; a body streamed without one (chunked) is
    counted while it arrives and refused as soon as it passes the limit, so it is never held whole in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def refuse(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        response = JSONResponse({"detail": f"request body of {size} bytes is larger than this server takes "
                                           f"(max_body_bytes={self.max_bytes})"}, status_code=413)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.refuse(scope, receive, send, declared.decode())
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away while sending
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self.refuse(scope, receive, send, f"more than {self.max_bytes}")
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: the client's disconnect, as the app expects

        await self.app(scope, replay, send)


def create_app(model: LoadedRecommender | LoadedForecaster, max_batch: int = 1024,
               max_body_bytes: int = 1 << 20, request_timeout_s: float = 10.0) -> FastAPI:
    """The HTTP app around one loaded bundle."""
    if max_batch < 1 or max_body_bytes < 1 or not request_timeout_s > 0:
        raise ValueError(f"max_batch={max_batch}, max_body_bytes={max_body_bytes}, "
                         f"request_timeout_s={request_timeout_s}: expected integers >= 1 and a timeout > 0")
    manifest = model.manifest
    app = FastAPI(title=f"ecomlab: {manifest['model']} on {manifest['dataset']}", version=manifest["ecomlab_version"])
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)

    async def within_timeout(fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread (the event loop keeps serving), answered with 503 after the timeout."""
        try:
            with anyio.fail_after(request_timeout_s):
                # abandon_on_cancel: the client gets its answer now; the thread finishes on its own
                return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
        except TimeoutError:
            raise HTTPException(503, f"the model did not answer within request_timeout_s={request_timeout_s} s; "
                                     "retry with a smaller batch or later") from None

    def check_batch(n: int, what: str) -> None:
        if n > max_batch:
            raise HTTPException(422, f"{n} {what} in one request; this server takes at most max_batch={max_batch}")

    def recommender() -> LoadedRecommender:
        if not isinstance(model, LoadedRecommender):
            raise HTTPException(400, f"this server holds a {manifest['task']} bundle; use POST /forecast")
        return model

    def ranked(results: list[Any]) -> RankedResponse:
        rows = [asdict(r) for r in results]
        out = [Ranked(query=row.pop("user_id") if "user_id" in row else row.pop("item_id"), **row) for row in rows]
        return RankedResponse(results=out)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "task": manifest["task"], "model": manifest["model"], "format": manifest["format"]}

    @app.get("/model")
    def card() -> dict[str, Any]:
        return model.card()

    @app.post("/recommend")
    async def recommend(request: RecommendRequest) -> RankedResponse:
        rec = recommender()
        check_batch(len(request.user_ids), "user ids")

        def run() -> RankedResponse:
            try:
                return ranked(rec.recommend(request.user_ids, k=request.k, exclude_seen=request.exclude_seen,
                                            candidates=request.candidates, histories=request.histories))
            except KeyError as err:
                raise HTTPException(404, err.args[0]) from None
            except ValueError as err:
                raise HTTPException(422, str(err)) from None

        return await within_timeout(run)

    @app.post("/similar-items")
    async def similar_items(request: SimilarItemsRequest) -> RankedResponse:
        rec = recommender()
        check_batch(len(request.item_ids), "item ids")

        def run() -> RankedResponse:
            try:
                return ranked(rec.similar_items(request.item_ids, k=request.k))
            except KeyError as err:
                raise HTTPException(404, err.args[0]) from None
            except ValueError as err:
                raise HTTPException(422, str(err)) from None

        return await within_timeout(run)

    @app.post("/forecast")
    async def forecast(request: ForecastRequest) -> ForecastResponse:
        if not isinstance(model, LoadedForecaster):
            raise HTTPException(400, f"this server holds a {manifest['task']} bundle; use POST /recommend")
        history = pd.DataFrame([row.model_dump() for row in request.history])
        check_batch(history["unique_id"].nunique(), "series")

        def run() -> ForecastResponse:
            try:
                frame = model.forecast(history, horizon=request.horizon, levels=request.levels)
            except ValueError as err:
                raise HTTPException(422, str(err)) from None
            frame["ds"] = frame["ds"].dt.strftime("%Y-%m-%dT%H:%M:%S")
            return ForecastResponse(forecasts=frame.to_dict(orient="records"))

        return await within_timeout(run)

    return app


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="serve")
@user_errors_exit_2
def main(cfg: DictConfig) -> None:
    import uvicorn

    quiet_third_party()
    model = load(str(cfg.bundle))  # a missing or changed bundle stops here, with exit code 2
    app = create_app(model, max_batch=int(cfg.max_batch), max_body_bytes=int(cfg.max_body_bytes),
                     request_timeout_s=float(cfg.request_timeout_s))
    print(f"serving {model.manifest['model']} ({model.manifest['task']}) from {cfg.bundle} "
          f"on http://{cfg.host}:{cfg.port}", flush=True)
    uvicorn.run(app, host=str(cfg.host), port=int(cfg.port), log_level=str(cfg.log_level),
                limit_concurrency=cfg.limit_concurrency, backlog=int(cfg.backlog))


if __name__ == "__main__":
    main()
