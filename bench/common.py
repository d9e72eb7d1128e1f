"""Timing, tables, machine facts and server processes shared by the benchmarks."""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "datasets")
RETAIL_FULL = os.path.join(SHARED, "online-retail", "online_retail.csv.gz")


def median_time(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def table(title: str, header: list[str], rows: list[list]) -> str:
    """A Markdown table; numbers are formatted to three significant digits."""

    def cell(value) -> str:
        if isinstance(value, float):
            if value != value:  # NaN
                return "n/a"
            return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def machine() -> dict:
    with open("/proc/meminfo") as handle:
        total_kb = int(re.search(r"MemTotal:\s+(\d+)", handle.read()).group(1))
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {
        name: metadata.version(name)
        for name in (
            "torch",
            "sentence-transformers",
            "implicit",
            "tantivy",
            "elasticsearch",
            "Flask",
            "gunicorn",
            "numpy",
        )
    }
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        **versions,
    }


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                match = re.search(r"VmRSS:\s+(\d+)", handle.read())
            total += int(match.group(1)) if match else 0
            with open(f"/proc/{current}/task/{current}/children") as handle:
                pids.extend(int(p) for p in handle.read().split())
        except FileNotFoundError:
            continue
    return total / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ShopServer:
    """The shop under gunicorn, as production runs it, on a loopback port."""

    def __init__(
        self,
        data_dir: str,
        backend: str,
        workers: int = 2,
        threads: int = 8,
        env: dict | None = None,
    ):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "indexer",
            "--data-dir",
            data_dir,
            "--backend",
            backend,
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
        log_path = os.path.join(data_dir, f"serve-{backend}.log")
        self.log = open(log_path, "w")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), "HF_HUB_OFFLINE": "1"},
        )

    def wait_ready(self, timeout: float = 600) -> None:
        """Until every worker answers a hybrid search quickly: models and index
        loaded in each, not only in the first to answer."""
        deadline = time.time() + timeout
        quick = 0
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the shop exited; see {self.log.name}")
            started = time.time()
            try:
                status, _ = get(self.base, "/api/search?q=warm&mode=hybrid")
            except OSError:
                status = 0
            # Each call is a new connection, so the workers take turns.
            quick = quick + 1 if status == 200 and time.time() - started < 2 else 0
            if quick >= 10:
                return
            if status != 200:
                time.sleep(1)
        raise TimeoutError(f"the shop did not answer within {timeout}s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def get(base: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def load(base: str, requests: list, concurrency: int, seconds: float) -> dict:
    """Run bench/loadgen.py in its own process against ``base``."""
    job = {
        "base": base,
        "requests": requests,
        "concurrency": concurrency,
        "seconds": seconds,
        "warmup": 1.0,
    }
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "loadgen.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)
