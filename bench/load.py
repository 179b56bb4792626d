"""The load client of the benchmarks: HTTPS clients that load a page as a browser does, the page
and then the static files it links, over keep-alive connections."""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from collections import Counter

# The static files a page links: stylesheets, scripts, images (href="/static/..." or src=...).
ASSET = re.compile(r"""(?:href|src)\s*=\s*["'](/static/[^"'?#]+(?:\?[^"'#]*)?)["']""")


# What a server closing a kept-alive connection without answering looks like to the client.
CLOSED_UNANSWERED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def linked_assets(page: str) -> list[str]:
    """The /static/ paths a page links, each once, in the order they appear."""
    return list(dict.fromkeys(ASSET.findall(page)))


class Load:
    """`clients` threads loading `path` as a browser does, page and then the static assets it links
    (or, with `form`, POSTing it there: a write),
    over HTTPS to 127.0.0.1:port as `server_name`, until stopped (at most 10 minutes), or, with
    `request_limit`, until that many requests (pages and assets) were made. Counts requests, and
    failures: answers that are not 2xx and connection errors, of pages and of assets apart; and
    the requests sent again because the server closed a kept-alive connection (see fetch)."""

    def __init__(self, port: int, clients: int, server_name: str = "localhost", path: str = "/",
                 limit_seconds: float = 600, request_limit: int | None = None, form: str | None = None):
        self.port, self.clients, self.server_name, self.path = port, clients, server_name, path
        self.form = form  # POSTed to `path` (a write, answered without assets) instead of a GET
        self.deadline, self.request_limit = time.monotonic() + limit_seconds, request_limit
        self.total = self.failed = self.assets = self.assets_failed = self.retried = 0
        self.longest = 0.0  # the longest page request, in seconds
        self.page_seconds: list[float] = []  # how long each page request took
        self.failed_started: list[float] = []  # when (time.monotonic()) each failed request was sent
        self.release_seen_last = None
        self.reasons: Counter[str] = Counter()  # "page 502", "asset ConnectionResetError": how many
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def get(self, connection, path: str) -> tuple[int, str | None, bytes]:
        if self.form is not None and path == self.path:
            connection.request("POST", path, body=self.form, headers={
                "Host": self.server_name, "Content-Type": "application/x-www-form-urlencoded"})
        else:
            connection.request("GET", path, headers={"Host": self.server_name})
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheader("X-Release-Id"), body

    def connect(self, context) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)

    def going(self) -> bool:
        with self.lock:
            limited = self.request_limit is not None and self.total + self.assets >= self.request_limit
        if limited:
            self.stopping.set()
        return not self.stopping.is_set() and time.monotonic() < self.deadline

    def fetch(self, state: dict, path: str) -> tuple[str | None, str | None, bytes]:
        """GET `path` on the thread's kept-alive connection: (what failed or None, release id, body).
        A request the server closed a reused connection on without an answer (as nginx does to
        idle connections on a graceful reload) is sent again once on a new one, as a browser does
        (RFC 9112, 9.3.1); these are counted in `retried`."""
        for attempt in (1, 2):
            reused = state["connection"] is not None
            try:
                state["connection"] = state["connection"] or self.connect(state["context"])
                status, release, body = self.get(state["connection"], path)
                return (None if 200 <= status < 300 else str(status)), release, body
            except (OSError, http.client.HTTPException) as error:
                if state["connection"] is not None:
                    state["connection"].close()
                state["connection"] = None
                if attempt == 1 and reused and isinstance(error, CLOSED_UNANSWERED):
                    with self.lock:
                        self.retried += 1
                    continue
                return type(error).__name__, None, b""
        raise AssertionError("unreachable")

    def client(self):
        state = {"context": ssl._create_unverified_context(), "connection": None}
        while self.going():
            started = time.monotonic()
            failure, release, body = self.fetch(state, self.path)
            took = time.monotonic() - started
            assets = [] if failure else linked_assets(body.decode(errors="replace"))
            with self.lock:
                self.total += 1
                self.longest = max(self.longest, took)
                self.page_seconds.append(took)
                if failure:
                    self.failed += 1
                    self.failed_started.append(started)
                    self.reasons[f"page {failure}"] += 1
                if release:
                    self.release_seen_last = release
            for asset in assets:
                asset_started = time.monotonic()
                failure = self.fetch(state, asset)[0]
                with self.lock:
                    self.assets += 1
                    if failure:
                        self.assets_failed += 1
                        self.failed_started.append(asset_started)
                        self.reasons[f"asset {failure}"] += 1

    def start(self):
        for thread in self.threads:
            thread.start()
        time.sleep(1)

    def stop(self):
        time.sleep(1)
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def wait(self):
        """Until the request limit is reached (or the deadline)."""
        for thread in self.threads:
            thread.join()
