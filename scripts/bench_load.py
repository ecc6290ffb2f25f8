"""Load test: many concurrent clients against a real ``ecomlab-serve`` on localhost, counting every error.

    OMP_NUM_THREADS=1 python scripts/bench_load.py --requests 10000 --clients 16 --out experiments/serving

Builds the LastFM-sized BPR bundle of ``scripts/bench_serving.py`` (1,892 users x 17,632 artists, d=64, one epoch;
``--data synthetic`` for the synthetic shop at that size; ``--bundle DIR`` to reuse an exported bundle), starts
``ecomlab-serve`` as a subprocess on 127.0.0.1 and sends ``--requests`` ``POST /recommend`` requests (one random
known user each, k=10, seen items excluded) from ``--clients`` concurrent keep-alive clients (asyncio + httpx in
one process). Each client sends its next request when its previous one is answered (closed loop). The test stops
by itself after the last request or after ``--max-seconds``, whichever comes first.

An error is any answer other than 200 with one result of 10 items, or a transport error (refused or reset
connection, client timeout of ``--client-timeout`` seconds). Latency is per request, measured by the client from
sending to the full answer; requests/s = answered requests / wall time of the whole load phase.

Held connections (``--held 1000``): instead of the load, a client holds ``--held`` sockets open
(:class:`HeldConnections`: half idle, half sending a never-ending request head a byte per second, each reopened
as soon as the server closes it) while ``GET /health`` is probed on a fresh connection every 50 ms for
``--probe-seconds`` (:func:`probe_health`). ``--stacks`` runs the same app on other servers for comparison
(:func:`serve_with`: the uvicorn setup ecomlab-serve had before, uvicorn without its connection limit,
hypercorn, granian in HTTP/1-or-2 mode; hypercorn needs ``pip install hypercorn``):

    OMP_NUM_THREADS=1 python scripts/bench_load.py --held 1000 --probe-seconds 30 \\
        --stacks ecomlab-serve,uvicorn,uvicorn-unlimited,hypercorn,granian-auto --out experiments/serving
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package; reuse bench_serving

from ecomlab.utils import atomic_write_json, atomic_write_text  # noqa: E402

HOST = "127.0.0.1"  # localhost only: the load never leaves this machine


async def _load(url: str, n_requests: int, clients: int, body: Callable[[int], dict[str, Any]],
                max_seconds: float, client_timeout: float, expect_items: int | None) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    next_index = 0
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < n_requests and time.monotonic() < deadline:
            i = next_index
            next_index += 1  # one event loop: no other client runs between the check and this increment
            t0 = time.perf_counter()
            try:
                response = await http.post("/recommend", json=body(i))
                seconds = time.perf_counter() - t0
                if response.status_code != 200:
                    kind = f"HTTP {response.status_code}"
                    examples.setdefault(kind, response.text[:300])
                else:
                    results = response.json()["results"]
                    ok = len(results) == 1 and (expect_items is None or len(results[0]["items"]) == expect_items)
                    kind = "" if ok else "malformed answer"
                    if not ok:
                        examples.setdefault(kind, response.text[:300])
            except httpx.HTTPError as err:
                seconds, kind = time.perf_counter() - t0, type(err).__name__
                examples.setdefault(kind, str(err)[:300])
            latencies.append(seconds)
            if kind:
                errors[kind] += 1

    async with httpx.AsyncClient(base_url=url, timeout=client_timeout, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - t0
    ms = np.asarray(latencies) * 1e3
    sent = len(latencies)
    p50, p95, p99 = (float(x) for x in np.percentile(ms, [50, 95, 99])) if sent else (float("nan"),) * 3
    return {"requests_planned": n_requests, "requests_sent": sent, "clients": clients,
            "errors": int(sum(errors.values())), "errors_by_kind": dict(errors), "error_examples": examples,
            "stopped_by_deadline": sent < n_requests, "wall_s": round(wall, 2),
            "requests_per_s": round(sent / wall, 1) if wall > 0 else float("nan"),
            "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "p99_ms": round(p99, 2),
            "max_ms": round(float(ms.max()), 2) if sent else float("nan")}


def run_load(url: str, n_requests: int, clients: int, body: Callable[[int], dict[str, Any]], *,
             max_seconds: float = 600.0, client_timeout: float = 30.0, expect_items: int | None = None
             ) -> dict[str, Any]:
    """Send ``n_requests`` ``POST /recommend`` bodies ``body(i)`` from ``clients`` concurrent clients."""
    return asyncio.run(_load(url, n_requests, clients, body, max_seconds, client_timeout, expect_items))


class HeldConnections:
    """``n`` sockets to ``host:port`` held open by a background thread, as a client that hoards them would.

    Even slots connect and send nothing (idle); odd slots send a request line and then one byte of a header
    line every ``trickle_s`` seconds, so the header block never ends (slow headers). A socket the server
    closes is counted and opened again at once, so about ``n`` stay open for as long as the block runs.
    """

    REQUEST_LINE = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    HEADER = b"X-Slow: still-coming\r\n"

    def __init__(self, host: str, port: int, n: int, trickle_s: float = 1.0) -> None:
        self.host, self.port, self.n, self.trickle_s = host, port, n, trickle_s
        self.open_now = 0
        self.opened = 0
        self.closed_by_server = {"idle": 0, "slow_headers": 0}
        self.connect_errors = 0
        self.open_samples: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _slot(self, i: int) -> None:
        assert self._stop is not None
        slow = i % 2 == 1
        kind = "slow_headers" if slow else "idle"
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.connect_errors += 1
                await asyncio.sleep(0.1)
                continue
            self.opened += 1
            self.open_now += 1
            sent = 0
            try:
                if slow:
                    writer.write(self.REQUEST_LINE)
                while not self._stop.is_set():
                    if slow:
                        writer.write(self.HEADER[sent % len(self.HEADER):][:1])
                        sent += 1
                        await writer.drain()
                    try:
                        data = await asyncio.wait_for(reader.read(65536), self.trickle_s)
                    except TimeoutError:
                        continue
                    if not data:  # the server closed it
                        self.closed_by_server[kind] += 1
                        break
            except (ConnectionError, OSError):
                self.closed_by_server[kind] += 1
            finally:
                self.open_now -= 1
                writer.close()

    async def _sample(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            self.open_samples.append(self.open_now)
            await asyncio.sleep(0.5)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        tasks = [asyncio.create_task(self._slot(i)) for i in range(self.n)]
        tasks.append(asyncio.create_task(self._sample()))
        self._ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> HeldConnections:
        from ecomlab.serve import raise_open_file_limit  # imports torch: only here, not for run_load's users

        raise_open_file_limit(self.n + 1024)
        self._thread.start()
        self._ready.wait(timeout=30)
        return self

    def wait_open(self, timeout: float) -> bool:
        """Whether all ``n`` sockets were open at once within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.open_now < self.n and time.monotonic() < deadline:
            time.sleep(0.05)
        self.open_samples.clear()  # from now on: how many stay open while the server closes and we reopen
        return self.open_now >= self.n

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    def stats(self) -> dict[str, Any]:
        samples = self.open_samples or [self.open_now]
        return {"held_target": self.n, "held_min": int(min(samples)), "held_mean": round(float(np.mean(samples)), 1),
                "opened": self.opened, "closed_by_server": dict(self.closed_by_server),
                "connect_errors": self.connect_errors}


def probe_health(url: str, seconds: float, interval_s: float = 0.05, timeout: float = 5.0) -> dict[str, Any]:
    """``GET /health`` on a fresh connection every ``interval_s`` for ``seconds``: statuses and latencies.

    A new connection per probe, as a load balancer's health check makes it: it has to get through the accept
    queue the held sockets crowd, not ride an old keep-alive connection.
    """
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                statuses[str(http.get(f"{url}/health").status_code)] += 1
            except httpx.HTTPError as err:
                statuses[type(err).__name__] += 1
            latencies.append(time.perf_counter() - t0)
            time.sleep(max(0.0, interval_s - (time.perf_counter() - t0)))
    ms = np.asarray(latencies) * 1e3
    p50, p99 = (float(x) for x in np.percentile(ms, [50, 99]))
    return {"probes": len(latencies), "statuses": dict(statuses), "ok": statuses.get("200", 0),
            "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "max_ms": round(float(ms.max()), 2)}


def start_server(bundle: Path, port: int, workdir: Path, *extra: str, start_timeout: float = 300.0,
                 stack: str = "ecomlab-serve") -> subprocess.Popen[str]:
    """``ecomlab-serve`` (or the same app on another ``stack``, see :func:`serve_with`) on 127.0.0.1:``port``,
    returned once ``/health`` answers. Its stderr goes to ``workdir/server.log`` (a pipe nobody reads while
    the server runs could fill and stall it)."""
    if stack == "ecomlab-serve":
        command = [str(Path(sys.executable).parent / "ecomlab-serve"), f"bundle={bundle}", f"host={HOST}",
                   f"port={port}", f"hydra.run.dir={workdir}/serve", *extra]
    else:
        command = [sys.executable, __file__, "--serve-with", stack, "--bundle", str(bundle), "--port", str(port),
                   *extra]
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "server.log", "w") as log:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    deadline = time.monotonic() + start_timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"{stack} exited: {(workdir / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"{stack} did not answer /health within {start_timeout} s")
        time.sleep(0.3)


def stop_server(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


STACKS = {
    "ecomlab-serve": "ecomlab-serve as configured (granian, HTTP/1.1, header_timeout_s)",
    "uvicorn": "uvicorn as ecomlab-serve ran it before (limit_concurrency=1000, no header timeout)",
    "uvicorn-unlimited": "uvicorn without limit_concurrency (no header timeout)",
    "hypercorn": "hypercorn, keep_alive_timeout = read_timeout = the header timeout",
    "granian-auto": "granian with HTTP/1-or-2 detection (http=auto), header_read_timeout = the header timeout",
}


def serve_with(stack: str, bundle: Path, port: int, header_timeout_s: float) -> None:
    """Serve ``create_app(ecomlab.load(bundle))`` on 127.0.0.1:``port`` with another stack, for comparison."""
    import ecomlab
    from ecomlab.serve import create_app

    app = create_app(ecomlab.load(bundle))
    if stack.startswith("uvicorn"):
        import uvicorn

        uvicorn.run(app, host=HOST, port=port, log_level="warning", backlog=2048,
                    limit_concurrency=1000 if stack == "uvicorn" else None)
    elif stack == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind, config.backlog, config.loglevel = [f"{HOST}:{port}"], 2048, "WARNING"
        config.keep_alive_timeout = config.read_timeout = header_timeout_s
        asyncio.run(serve(app, config))  # type: ignore[arg-type]
    elif stack == "granian-auto":
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP1Settings
        from granian.server.embed import Server

        asyncio.run(Server(app, address=HOST, port=port, interface=Interfaces.ASGI, http=HTTPModes.auto, backlog=2048,
                           backpressure=4096, http1_settings=HTTP1Settings(
                               header_read_timeout=round(header_timeout_s * 1e3))).serve())
    else:
        raise SystemExit(f"error: --serve-with {stack}: expected one of {sorted(set(STACKS) - {'ecomlab-serve'})}")


def _version(stack: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    name = {"ecomlab-serve": "granian", "granian-auto": "granian"}.get(stack, stack.split("-")[0])
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return f"{name} (not installed)"


def held_benchmark(bundle: Path, stacks: list[str], held: int, probe_seconds: float, header_timeout_s: float,
                   workdir: Path) -> list[dict[str, Any]]:
    """Per stack: /health probed with nothing held, then while ``held`` sockets are held (see the docstring)."""
    from bench_serving import free_port

    rows = []
    for stack in stacks:
        port = free_port()
        extra = [f"header_timeout_s={header_timeout_s:g}"] if stack == "ecomlab-serve" else \
            ["--header-timeout", f"{header_timeout_s:g}"]
        try:
            server = start_server(bundle, port, workdir / stack, *extra, stack=stack)
        except RuntimeError as err:  # hypercorn not installed, say: the row says so
            rows.append({"stack": stack, "setup": STACKS[stack], "version": _version(stack), "error": str(err)[-300:]})
            continue
        url = f"http://{HOST}:{port}"
        try:
            baseline = probe_health(url, min(10.0, probe_seconds))
            with HeldConnections(HOST, port, held) as holder:
                all_open = holder.wait_open(120)
                loaded = probe_health(url, probe_seconds)
                stats = holder.stats()
            after = probe_health(url, 3.0)
        finally:
            stop_server(server)
        rows.append({"stack": stack, "setup": STACKS[stack], "version": _version(stack), "all_open": all_open,
                     "baseline": baseline, "held": loaded, "after": after, **stats})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def held_report(rows: list[dict[str, Any]], command: str, model: str, machine: str, load: tuple[float, float],
                header_timeout_s: float, probe_seconds: float, held: int) -> str:
    table = ["| stack | /health 200 / probes | p50 ms | p99 ms | max ms | other answers | held (mean, min) | "
             "closed by server: idle / slow-header | p99 ms, nothing held |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            table.append(f"| {r['stack']} ({r['version']}) | not run: {r['error'].splitlines()[-1]} | | | | | | | |")
            continue
        h = r["held"]
        other = {k: v for k, v in h["statuses"].items() if k != "200"} or "none"
        table.append(f"| {r['stack']} ({r['version']}) | {h['ok']} / {h['probes']} | {h['p50_ms']} | {h['p99_ms']} | "
                     f"{h['max_ms']} | {other} | {r['held_mean']:.0f}, {r['held_min']} | "
                     f"{r['closed_by_server']['idle']} / {r['closed_by_server']['slow_headers']} | "
                     f"{r['baseline']['p99_ms']} |")
    setups = [f"- `{r['stack']}`: {r['setup']}" for r in rows]
    return "\n".join([
        "# Held connections: /health while a client hoards sockets", "",
        f"Server: the app of `ecomlab-serve` over {model} on {HOST}, on each stack below (header timeout "
        f"{header_timeout_s:g} s where the stack has one). One client process holds {held:,} sockets: half "
        "connect and send nothing, half send a request line and then one byte of a header line per second, so "
        "their request head never ends; a socket the server closes is opened again at once. Meanwhile `GET "
        f"/health` is sent on a fresh connection every 50 ms for {probe_seconds:g} s (client timeout 5 s). "
        "'held (mean, min)' counts the open sockets every 0.5 s once all were open; 'closed by server' counts "
        "the sockets each kind lost to the server's timeouts.",
        f"Machine: {machine}; the holder, the prober and the server share it with other jobs (1-minute load "
        f"average {load[0]} before, {load[1]} after).", "", f"Command: `{command}`", "", *setups, "", *table, "",
        "Why ecomlab-serve runs on granian: see the docstring of `src/ecomlab/serve.py`.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["lastfm", "synthetic"], default="lastfm")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--bundle", default=None, help="an exported recommender bundle (skips training)")
    parser.add_argument("--format", default="native", choices=["onnx", "torchscript", "native"])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--client-timeout", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="directory for load_test.md and load_test.json")
    parser.add_argument("--held", type=int, default=0, help="hold this many sockets and probe /health instead")
    parser.add_argument("--probe-seconds", type=float, default=30.0)
    parser.add_argument("--header-timeout", type=float, default=5.0)
    parser.add_argument("--stacks", default="ecomlab-serve", help=f"comma-separated, of {list(STACKS)}")
    parser.add_argument("--serve-with", default=None, help=argparse.SUPPRESS)  # internal: one comparison server
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_with:
        serve_with(args.serve_with, Path(args.bundle), args.port, args.header_timeout)
        return
    stacks = args.stacks.split(",")
    unknown = sorted(set(stacks) - set(STACKS))
    if unknown:
        parser.error(f"--stacks: unknown {unknown}; expected some of {list(STACKS)}")

    # training and export pull in torch and Lightning: only the full benchmark needs them, not run_load's users
    import ecomlab
    from bench_serving import free_port, train_bpr
    from ecomlab.export.writer import export_run

    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        root = Path(tmp)
        metric = None
        if args.bundle:
            bundle = Path(args.bundle)
        else:
            run_dir = train_bpr(root, args.data, args.data_dir)
            metric = json.loads((run_dir / "metrics.json").read_text())["metrics"].get("test/ndcg@10")
            bundle = export_run(run_dir, args.format, root / "bundle")
        model = ecomlab.load(bundle)
        users = model.users.raw.tolist()
        picks = np.random.default_rng(args.seed).integers(0, len(users), size=args.requests)
        size = f"{model.n_users:,} users x {model.n_items:,} items"
        fmt = model.manifest["format"]
        del model
        if args.held:
            load_before = os.getloadavg()
            rows = held_benchmark(bundle, stacks, args.held, args.probe_seconds, args.header_timeout, root / "held")
            load_after = os.getloadavg()
            source = f"--bundle {args.bundle}" if args.bundle else f"--data {args.data} --format {args.format}"
            command = (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} python scripts/bench_load.py "
                       f"{source} --held {args.held} --probe-seconds "
                       f"{args.probe_seconds:g} --header-timeout {args.header_timeout:g} --stacks {args.stacks}"
                       + (f" --out {args.out}" if args.out else ""))
            machine = f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"
            loads = (round(load_before[0], 1), round(load_after[0], 1))
            record = {"command": command, "model": f"BPR-MF d=64 ({size}), {fmt} bundle", "machine": machine,
                      "load_average_1m_before_after": list(loads), "rows": rows}
            print(json.dumps(record, indent=2))
            if args.out:
                atomic_write_json(Path(args.out) / "held_connections.json", record)
                atomic_write_text(Path(args.out) / "held_connections.md", held_report(
                    rows, command, record["model"], machine, loads, args.header_timeout, args.probe_seconds, args.held))
            return
        port = free_port()
        load_before = os.getloadavg()
        server = start_server(bundle, port, root)
        try:
            # a few untimed requests first: the server's first calls load lazily-built state
            run_load(f"http://{HOST}:{port}", 20, 2, lambda i: {"user_ids": [users[int(picks[i])]], "k": 10})
            result = run_load(f"http://{HOST}:{port}", args.requests, args.clients,
                              lambda i: {"user_ids": [users[int(picks[i])]], "k": 10}, max_seconds=args.max_seconds,
                              client_timeout=args.client_timeout, expect_items=10)
            health = httpx.get(f"http://{HOST}:{port}/health", timeout=10).status_code
        finally:
            stop_server(server)
        load_after = os.getloadavg()

    command = (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} python scripts/bench_load.py "
               f"--data {args.data} --format {args.format} --requests {args.requests} --clients {args.clients} "
               f"--max-seconds {args.max_seconds:g}" + (f" --out {args.out}" if args.out else ""))
    record = {"command": command, "model": f"BPR-MF d=64 ({size}), {fmt} bundle", "test_ndcg@10": metric,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
              "load_average_1m_before_after": [round(load_before[0], 1), round(load_after[0], 1)],
              "health_after_load": health, **result}
    print(json.dumps(record, indent=2))
    if args.out:
        table = ["| requests sent | clients | errors | p50 ms | p95 ms | p99 ms | max ms | requests/s | wall s |",
                 "|---|---|---|---|---|---|---|---|---|",
                 f"| {result['requests_sent']:,} | {result['clients']} | {result['errors']} | {result['p50_ms']} | "
                 f"{result['p95_ms']} | {result['p99_ms']} | {result['max_ms']} | {result['requests_per_s']} | "
                 f"{result['wall_s']} |"]
        text = "\n".join([
            "# Load test: concurrent clients against ecomlab-serve", "",
            f"Model: {record['model']}, trained one epoch on `{args.data}` as in `scripts/bench_serving.py` "
            "(quality is not the point here), served by a real `ecomlab-serve` (uvicorn, one process) on "
            f"{HOST} with the limits of `configs/serve.yaml`.",
            f"Load: {args.requests:,} `POST /recommend` requests (one random known user each, k=10, seen items "
            f"excluded) from {args.clients} concurrent keep-alive clients (asyncio + httpx, one process on the "
            "same machine), closed loop: each client sends its next request when the previous one is answered. "
            "An error is any answer other than 200 with 10 items, or a transport error. Latency is per request "
            "as the client sees it; requests/s = requests / wall time of the load phase. 20 untimed warm-up "
            "requests before.",
            f"Machine: {record['machine']}; client and server share its cores with other jobs (1-minute load "
            f"average {record['load_average_1m_before_after'][0]} before, {record['load_average_1m_before_after'][1]}"
            " after), so the latencies are upper bounds for an idle machine.", "",
            f"Command: `{command}`", "", *table, "",
            f"Errors by kind: {result['errors_by_kind'] or 'none'}. `GET /health` after the load: {health}.", ""])
        atomic_write_json(Path(args.out) / "load_test.json", record)
        atomic_write_text(Path(args.out) / "load_test.md", text)


if __name__ == "__main__":
    main()
