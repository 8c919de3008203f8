"""Real receivers on loopback for alerting tests: an HTTP server that records what it is sent,
and Alertmanager (the Debian package's binary) whose one receiver is such a server."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.broker import free_port


def _wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    from tests.conftest import wait_until

    wait_until(check, timeout, what)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers ``status`` (200 unless a test says otherwise) and records every POST."""

    url: str = ""
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.requests]


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    """Starts HTTP servers on loopback ports; each records what it is sent."""
    servers: list[ThreadingHTTPServer] = []

    def start(port: int = 0) -> Receiver:
        recorded = Receiver()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorded.lock:
                    recorded.requests.append(Received(self.path, dict(self.headers), body))
                    status = recorded.status
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        servers.append(server)
        recorded.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return recorded

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(receiver_factory: Callable[[], Receiver]) -> Receiver:
    return receiver_factory()


@dataclass
class Alertmanager:
    url: str
    hook: Receiver
    process: subprocess.Popen[bytes]

    def alerts(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()


AM_CONFIG = """
route:
  receiver: hook
  group_by: [alert_id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[[Receiver], Alertmanager]]:
    """Starts the real ``prometheus-alertmanager`` on a free loopback port, its one receiver
    being the given loopback HTTP server; stopped by pid after the test."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (make system-deps installs it)")
    started: list[subprocess.Popen[bytes]] = []

    def start(hook: Receiver) -> Alertmanager:
        port = free_port()
        config = tmp_path / "alertmanager.yml"
        config.write_text(AM_CONFIG.format(url=hook.url))
        with (tmp_path / "alertmanager.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=log,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError((tmp_path / "alertmanager.log").read_text()[-3000:])
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_until(ready, 30, "Alertmanager ready")
        return Alertmanager(url, hook, process)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
