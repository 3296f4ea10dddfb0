"""HTTP benchmark on loopback: authenticated GET /api/v1/auth/me against a bare route.

Starts one real server (``clarity serve``, uvicorn) on a fresh SQLite database, logs in a
benchmark user, then measures the bare route (/health/live: same server, same middleware,
no authentication) and /api/v1/auth/me at the same fixed concurrency, in the same run, and
prints throughput, p50/p99 latency and their ratio. Goal: the authenticated route keeps at
least half the bare route's throughput.

    python bench/http_auth_me.py [--seconds 10] [--connections 32] [--redis redis://...]

Load comes from ``wrk`` (Debian package ``wrk``) when installed, else from a built-in
asyncio HTTP/1.1 keep-alive client. These machines are noisy: compare ratios, not numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

EMAIL = "bench.user@bench.example.org"
PASSWORD = "Bench-Throughput-Check-7"


@dataclass
class Result:
    route: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clarity(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "clarity.cli", *args], env=env, check=True, stdout=subprocess.DEVNULL
    )


def wait_ready(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health/live", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def login(base: str) -> str:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{base}/api/v1/auth/login",
        data=json.dumps({"email": EMAIL, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        return str(json.load(response)["access_token"])


def run_wrk(url: str, token: str | None, seconds: int, connections: int) -> Result:
    assert shutil.which("wrk")
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        cmd[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Result(url, rps, pct("50"), pct("99"), int(non2xx.group(1)) if non2xx else 0)


async def _asyncio_load(
    host: str, port: int, path: str, token: str | None, seconds: int, connections: int
) -> Result:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    q = statistics.quantiles(latencies, n=100)
    return Result(path, len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, errors)


def measure(base: str, path: str, token: str | None, seconds: int, connections: int) -> Result:
    if shutil.which("wrk"):
        result = run_wrk(base + path, token, seconds, connections)
    else:
        host, port = base.removeprefix("http://").split(":")
        result = asyncio.run(_asyncio_load(host, int(port), path, token, seconds, connections))
    result.route = path
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--redis", default=None, help="Redis URL (default: in-process cache)")
    parser.add_argument(
        "--database",
        default=None,
        help="database URL of an EMPTY database (default: a new SQLite file)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="clarity-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "CLARITY_DATABASE_URL": args.database or f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "CLARITY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
        "CLARITY_RATE_LIMIT_PER_IP": "100000000",
        "CLARITY_RATE_LIMIT_PER_USER": "100000000",
        "CLARITY_LOG_LEVEL": "WARNING",
    }
    if args.redis:
        env["CLARITY_REDIS_URL"] = args.redis
    clarity(env, "migrate")
    clarity(env, "create-user", "--email", EMAIL, "--password", PASSWORD, "--role", "clinician")
    server = subprocess.Popen(
        [sys.executable, "-m", "clarity.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        token = login(base)
        # Warm both routes first (token and profile caches, SQLite's thread): the figures
        # below are steady state, not the first seconds of a cold process.
        measure(base, "/health/live", None, 2, args.connections)
        measure(base, "/api/v1/auth/me", token, 2, args.connections)
        bare = measure(base, "/health/live", None, args.seconds, args.connections)
        authed = measure(base, "/api/v1/auth/me", token, args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    tool = "wrk" if shutil.which("wrk") else "asyncio client"
    print(
        f"load: {tool}, {args.connections} connections, {args.seconds}s per route, "
        f"cache: {'redis' if args.redis else 'in-process'}, "
        f"database: {'sqlite' if not args.database else args.database.split(':')[0]}"
    )
    print(f"{'route':<20}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for r in (bare, authed):
        print(
            f"{r.route:<20}{r.requests_per_s:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}"
        )
    ratio = authed.requests_per_s / bare.requests_per_s
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"throughput ratio auth/bare: {ratio:.2f} ({verdict} the goal of >= 0.50)")
    print(f"p99 ratio auth/bare: {authed.p99_ms / bare.p99_ms:.2f}")
    return 0 if authed.errors == 0 and bare.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
