"""The load client of the benchmarks: HTTPS clients that load a page as a browser does, the page
and then the static files it links, over keep-alive connections."""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time

# The static files a page links: stylesheets, scripts, images (href="/static/..." or src=...).
ASSET = re.compile(r"""(?:href|src)\s*=\s*["'](/static/[^"'?#]+(?:\?[^"'#]*)?)["']""")


def linked_assets(page: str) -> list[str]:
    """The /static/ paths a page links, each once, in the order they appear."""
    return list(dict.fromkeys(ASSET.findall(page)))


class Load:
    """`clients` threads loading `path` as a browser does, page and then the static assets it links,
    over HTTPS to 127.0.0.1:port as `server_name`, until stopped (at most 10 minutes), or, with
    `request_limit`, until that many requests (pages and assets) were made. Counts requests, and
    failures: answers that are not 2xx and connection errors, of pages and of assets apart."""

    def __init__(self, port: int, clients: int, server_name: str = "localhost", path: str = "/",
                 limit_seconds: float = 600, request_limit: int | None = None):
        self.port, self.clients, self.server_name, self.path = port, clients, server_name, path
        self.deadline, self.request_limit = time.monotonic() + limit_seconds, request_limit
        self.total = self.failed = self.assets = self.assets_failed = 0
        self.release_seen_last = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def get(self, connection, path: str) -> tuple[bool, str | None, bytes]:
        connection.request("GET", path, headers={"Host": self.server_name})
        response = connection.getresponse()
        body = response.read()
        return 200 <= response.status < 300, response.getheader("X-Release-Id"), body

    def connect(self, context) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)

    def going(self) -> bool:
        with self.lock:
            limited = self.request_limit is not None and self.total + self.assets >= self.request_limit
        if limited:
            self.stopping.set()
        return not self.stopping.is_set() and time.monotonic() < self.deadline

    def client(self):
        context = ssl._create_unverified_context()
        connection = None
        while self.going():
            assets = []
            try:
                connection = connection or self.connect(context)
                ok, release, body = self.get(connection, self.path)
                assets = linked_assets(body.decode(errors="replace")) if ok else []
            except (OSError, http.client.HTTPException):
                ok, release = False, None
                connection = None
            with self.lock:
                self.total += 1
                self.failed += 0 if ok else 1
                if release:
                    self.release_seen_last = release
            for asset in assets:
                try:
                    connection = connection or self.connect(context)
                    asset_ok = self.get(connection, asset)[0]
                except (OSError, http.client.HTTPException):
                    asset_ok, connection = False, None
                with self.lock:
                    self.assets += 1
                    self.assets_failed += 0 if asset_ok else 1

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
