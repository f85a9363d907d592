"""A tiny HTTP server for the tests, run as its own process.

``GET /set/<code>`` makes ``/health`` answer ``<code>`` from then on; ``/slow``
answers after 5 seconds. It prints its port on the first line of stdout.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

status = 200


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        global status
        code = 200
        if self.path.startswith("/set/"):
            status = int(self.path.removeprefix("/set/"))
        elif self.path == "/health":
            code = status
        elif self.path == "/slow":
            time.sleep(5)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()
