"""``ecomlab-serve``: an exported bundle behind HTTP (FastAPI on granian), on localhost by default.

    ecomlab-serve bundle=bundles/bpr_shop port=8000

    POST /recommend      {"user_ids": ["u1", "u2"], "k": 10, "exclude_seen": true,
                          "candidates": null, "histories": {"new-user": ["i3", "i9"]}}
    POST /similar-items  {"item_ids": ["i3"], "k": 5}
    POST /forecast       {"history": [{"unique_id": "a", "ds": "2024-01-01", "y": 3.0}, ...], "horizon": 12}
    GET  /health         liveness and what is loaded
    GET  /model          the model card as JSON (manifest, test metrics, README text)

Every request body is a pydantic model that forbids unknown fields; malformed JSON, unknown fields, out-of-range
values and numbers that are not finite (``1e999``, ``NaN``) get 422 with pydantic's message, unknown item ids
404, a route the loaded bundle does not serve (``/forecast`` on a recommender) 400. Answers and fallbacks are
those of :func:`ecomlab.load` (see :mod:`ecomlab.export.api`); a forecast value that is not finite is sent as
``null``. A bad ``bundle`` (missing, changed files), a bad limit or a port that cannot be bound exits with
code 2 and one line before anything claims to serve.

Limits that keep one client from taking the server down (``configs/serve.yaml``):

* ``header_timeout_s``: a connection that has not sent a whole request head this long after it opened (or
  after its previous answer) is closed, so idle, slow-header and idle keep-alive sockets cannot pile up;
  ``max_connections`` connections are served at once and the soft open-file limit is raised to hold them.
* ``max_body_bytes``: a larger body gets 413 before it is parsed (declared or streamed: the count stops at
  the limit); ``body_timeout_s``: a body still arriving after this long gets 408.
* ``max_batch`` users, items or series per request and ``max_answer_items`` ranked items or forecast rows
  per answer, checked before any work starts (422 naming the bound).
* ``request_timeout_s``: a model call still running after this long gets 503. The call runs in a worker thread
  in chunks of at most ``chunk_scores`` scores (recommendations, similar items) or ``chunk_series`` series
  (forecasts) and checks its deadline between chunks, so a timed-out call stops within one chunk instead of
  computing on for nobody; ``limit_concurrency`` model calls at once, more get 503 at once.

Why granian. The server must keep answering ``/health`` while a client holds 1,000 idle or slow-header
sockets. Measured with the same app on this 2-core machine (``experiments/serving/held_connections.md``,
``scripts/bench_load.py --held 1000``; /health probed on fresh connections for 30 s):

* uvicorn 0.55, as ecomlab-serve ran it before: no timeout for a connection that never completes its request
  head (its keep-alive timer starts only after a first answer), and ``limit_concurrency`` counts open
  connections, so every probe got 503 (0 of 579 answered 200). Without that limit every probe got 200, but
  not one held socket was closed: each stays an open file of the server for as long as the client likes.
* hypercorn 0.18 closes them (``keep_alive_timeout`` runs from a connection's start until its request head is
  complete), but its per-connection work on the Python event loop, with the sockets reopened as fast as they
  are closed, put the probes' p99 at 398 ms.
* granian 2.8 (Rust, hyper) reads request heads off the event loop and closes a connection whose head is not
  complete within ``header_read_timeout``: 584 of 584 probes answered 200, p99 18 ms. Only when it serves
  HTTP/1 alone, though: with HTTP/1-or-2 detection it waits for a first byte without a timeout, and the idle
  sockets were never closed.

Granian runs embedded (``granian.server.embed``, marked experimental by granian) so that the bundle is
loaded once, in this process, and a bad one is refused before the port is touched. It binds with
``SO_REUSEPORT``, which would let a second server share a busy port silently; the port is therefore first
bound here without that option, and one in use is refused (exit 2). The line ``serving ... on http://...``
is printed once a TCP connection to the port has been accepted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import anyio
import anyio.to_thread
import hydra
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from omegaconf import DictConfig
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecomlab.cli import config_errors_exit_2, quiet_third_party, user_errors_exit_2
from ecomlab.export.api import LoadedForecaster, LoadedRecommender, load
from ecomlab.utils import config_dir

RawId = StrictStr | StrictInt  # strict: JSON true or 1.0 is not the id 1
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


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
    y: FiniteFloat


class ForecastRequest(Strict):
    history: list[Observation] = Field(min_length=1, description="long format: one row per series and date")
    horizon: int | None = Field(None, ge=1, le=10_000)
    levels: list[Annotated[int, Field(ge=1, le=99)]] | None = Field(
        None, max_length=99, description="central interval levels in (0, 100)")


class Ranked(BaseModel):
    query: RawId
    items: list[RawId]
    scores: list[float]
    source: str


class RankedResponse(BaseModel):
    results: list[Ranked]


class ForecastResponse(BaseModel):
    forecasts: list[dict[str, Any]]


class Problem(BaseModel):
    """Every error answer: a message, or pydantic's list of issues for a body that fails its schema."""

    detail: str | list[dict[str, Any]]


_PROBLEMS = {
    400: "this bundle does not serve the route (recommendations asked of a forecaster, or the reverse), or a "
         "body Python cannot read as JSON at all (an integer of more than 4,300 digits)",
    404: "unknown item ids (query items, candidates)",
    408: "the body did not arrive within body_timeout_s",
    413: "the body is larger than max_body_bytes",
    422: "the body fails its schema (pydantic's issues), or a batch over max_batch, an answer over "
         "max_answer_items, or values the model refuses (a message)",
    503: "the model call ran past request_timeout_s (its work was stopped), or limit_concurrency model calls "
         "are in flight; retry later",
}
PROBLEMS: dict[int | str, dict[str, Any]] = {code: {"model": Problem, "description": text}
                                            for code, text in _PROBLEMS.items()}


def _finite(value: Any) -> Any:
    """``value`` with every float that JSON cannot hold (inf, NaN) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_bytes(content: Any) -> bytes:
    """Strict JSON: non-finite floats as ``null``, and ASCII escapes, so that a lone surrogate a client sent
    (valid JSON, not encodable as UTF-8) comes back escaped instead of failing the answer."""
    return json.dumps(_finite(content), ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


class SafeJSON(JSONResponse):
    """Every JSON answer of the app, errors included, rendered by :func:`json_bytes`."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def _named(value: Any) -> Any:
    """An echoed request value for an error message: a non-finite float by its name (``inf``, ``nan``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _named(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_named(v) for v in value]
    return value


class BodyLimits:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 and one still arriving ``timeout_s`` after
    the request head gets 408, both before the app (and JSON parsing) sees it.

    A declared ``Content-Length`` over the limit is refused at once; a body streamed without one (chunked) is
    counted while it arrives and refused as soon as it passes the limit, so it is never held whole in memory.
    The deadline covers the whole body, so a client trickling a byte at a time cannot hold a request open.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.refuse(scope, receive, send, 413, f"request body of {declared.decode()} bytes is larger "
                                                        f"than this server takes (max_body_bytes={self.max_bytes})")
            return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.timeout_s) as late:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away while sending
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.max_bytes:
                    await self.refuse(scope, receive, send, 413, f"request body of more than {self.max_bytes} "
                                      f"bytes is larger than this server takes (max_body_bytes={self.max_bytes})")
                    return
                if not message.get("more_body", False):
                    break
        if late.cancelled_caught:
            await self.refuse(scope, receive, send, 408, f"request body not received within body_timeout_s="
                                                         f"{self.timeout_s:g} s ({size} bytes arrived)")
            return
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: the client's disconnect, as the app expects

        await self.app(scope, replay, send)

    @staticmethod
    async def refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        await SafeJSON({"detail": detail}, status_code=status, headers={"connection": "close"})(scope, receive, send)


class Expired(Exception):
    """A model call's deadline passed (or its request was answered with 503): stop at this chunk boundary."""


class Deadline:
    """When a model call must end; the call checks it between chunks, the request cancels it on timeout."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds
        self.cancelled = threading.Event()

    def check(self) -> None:
        if self.cancelled.is_set() or time.monotonic() > self.ends:
            raise Expired


@dataclass
class ModelCalls:
    """Model calls of one app: how many are in flight (queued or computing in a worker thread), how many
    stopped early at a chunk boundary because their deadline passed, and the chunks computed in all."""

    in_flight: int = 0
    stopped: int = 0
    chunks: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def create_app(model: LoadedRecommender | LoadedForecaster, max_batch: int = 1024,
               max_body_bytes: int = 1 << 20, request_timeout_s: float = 10.0, body_timeout_s: float = 10.0,
               max_answer_items: int = 1_000_000, chunk_scores: int = 1 << 20, chunk_series: int = 32,
               limit_concurrency: int = 64) -> FastAPI:
    """The HTTP app around one loaded bundle (the limits are those of ``configs/serve.yaml``)."""
    sizes = {"max_batch": max_batch, "max_body_bytes": max_body_bytes, "max_answer_items": max_answer_items,
             "chunk_scores": chunk_scores, "chunk_series": chunk_series, "limit_concurrency": limit_concurrency}
    bad = {k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    bad.update({k: v for k, v in {"request_timeout_s": request_timeout_s, "body_timeout_s": body_timeout_s}.items()
                if not (isinstance(v, (int, float)) and 0 < v < math.inf)})
    if bad:
        raise ValueError(", ".join(f"{k}={v!r}" for k, v in bad.items())
                         + ": expected integers >= 1 for sizes and a finite number of seconds > 0 for timeouts")
    manifest = model.manifest
    app = FastAPI(title=f"ecomlab: {manifest['model']} on {manifest['dataset']}", version=manifest["ecomlab_version"],
                  default_response_class=SafeJSON)
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes, timeout_s=body_timeout_s)
    calls = app.state.model_calls = ModelCalls()
    card_json = model.card()  # read once: the bundle was verified at load, and /model must not touch the disk

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> SafeJSON:
        # pydantic echoes the offending input; 1e999 and NaN parse to floats that JSON cannot carry back
        return SafeJSON({"detail": jsonable_encoder(_named(list(exc.errors())))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> SafeJSON:
        return SafeJSON({"detail": _named(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def within_timeout(work: Callable[[Deadline], bytes]) -> Response:
        """``work(deadline)`` in a worker thread (the event loop keeps serving), answered with 503 after the
        timeout; the deadline is cancelled then, so the work stops at its next chunk."""
        if calls.in_flight >= limit_concurrency:
            raise HTTPException(503, f"{calls.in_flight} model calls in flight; this server runs at most "
                                     f"limit_concurrency={limit_concurrency}; retry later", {"retry-after": "1"})
        deadline = Deadline(request_timeout_s)

        def tracked() -> bytes | None:
            try:
                return work(deadline)
            except Expired:
                calls.add(stopped=1)
                return None
            finally:
                calls.add(in_flight=-1)

        calls.add(in_flight=1)
        body: bytes | None = None
        try:
            with anyio.move_on_after(request_timeout_s):
                # abandon_on_cancel: the client is answered now; the thread ends at its next deadline check
                body = await anyio.to_thread.run_sync(tracked, abandon_on_cancel=True)
        finally:
            deadline.cancelled.set()  # also when the client went away
        if body is None:
            raise HTTPException(503, f"the model did not answer within request_timeout_s={request_timeout_s:g} s; "
                                     "its work was stopped; retry with a smaller batch or later", {"retry-after": "1"})
        return Response(body, media_type="application/json")

    def check_batch(n: int, what: str) -> None:
        if n > max_batch:
            raise HTTPException(422, f"{n} {what} in one request; this server takes at most max_batch={max_batch}")

    def check_answer(n: int, shape: str) -> None:
        if n > max_answer_items:
            raise HTTPException(422, f"the answer would hold {shape} = {n:,} entries; this server returns at most "
                                     f"max_answer_items={max_answer_items:,} per request: ask for fewer")

    def recommender() -> LoadedRecommender:
        if not isinstance(model, LoadedRecommender):
            raise HTTPException(400, f"this server holds a {manifest['task']} bundle; use POST /forecast")
        return model

    def ranked(queries: Sequence[Any], deadline: Deadline, rows: int, call: Callable[[list[Any]], list[Any]]) -> bytes:
        """The ranked answer for ``queries``, ``rows`` queries per chunk with a deadline check before each."""
        parts = []
        for part in _chunks(len(queries), rows):
            deadline.check()
            try:
                results = call(list(queries[part]))
            except KeyError as err:
                raise HTTPException(404, err.args[0]) from None
            except ValueError as err:
                raise HTTPException(422, str(err)) from None
            for r in results:
                row = asdict(r)
                query = row.pop("user_id") if "user_id" in row else row.pop("item_id")
                parts.append(json_bytes({"query": query, **row}))
            calls.add(chunks=1)
        return b'{"results":[' + b",".join(parts) + b"]}"

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "task": manifest["task"], "model": manifest["model"], "format": manifest["format"]}

    @app.get("/model")
    async def card() -> dict[str, Any]:
        return card_json

    @app.post("/recommend", response_model=RankedResponse, responses=PROBLEMS)
    async def recommend(request: RecommendRequest) -> Response:
        rec = recommender()
        check_batch(len(request.user_ids), "user ids")
        n_items = min(rec.n_items, len(set(map(str, request.candidates)))) if request.candidates else rec.n_items
        check_answer(len(request.user_ids) * min(request.k, n_items), f"{len(request.user_ids)} users x k={request.k}")
        rows = max(1, chunk_scores // max(1, rec.n_items))  # [rows, N] scores per chunk

        def run(deadline: Deadline) -> bytes:
            return ranked(request.user_ids, deadline, rows, lambda users: rec.recommend(
                users, k=request.k, exclude_seen=request.exclude_seen, candidates=request.candidates,
                histories=request.histories))

        return await within_timeout(run)

    @app.post("/similar-items", response_model=RankedResponse, responses=PROBLEMS)
    async def similar_items(request: SimilarItemsRequest) -> Response:
        rec = recommender()
        check_batch(len(request.item_ids), "item ids")
        check_answer(len(request.item_ids) * min(request.k, rec.n_items), f"{len(request.item_ids)} items x "
                                                                          f"k={request.k}")
        rows = max(1, chunk_scores // max(1, rec.n_items))

        def run(deadline: Deadline) -> bytes:
            return ranked(request.item_ids, deadline, rows, lambda items: rec.similar_items(items, k=request.k))

        return await within_timeout(run)

    @app.post("/forecast", response_model=ForecastResponse, responses=PROBLEMS)
    async def forecast(request: ForecastRequest) -> Response:
        if not isinstance(model, LoadedForecaster):
            raise HTTPException(400, f"this server holds a {manifest['task']} bundle; use POST /recommend")
        history = pd.DataFrame([row.model_dump() for row in request.history])
        keys = history["unique_id"].map(str)  # JSON may name one series 7 and "7"; the model's ids are strings
        series = keys.unique().tolist()
        check_batch(len(series), "series")
        horizon = request.horizon or int(manifest.get("horizon") or 1)
        check_answer(len(series) * horizon, f"{len(series)} series x horizon {horizon}")

        def run(deadline: Deadline) -> bytes:
            parts = []
            for part in _chunks(len(series), chunk_series):
                deadline.check()
                rows = history[keys.isin(series[part])]
                try:
                    frame = model.forecast(rows, horizon=request.horizon, levels=request.levels)
                    frame["ds"] = frame["ds"].dt.strftime("%Y-%m-%dT%H:%M:%S")
                except (ValueError, OverflowError) as err:  # incl. pandas' out-of-bounds dates far ahead
                    raise HTTPException(422, str(err)) from None
                parts += [json_bytes(record) for record in frame.to_dict(orient="records")]
                calls.add(chunks=1)
            return b'{"forecasts":[' + b",".join(parts) + b"]}"

        return await within_timeout(run)

    return app


# ---- the HTTP server ------------------------------------------------------------------------------------------


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards ``wanted`` (never past the hard limit); the
    limit now. Every connection is a file; many systems start processes at a soft limit of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once, without ``SO_REUSEPORT``: a port another process holds (with or without that
    option) is refused here, with a message, instead of being shared or failing after the start."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ValueError(f"host={host}: not an address this machine can serve on ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: old TIME_WAIT pairs are fine
        try:
            sock.bind(address)
        except OSError as err:
            raise ValueError(f"port={port}: cannot listen on {host}:{port} ({err.strerror}); is another server "
                             "running there? choose another port=") from None


class _QuietEmbedNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Embedded server is experimental" not in record.getMessage()


class HTTPServer:
    """``app`` on an embedded granian HTTP/1.1 server in this process (see the module docstring for why).

    ``serve`` runs until :meth:`stop` (or SIGINT/SIGTERM when it runs in the main thread); ``on_listening``
    is called once a TCP connection to the port has been accepted, i.e. when the server really listens.
    """

    def __init__(self, app: ASGIApp, host: str, port: int, *, header_timeout_s: float = 5.0,
                 max_connections: int = 4096, backlog: int = 2048, log_level: str = "warning") -> None:
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP1Settings
        from granian.log import LogLevels
        from granian.server.embed import Server

        if not 0.001 <= header_timeout_s <= 60:  # granian takes whole milliseconds, 1 to 60,000
            raise ValueError(f"header_timeout_s={header_timeout_s}: expected seconds in [0.001, 60]")
        if max_connections < 1 or backlog < 128:
            raise ValueError(f"max_connections={max_connections}, backlog={backlog}: expected >= 1 and >= 128")
        try:
            level = LogLevels(log_level.lower())
        except ValueError:
            raise ValueError(f"log_level={log_level}: expected one of {[v.value for v in LogLevels]}") from None
        logging.getLogger("_granian").addFilter(_QuietEmbedNotice())
        self.host, self.port = host, port
        self.server = Server(app, address=host, port=port, interface=Interfaces.ASGI, http=HTTPModes.http1,
                             http1_settings=HTTP1Settings(header_read_timeout=max(1, round(header_timeout_s * 1e3))),
                             backlog=backlog, backpressure=max_connections, websockets=False,
                             log_level=level)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopped = False

    async def _announce(self, on_listening: Callable[[], None], serving: asyncio.Task[None]) -> None:
        probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        while not serving.done():
            try:
                _, writer = await asyncio.open_connection(probe_host, self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            on_listening()
            return

    async def serve(self, on_listening: Callable[[], None] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.loop.add_signal_handler(sig, self.stop)
        serving = asyncio.create_task(self.server.serve())
        announce = asyncio.create_task(self._announce(on_listening or (lambda: None), serving))
        try:
            await serving
        except RuntimeError as err:  # granian's own bind, should the port be taken after check_port
            raise ValueError(f"port={self.port}: cannot listen on {self.host}:{self.port} ({err})") from None
        finally:
            announce.cancel()
        if not self.stopped:
            raise RuntimeError("the HTTP server's worker stopped unexpectedly; see the log above")

    def stop(self) -> None:
        """Stop serving; safe to call from any thread."""
        self.stopped = True
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.server.stop)


@config_errors_exit_2
@hydra.main(version_base="1.3", config_path=config_dir(), config_name="serve")
@user_errors_exit_2
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    model = load(str(cfg.bundle))  # a missing or changed bundle stops here, with exit code 2
    app = create_app(model, max_batch=int(cfg.max_batch), max_body_bytes=int(cfg.max_body_bytes),
                     request_timeout_s=float(cfg.request_timeout_s), body_timeout_s=float(cfg.body_timeout_s),
                     max_answer_items=int(cfg.max_answer_items), chunk_scores=int(cfg.chunk_scores),
                     chunk_series=int(cfg.chunk_series), limit_concurrency=int(cfg.limit_concurrency))
    host, port = str(cfg.host), int(cfg.port)
    server = HTTPServer(app, host, port, header_timeout_s=float(cfg.header_timeout_s),
                        max_connections=int(cfg.max_connections), backlog=int(cfg.backlog),
                        log_level=str(cfg.log_level))
    raise_open_file_limit(int(cfg.max_connections) + 256)  # + the bundle's files, the interpreter's, the logs
    check_port(host, port)
    line = (f"serving {model.manifest['model']} ({model.manifest['task']}) from {cfg.bundle} "
            f"on http://{host}:{port}")
    asyncio.run(server.serve(on_listening=lambda: print(line, flush=True)))


if __name__ == "__main__":
    main()
