"""Browser and network safety without authentication (docs/security.md): the loopback default
and --insecure, the Host check (DNS rebinding), the Origin check and CORS, and the JSON content
type that every write needs.

Black-box against the real binary; servers listen on 127.0.0.1 only (the refusal of a
non-loopback address is checked on a server that must not start).
"""

import json
import os
import socket
import subprocess

from ymtest import binary

ALLOWED = "https://dash.example"


def queued_job(client, queue):
    job_id = client.enqueue(queue=queue, kind="k")["id"]
    return job_id


def state(client, job_id):
    status, view = client.get(job_id)
    assert status == 200, view
    return view["state"]


def error_code(body):
    return json.loads(body)["error"]["code"]


def test_a_text_plain_cancel_is_refused_415_and_cancels_nothing(client):
    # A page on any site can send these without a preflight (a "simple" request).
    job_id = queued_job(client, "ws-ct")
    for headers in ({"Content-Type": "text/plain"}, {},
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    {"Content-Type": "multipart/form-data; boundary=x"}):
        status, _, body = client.raw("POST", f"/v1/jobs/{job_id}:cancel", b"", headers)
        assert status == 415, (headers, status, body)
        assert error_code(body) == "unsupported_media_type"
        assert b"application/json" in body
    for method, path in (("POST", "/v1/queues/ws-ct:pause"), ("DELETE", "/v1/queues/ws-ct"),
                         ("POST", f"/v1/jobs/{job_id}:replay")):
        status, _, body = client.raw(method, path, None, {"Content-Type": "text/plain"})
        assert status == 415, (method, path, status, body)
    assert state(client, job_id) == "ready"
    assert client.queue("ws-ct")["paused"] is False
    # The same cancel with the JSON type works, body or not.
    status, _, body = client.raw("POST", f"/v1/jobs/{job_id}:cancel", None,
                                 {"Content-Type": "application/json"})
    assert status == 200, body
    assert state(client, job_id) == "cancelled"


def test_a_foreign_origin_is_refused_and_changes_nothing(make_server):
    c = make_server("--cors-allowed-origins", ALLOWED).client()
    job_id = queued_job(c, "ws-origin")
    for origin in ("https://evil.example", "null", "https://dash.example.evil.example",
                   "http://dash.example"):
        hdrs = {"Origin": origin, "Content-Type": "application/json"}
        status, headers, body = c.raw("POST", f"/v1/jobs/{job_id}:cancel", b"", hdrs)
        assert status == 403, (origin, status, body)
        assert error_code(body) == "permission_denied"
        assert "access-control-allow-origin" not in headers
        # Reads of job data are refused too (a misconfigured browser must not leak them).
        status, _, body = c.raw("GET", f"/v1/jobs/{job_id}", None, {"Origin": origin})
        assert status == 403, (origin, status, body)
        status, _, body = c.raw("OPTIONS", "/v1/jobs", None,
                                {"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert status == 403, (origin, status, body)
    assert state(c, job_id) == "ready"
    # Health and metrics carry no job data: readable whatever the origin.
    for path in ("/livez", "/readyz", "/healthz", "/metrics"):
        status, headers, _ = c.raw("GET", path, None, {"Origin": "https://evil.example"})
        assert status == 200, path
        assert "access-control-allow-origin" not in headers


def test_an_allowed_origin_gets_a_preflight_and_cors_headers(make_server):
    c = make_server("--cors-allowed-origins", ALLOWED + ",http://localhost:3000").client()
    status, headers, body = c.raw("OPTIONS", "/v1/jobs", None, {
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert status == 204, body
    assert headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in headers["access-control-allow-methods"]
    assert "content-type" in headers["access-control-allow-headers"].lower()
    assert headers["vary"] == "Origin"
    assert "content-length" not in headers and body == b""  # a 204 declares no body
    status, headers, body = c.raw("POST", "/v1/jobs",
                                  json.dumps({"queue": "ws-cors", "kind": "k"}).encode(),
                                  {"Origin": ALLOWED, "Content-Type": "application/json"})
    assert status == 201, body
    assert headers["access-control-allow-origin"] == ALLOWED
    assert headers["vary"] == "Origin"
    assert "x-request-id" in headers["access-control-expose-headers"].lower()
    job_id = json.loads(body)["id"]
    status, headers, _ = c.raw("GET", f"/v1/jobs/{job_id}", None,
                               {"Origin": "http://localhost:3000"})
    assert status == 200 and headers["access-control-allow-origin"] == "http://localhost:3000"
    # An allowed origin still needs the JSON type; the error is readable by the page.
    status, headers, body = c.raw("POST", f"/v1/jobs/{job_id}:cancel", b"",
                                  {"Origin": ALLOWED, "Content-Type": "text/plain"})
    assert status == 415, body
    assert headers["access-control-allow-origin"] == ALLOWED
    assert state(c, job_id) == "ready"


def test_a_rebinding_host_is_refused_and_loopback_hosts_work(client):
    job_id = queued_job(client, "ws-host")
    for host in ("evil.example", f"evil.example:{client.port}", "localhost.evil.example",
                 "127.0.0.1.nip.io", "10.0.0.1"):
        status, headers, body = client.raw("GET", "/v1/info", None, {"Host": host})
        assert status == 403, (host, status, body)
        assert error_code(body) == "permission_denied"
        assert b"evil" not in body and b"nip" not in body  # the answer echoes nothing
        status, _, body = client.raw("POST", f"/v1/jobs/{job_id}:cancel", b"",
                                     {"Host": host, "Content-Type": "application/json"})
        assert status == 403, (host, status, body)
    assert state(client, job_id) == "ready"
    # Loopback names are answered, any port, any case.
    for host in ("localhost", f"localhost:{client.port}", "LOCALHOST", "127.0.0.1",
                 f"127.0.0.1:{client.port}", "[::1]", f"[::1]:{client.port}", "localhost."):
        status, _, body = client.raw("GET", "/v1/info", None, {"Host": host})
        assert status == 200, (host, status, body)
    # Browsers always send Host: an HTTP/1.0 request without one is answered, but a Host that
    # is not loopback is refused whatever the version.
    for request, want in ((b"GET /livez HTTP/1.0\r\n\r\n", b" 200 "),
                          (b"GET /livez HTTP/1.0\r\nHost: evil.example\r\n\r\n", b" 403 "),
                          (b"GET /livez HTTP/1.1\r\n\r\n", b" 400 ")):
        with socket.create_connection(("127.0.0.1", client.port), timeout=30) as s:
            s.sendall(request)
            answer = s.recv(4096)
        assert want in answer.split(b"\r\n")[0], (request, answer)


def test_allowed_hosts_extends_the_loopback_names(make_server):
    c = make_server("--allowed-hosts", "Jobs.Internal").client()
    status, _, body = c.raw("GET", "/v1/info", None, {"Host": f"jobs.internal:{c.port}"})
    assert status == 200, body
    status, _, _ = c.raw("GET", "/v1/info", None, {"Host": "other.internal"})
    assert status == 403


def run_server(*args, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([binary(), "server", *args], capture_output=True, text=True,
                          timeout=60, env=full_env)


def test_a_non_loopback_listen_address_is_refused_without_insecure(tmp_path):
    data = tmp_path / "d"
    for listen in ("0.0.0.0:0", "[::]:0"):
        p = run_server("--listen", listen, "--data-dir", str(data))
        assert p.returncode == 2, p.stderr
        assert "not a loopback address" in p.stderr and "--insecure" in p.stderr, p.stderr
    # The same through the variable and the config file.
    p = run_server("--data-dir", str(data), env={"YM_LISTEN": "0.0.0.0:0"})
    assert p.returncode == 2 and "--insecure" in p.stderr, p.stderr
    assert not data.exists()  # refused before anything was created


def test_bad_safety_values_are_clear_errors(tmp_path):
    data = str(tmp_path / "d")
    cases = [
        (["--allowed-hosts", "http://jobs.internal"], {}, "without scheme or path"),
        (["--allowed-hosts", "jobs.internal:7433"], {}, "without port"),
        (["--cors-allowed-origins", "null"], {}, "is not an origin"),
        (["--cors-allowed-origins", "https://dash.example/app"], {}, "an origin has no path"),
        ([], {"YM_INSECURE": "maybe"}, "YM_INSECURE: must be one of on off true false"),
        ([], {"YM_CORS_ALLOWED_ORIGINS": "dash.example"}, "YM_CORS_ALLOWED_ORIGINS"),
    ]
    for args, env, want in cases:
        p = run_server("--data-dir", data, *args, env=env)
        assert p.returncode == 2, (args, env, p.stderr)
        assert want in p.stderr, (args, env, p.stderr)
    conf = tmp_path / "ym.toml"
    conf.write_text('allowed_hosts = [1]\n')
    p = run_server("--data-dir", data, "--config", str(conf))
    assert p.returncode == 2 and '"allowed_hosts" must be a string or an array' in p.stderr, \
        p.stderr
