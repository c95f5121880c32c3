"""A real Prometheus for tests: Debian's ``prometheus`` on a free 127.0.0.1 port.

It runs a copy of ``examples/grafana/prometheus.yml`` (same job and metrics path) with a
one-second scrape interval, pointed at the given targets, and its data in a temporary
directory. Start-up is awaited by reading its log for "Server is ready to receive web
requests".
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.processes import LoggedProcess

__all__ = ["EXAMPLE_CONFIG", "PrometheusServer", "running_prometheus"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "examples" / "grafana" / "prometheus.yml"
_READY = b"Server is ready to receive web requests"
_START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_config(targets: Sequence[str]) -> dict[str, Any]:
    """The example configuration, scraping ``targets`` every second."""
    config: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": list(targets)}]
    return config


class PrometheusServer(LoggedProcess):
    """One Prometheus process: its URL, its log, and its HTTP API."""

    name = "prometheus"

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        super().__init__(process)
        self.url = f"http://127.0.0.1:{port}"
        self.api = httpx.AsyncClient(base_url=self.url, timeout=10)

    def ready_after(self, line: bytes) -> bool:
        return _READY in line

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query (``/api/v1/query``), which must succeed."""
        response = await self.api.get("/api/v1/query", params={"query": expr})
        body = response.json()
        assert response.status_code == 200, (expr, body)
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def targets(self) -> list[dict[str, Any]]:
        """The active targets as ``/api/v1/targets`` reports them."""
        response = await self.api.get("/api/v1/targets")
        targets: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return targets

    async def stop(self) -> None:
        await self.api.aclose()
        await super().stop()


@contextlib.asynccontextmanager
async def running_prometheus(
    targets: Sequence[str], directory: Path
) -> AsyncIterator[PrometheusServer]:
    """Prometheus scraping ``targets`` (``host:port``), its files under ``directory``."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed: run scripts/install-test-servers")
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets)))
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(directory),
    )
    server = PrometheusServer(process, port)
    try:
        await server.wait_ready(_START_TIMEOUT)
        yield server
    finally:
        await server.stop()
