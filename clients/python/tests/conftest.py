"""Fixtures: a client of the real server at $DIPLOG_TEST_SERVER (`http://127.0.0.1:50051`; the
Rust test tests/api/python_client.rs starts one with the founding scenario imported), a TCP
proxy in front of it whose connections a test can cut, as a network failure would, and a
second server on the same log ($DIPLOG_TEST_DIPLOG, $DIPLOG_TEST_DATABASE_URL) that a test can
kill and restart."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import pytest

from diplog import Client, DiplogError, NotFound, RetryPolicy


@pytest.fixture(scope="session")
def server_url() -> str:
    url = os.environ.get("DIPLOG_TEST_SERVER")
    if not url:
        pytest.skip("DIPLOG_TEST_SERVER is not set: no diplog server to test against")
    return url


@pytest.fixture
def client(server_url: str) -> Iterator[Client]:
    with Client(server_url) as client:
        yield client


@pytest.fixture(scope="session")
def founding(server_url: str) -> None:
    """The founding scenario's actors (sergey-lavrov, marco-rubio, rus.mfa, …) are in the log."""
    with Client(server_url) as client:
        try:
            next(client.read_stream("actor-sergey-lavrov"))
        except NotFound:
            pytest.skip("the server's log lacks the founding scenario (diplog serve --demo)")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


class Proxy:
    """Forwards 127.0.0.1:<port> to the server. `cut_after(n)` closes the next connection once
    n bytes went from the server to the client; `drop_all()` closes every open one."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: list[tuple[socket.socket, socket.socket]] = []
        self.accepted = 0
        self.cuts = 0
        self._cut_after: int | None = None
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_after(self, downstream_bytes: int) -> None:
        self._cut_after = downstream_bytes

    def _accept(self) -> None:
        while not self.closed:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            pair = (downstream, upstream)
            with self.lock:
                self.open.append(pair)
                self.accepted += 1
                budget, self._cut_after = self._cut_after, None
            threading.Thread(target=self._pump, args=(downstream, upstream, pair, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream, pair, budget), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, pair: Any, budget: int | None) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if budget is not None and sent + len(data) > budget:
                    sink.sendall(data[: budget - sent])
                    with self.lock:
                        self.cuts += 1
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        self._close(pair)

    def _close(self, pair: Any) -> None:
        with self.lock:
            if pair in self.open:
                self.open.remove(pair)
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def drop_all(self) -> int:
        with self.lock:
            pairs = list(self.open)
            self.cuts += len(pairs)
        for pair in pairs:
            self._close(pair)
        return len(pairs)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.drop_all()


@pytest.fixture
def proxy(server_url: str) -> Iterator[Proxy]:
    parsed = urlparse(server_url)
    proxy = Proxy(parsed.hostname or "127.0.0.1", parsed.port or 50051)
    yield proxy
    proxy.close()


@pytest.fixture
def proxied(proxy: Proxy) -> Iterator[Client]:
    """A client through the proxy, patient enough to outlast the cuts."""
    with Client(proxy.url, retry=RetryPolicy(attempts=10, initial_backoff=0.05, max_backoff=0.5)) as client:
        yield client


class Consumer:
    """Drains an iterator on a thread, so a test can wait for items with a timeout."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self.items: queue.Queue[Any] = queue.Queue()
        self.iterator = iterator
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for item in self.iterator:
                self.items.put(item)
        except BaseException as error:  # surfaced to the test by take()
            self.items.put(error)

    def take(self, count: int, timeout: float = 20.0) -> list[Any]:
        out = []
        for _ in range(count):
            item = self.items.get(timeout=timeout)
            if isinstance(item, BaseException):
                raise item
            out.append(item)
        return out


class RestartableServer:
    """A `diplog serve` of the test's own on the log the main server uses (several servers may
    share one database), on a fixed port, so it can be killed and started again."""

    def __init__(
        self,
        binary: str,
        database_url: str,
        log: Any,
        args: tuple[str, ...] = (),
        auth: str = "open",
        **client: Any,
    ) -> None:
        self.binary = binary
        self.database_url = database_url
        self.log = log
        self.args = args
        self.auth = auth
        self.client = client
        self.scheme = "https" if "--tls-cert" in args else "http"
        with socket.create_server(("127.0.0.1", 0)) as probe:
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, within: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIPLOG_") or k == "DIPLOG_SIGNING_KEY"}
        env.update(DATABASE_URL=self.database_url, DIPLOG_AUTH=self.auth, RUST_LOG="warn")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--http", "127.0.0.1:0",
             "--projection-poll-ms", "50", *self.args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + within
        while True:
            assert self.process.poll() is None, "diplog serve stopped while starting"
            try:
                with Client(self.url, retry=RetryPolicy(attempts=1), timeout=2, **self.client) as probe:
                    probe.head()
                return
            except DiplogError:
                assert time.monotonic() < deadline, f"diplog serve does not answer within {within} s"
                time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def own_server() -> tuple[str, str]:
    binary = os.environ.get("DIPLOG_TEST_DIPLOG")
    database_url = os.environ.get("DIPLOG_TEST_DATABASE_URL")
    if not binary or not database_url:
        pytest.skip("DIPLOG_TEST_DIPLOG and DIPLOG_TEST_DATABASE_URL are not set: no server of our own")
    return binary, database_url


@pytest.fixture
def restartable(server_url: str, tmp_path: Any) -> Iterator[RestartableServer]:
    binary, database_url = own_server()
    with open(tmp_path / "serve.log", "wb") as log:
        server = RestartableServer(binary, database_url, log)
        server.start()
        yield server
        server.kill()


@dataclass
class Secured:
    server: RestartableServer
    token: str
    token_name: str
    ca: Path


@pytest.fixture
def secured(server_url: str, tmp_path: Path, unique: str) -> Iterator[Secured]:
    """A server of our own with TLS (`diplog dev-certs`) that requires tokens, and a token
    made for it (`diplog token create`, on the shared database)."""
    binary, database_url = own_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPLOG_")}
    env["DATABASE_URL"] = database_url
    certs = tmp_path / "certs"
    subprocess.run([binary, "dev-certs", str(certs)], env=env, check=True, capture_output=True)
    name = f"py-{unique}"
    made = subprocess.run(
        [binary, "token", "create", "--name", name, "--role", "reader,writer,auditor"],
        env=env, check=True, capture_output=True, text=True,
    )
    token = made.stdout.strip().splitlines()[-1]
    with open(tmp_path / "serve.log", "wb") as log:
        server = RestartableServer(
            binary,
            database_url,
            log,
            ("--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server-key.pem")),
            auth="tokens",
            token=token,
            ca_cert=certs / "ca.pem",
        )
        server.start()
        yield Secured(server, token, name, certs / "ca.pem")
        server.kill()
