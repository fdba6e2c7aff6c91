"""The Python SDK's version is the release's (project() in CMakeLists.txt, as the server reports
it) and goes out in its User-Agent."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from typing import Any, Dict, List

import ymtest

import yardmaster
from yardmaster import Client


def test_sdk_version_is_the_release_version() -> None:
    p = subprocess.run([ymtest.binary(), "version", "--json"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert yardmaster.__version__ == json.loads(p.stdout)["version"]


def test_user_agent_names_the_sdk_and_its_version() -> None:
    seen: List[Dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            seen.append({"path": self.path, "ua": self.headers.get("User-Agent")})
            body = b'{"version":"0.0.0","commit":"unknown"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        c = Client(f"http://127.0.0.1:{httpd.server_address[1]}", timeout=10.0)
        assert c.info()["commit"] == "unknown"
        c.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(10)
    assert seen == [{"path": "/v1/info", "ua": f"yardmaster-python/{yardmaster.__version__}"}]
