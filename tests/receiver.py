"""A webhook receiver for the tests, on the loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver:
    """An HTTP server on `address` (the loopback, or a test network's gateway for the hosts to
    reach) keeping each POST's path and JSON body; answers `status`."""

    def __init__(self, status: int = 204, address: str = "127.0.0.1"):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, self.headers["Content-Type"], json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
