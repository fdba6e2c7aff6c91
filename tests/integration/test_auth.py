"""API-token authentication (docs/security.md, "Authentication", "Tokens", "Bootstrap",
"Failure rate limiting"): the real binary with `--auth tokens` on 127.0.0.1.

401 for every kind of bad token with one identical body, revocation effective for the next
request, expiry, persistence across a restart (tokens and their last use), the bootstrap file
(mode 0600, never a second one), a bootstrap secret from a file, the --insecure rule with auth,
the failure throttle (429), the token checked from the header before any body is read, the
admin API's validation, and the CLI, exec worker and Python SDK
sending a token from a flag, a variable and a file. Nothing the server logs or answers ever
holds a secret.
"""

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time

import pytest

from ymtest import Server, admin_secret, binary, metric, wait_until
from ymtest import auth_call as call
from ymtest import create_token as create

SDK = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "sdk", "python")


def auth_server(tmp_path, *extra, name="data", env=None):
    data = tmp_path / name
    s = Server(str(data), ["--auth", "tokens", "--log-level", "debug", "--access-log", "on",
                           *extra], env=env)
    s.start()
    return s


def cli(*args, env=None):
    e = dict(os.environ)
    for k in ("YM_TOKEN", "YM_TOKEN_FILE", "YM_URL"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([binary(), *args], capture_output=True, text=True, env=e, timeout=60)



class RawConn:
    """HTTP/1.1 over a raw (plain or TLS) socket, for what http.client cannot do: send a header
    without its body, pipeline requests, see the server close. Every read has a deadline, so a
    server that waits for bytes that never come fails the test instead of hanging it."""

    def __init__(self, sock, timeout=15.0):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self, end, what):
        remaining = end - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no {what} within {self.timeout} s (got {self.buf[:200]!r})")
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            pytest.fail(f"no {what} within {self.timeout} s (got {self.buf[:200]!r})")

    def reply(self):
        """The next reply: status, headers (lower-case names), body."""
        end = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            chunk = self._recv(end, "reply")
            if not chunk:
                pytest.fail(f"the connection closed before a reply (got {self.buf!r})")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            chunk = self._recv(end, "reply body")
            if not chunk:
                pytest.fail("the connection closed inside a reply body")
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(lines[0].split()[1]), headers, body

    def closed_by_server(self):
        """True when the server ends the connection (a close, or a reset) within the deadline
        and sends nothing more before."""
        end = time.monotonic() + self.timeout
        try:
            chunk = self._recv(end, "close")
        except (ConnectionError, ssl.SSLError):
            return not self.buf
        return chunk == b"" and not self.buf


def request_head(method, path, token=None, length=None, extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    if length is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
    return (head + extra + "\r\n").encode()


def check_refused_before_the_body(conn, token=None):
    """Announces a 16 MiB body without sending it: the 401 must come back at once, with
    `Connection: close`, and the server must then close the connection."""
    conn.send(request_head("POST", "/v1/jobs", token=token, length=16 * 1024 * 1024))
    status, headers, body = conn.reply()
    assert status == 401, (status, body)
    assert headers["www-authenticate"].startswith("Bearer"), headers
    assert headers.get("connection", "").lower() == "close", headers
    assert json.loads(body)["error"]["code"] == "unauthenticated", body
    assert conn.closed_by_server()
    return headers


def check_pipelined_bodies(conn, token):
    """Two authenticated requests with bodies sent back to back, then more on the same
    connection: all answered, each with its own body, the connection kept open."""
    bodies = [json.dumps({"queue": "early", "kind": "k", "payload": {"n": n}}).encode()
              for n in range(2)]
    conn.send(b"".join(request_head("POST", "/v1/jobs", token=token, length=len(b)) + b
                       for b in bodies))
    ids = []
    for _ in range(2):
        status, headers, body = conn.reply()
        assert status in (200, 201), (status, body)
        assert headers.get("connection", "").lower() != "close", headers
        ids.append(json.loads(body)["id"])
    assert len(set(ids)) == 2, ids
    # Each body was read whole and belongs to its own request.
    for n, job_id in enumerate(ids):
        conn.send(request_head("GET", f"/v1/jobs/{job_id}", token=token))
        status, _, body = conn.reply()
        assert status == 200, (status, body)
        assert json.loads(body)["payload"] == {"n": n}, body
    conn.send(request_head("GET", "/v1/queues/early", token=token))
    status, _, body = conn.reply()
    assert status == 200, (status, body)
    assert json.loads(body)["counts"]["ready"] == 2, body


def test_bootstrap_writes_a_0600_admin_token_once_and_it_works(tmp_path):
    s = auth_server(tmp_path)
    try:
        path = os.path.join(s.data_dir, "admin.token")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, oct(mode)
        secret = admin_secret(s)
        assert secret.startswith("ym_") and len(secret) == 46
        assert any("admin.token" in line for line in s.log_lines)
        status, _, body = call(s, "GET", "/v1/tokens", token=secret)
        assert status == 200, body
        assert [t["name"] for t in body["tokens"]] == ["bootstrap-admin"]
        # A restart finds a token and neither creates a second one nor touches the file.
        before = os.stat(path)
        s.terminate()
        s.start()
        assert admin_secret(s) == secret
        assert os.stat(path).st_mtime_ns == before.st_mtime_ns
        status, _, body = call(s, "GET", "/v1/tokens", token=secret)
        assert status == 200 and len(body["tokens"]) == 1, body
        # The bootstrap token was used before the restart: its last use was written at stop.
        assert body["tokens"][0]["last_used_at"] is not None
    finally:
        s.stop()


def test_a_leftover_admin_token_file_is_never_overwritten(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin.token").write_text("someone else's\n")
    p = subprocess.run([binary(), "server", "--listen", "127.0.0.1:0", "--data-dir", str(data),
                        "--auth", "tokens"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "admin.token" in p.stderr and "never overwritten" in p.stderr, p.stderr
    assert (data / "admin.token").read_text() == "someone else's\n"


def test_a_bootstrap_secret_from_a_file(tmp_path):
    secret = cli("tokens", "new-secret").stdout.strip()
    assert secret.startswith("ym_") and len(secret) == 46
    f = tmp_path / "admin.secret"
    f.write_text(secret + "\n")
    f.chmod(0o644)
    data = tmp_path / "data"

    def start(*extra):
        return subprocess.run([binary(), "server", "--listen", "127.0.0.1:0", "--data-dir",
                               str(data), "--auth", "tokens", *extra],
                              capture_output=True, text=True, timeout=60)

    p = start("--auth-bootstrap-token-file", str(f))
    assert p.returncode == 1 and "group or others" in p.stderr, p.stderr
    assert secret not in p.stderr
    weak = tmp_path / "weak.secret"
    weak.write_text("ym_" + "A" * 43 + "\n")
    weak.chmod(0o600)
    p = start("--auth-bootstrap-token-file", str(weak))
    assert p.returncode == 1 and "does not hold one API token secret" in p.stderr, p.stderr
    f.chmod(0o600)
    s = Server(str(data), ["--auth", "tokens", "--auth-bootstrap-token-file", str(f)]).start()
    try:
        status, _, body = call(s, "GET", "/v1/tokens", token=secret)
        assert status == 200, body
        assert [(t["name"], t["role"]) for t in body["tokens"]] == [("bootstrap-admin", "admin")]
        assert not os.path.exists(data / "admin.token")
        s.terminate()
        s.start()  # the same secret again: its token exists, nothing new
        status, _, body = call(s, "GET", "/v1/tokens", token=secret)
        assert status == 200 and len(body["tokens"]) == 1, body
    finally:
        s.stop()


def test_every_bad_token_gets_the_same_401_and_probes_stay_open(tmp_path):
    s = auth_server(tmp_path)
    try:
        admin = admin_secret(s)
        revoked = create(s, admin, "to-revoke", "viewer")
        status, _, _ = call(s, "DELETE", f"/v1/tokens/{revoked['id']}", token=admin)
        assert status == 200
        expired = create(s, admin, "short", "viewer", expires_in_ms=1)
        wait_until(lambda: [t for t in call(s, "GET", "/v1/tokens", token=admin)[2]["tokens"]
                            if t["name"] == "short"][0]["expired"], 30, "the token to expire")
        unknown = cli("tokens", "new-secret").stdout.strip()
        cases = [
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Bearer " + unknown},
            {"Authorization": "Bearer " + revoked["secret"]},
            {"Authorization": "Bearer " + expired["secret"]},
        ]
        bodies = set()
        for h in cases:
            status, headers, body = s.client().raw("GET", "/v1/queues", None, h)
            assert status == 401, (h, body)
            assert headers.get("www-authenticate") == "Bearer", headers
            bodies.add(body)
            for v in h.values():
                if " " in v:
                    assert v.split(" ", 1)[1].encode() not in body  # never echoed
        assert len(bodies) == 1, bodies
        assert json.loads(bodies.pop())["error"]["code"] == "unauthenticated"
        # Writes too, and nothing changed.
        status, _, _ = call(s, "POST", "/v1/jobs", {"queue": "q", "kind": "k", "payload": 1})
        assert status == 401
        for probe in ("/livez", "/readyz", "/healthz"):
            status, _, _ = call(s, "GET", probe)
            assert status == 200, probe
        status, _, _ = call(s, "GET", "/metrics")
        assert status == 401
        status, _, text = call(s, "GET", "/metrics", token=admin)
        assert status == 200
        assert metric(text, 'ym_auth_failures_total{reason="missing"}') >= 2
        assert metric(text, 'ym_auth_failures_total{reason="revoked"}') >= 1
        assert metric(text, 'ym_auth_failures_total{reason="expired"}') >= 1
        assert metric(text, 'ym_auth_failures_total{reason="unknown"}') >= 1
        assert metric(text, 'ym_auth_failures_total{reason="malformed"}') >= 3
        status, _, body = call(s, "GET", "/v1/queues", token=admin)
        assert status == 200 and body["items"] == [], body
        # A token, not the Host or the content type, says who is asking: an authenticated
        # body-less write without a JSON type and with a foreign Host passes the web guard.
        status, _, raw = s.client().raw("POST", "/v1/queues/x:pause?create=true", None,
                                        {"Authorization": "Bearer " + admin,
                                         "Host": "evil.example"})
        assert status == 200, raw
        status, _, raw = s.client().raw("POST", "/v1/queues/y:pause?create=true", None,
                                        {"Host": "evil.example"})
        assert status == 403, raw  # without a token the Host rule still applies first
    finally:
        s.stop()


def test_revocation_is_immediate_and_expiry_ends_a_token(tmp_path):
    s = auth_server(tmp_path)
    try:
        admin = admin_secret(s)
        t = create(s, admin, "ci", "producer", namespaces=["default"])
        assert t["role"] == "producer" and t["namespaces"] == ["default"]
        status, _, _ = call(s, "GET", "/v1/jobs", token=t["secret"])  # a producer's read
        assert status == 200
        status, _, body = call(s, "DELETE", f"/v1/tokens/{t['id']}", token=admin)
        assert status == 200 and body["revoked_now"] is True and body["revoked_at"], body
        status, _, _ = call(s, "GET", "/v1/jobs", token=t["secret"])
        assert status == 401  # the very next request
        status, _, body = call(s, "DELETE", f"/v1/tokens/{t['id']}", token=admin)
        assert status == 200 and body["revoked_now"] is False, body  # idempotent
        status, _, body = call(s, "DELETE", "/v1/tokens/0123456789abcdef", token=admin)
        assert status == 404, body

        e = create(s, admin, "brief", "viewer", expires_in_ms=1500)
        status, _, _ = call(s, "GET", "/v1/queues", token=e["secret"])
        assert status in (200, 401)  # may already be over on a slow machine
        wait_until(lambda: call(s, "GET", "/v1/queues", token=e["secret"])[0] == 401, 30,
                   "the token to expire")
        status, _, body = call(s, "GET", "/v1/tokens", token=admin)
        brief = [x for x in body["tokens"] if x["name"] == "brief"][0]
        assert brief["expired"] is True
    finally:
        s.stop()


def test_tokens_persist_across_a_restart(tmp_path):
    s = auth_server(tmp_path)
    try:
        admin = admin_secret(s)
        keep = create(s, admin, "keep", "worker", namespaces=["a", "b"])
        gone = create(s, admin, "gone", "viewer")
        # A worker of namespaces a and b may lease (it may not read queues).
        lease = {"queues": ["q"], "max": 1, "wait_ms": 0, "worker_id": "w"}
        assert call(s, "POST", "/v1/leases", lease, token=keep["secret"])[0] == 200
        assert call(s, "DELETE", f"/v1/tokens/{gone['id']}", token=admin)[0] == 200
        s.kill()  # no clean stop: the creates and the revoke were durable when answered
        s.start()
        assert call(s, "POST", "/v1/leases", lease, token=keep["secret"])[0] == 200
        assert call(s, "GET", "/v1/queues", token=gone["secret"])[0] == 401
        _, _, body = call(s, "GET", "/v1/tokens", token=admin)
        by_name = {t["name"]: t for t in body["tokens"]}
        assert by_name["keep"]["namespaces"] == ["a", "b"]
        assert by_name["keep"]["role"] == "worker"
        assert by_name["gone"]["revoked_at"] is not None
        for t in body["tokens"]:
            assert "secret" not in t and "hash" not in t
    finally:
        s.stop()


def test_bad_create_requests_are_clear_errors_and_change_nothing(tmp_path):
    s = auth_server(tmp_path)
    try:
        admin = admin_secret(s)
        create(s, admin, "taken", "viewer")
        cases = [
            ({"name": "x", "role": "root"}, 422, "role"),
            ({"name": "bad name", "role": "admin"}, 422, "name"),
            ({"role": "admin"}, 422, "name"),
            ({"name": "x", "role": "admin", "namespaces": []}, 422, "namespaces"),
            ({"name": "x", "role": "admin", "namespaces": ["no spaces"]}, 422, "namespaces"),
            ({"name": "x", "role": "admin", "expires_at": 1000}, 422, "expires_at"),
            ({"name": "x", "role": "admin", "extra": 1}, 422, "extra"),
            ({"name": "taken", "role": "admin"}, 409, "taken"),
        ]
        for body, want, needle in cases:
            status, _, answer = call(s, "POST", "/v1/tokens", body, token=admin)
            assert status == want, (body, answer)
            assert needle in answer["error"]["message"], answer
        status, _, body = call(s, "GET", "/v1/tokens", token=admin)
        assert sorted(t["name"] for t in body["tokens"]) == ["bootstrap-admin", "taken"]
        # Admin only: a viewer token is refused 403 and creates nothing.
        viewer = create(s, admin, "v", "viewer")
        status, _, answer = call(s, "POST", "/v1/tokens", {"name": "y", "role": "admin"},
                                 token=viewer["secret"])
        assert status == 403, answer
        assert call(s, "GET", "/v1/tokens", token=viewer["secret"])[0] == 403
    finally:
        s.stop()


def test_repeated_failures_from_an_address_are_throttled(tmp_path):
    s = auth_server(tmp_path, "--auth-max-failures", "3", "--auth-block-ms", "60000")
    try:
        admin = admin_secret(s)
        for _ in range(3):
            assert call(s, "GET", "/v1/queues", token="ym_wrong")[0] == 401
        status, headers, body = call(s, "GET", "/v1/queues", token=admin)
        assert status == 429, body  # even a good token, while throttled
        assert int(headers["retry-after"]) > 0
        assert call(s, "GET", "/livez")[0] == 200
        assert any("authentication failed from 127.0.0.1" in line for line in s.log_lines)
    finally:
        s.stop()


def test_auth_allows_a_non_loopback_listen_address_without_insecure(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is never an address of this machine: the listen check passes with
    # auth and the bind then fails, so nothing ever listens beyond loopback.
    def start(*extra):
        return subprocess.run([binary(), "server", "--listen", "192.0.2.1:0", "--data-dir",
                               str(tmp_path / "data"), *extra],
                              capture_output=True, text=True, timeout=60)

    p = start()
    assert p.returncode == 2 and "--insecure" in p.stderr, p.stderr
    p = start("--auth", "tokens")
    assert p.returncode == 1, p.stderr
    assert "--insecure" not in p.stderr and "cannot listen on 192.0.2.1" in p.stderr, p.stderr
    assert "without TLS" in p.stderr, p.stderr


def test_the_cli_sends_a_token_from_flag_variable_and_file(tmp_path):
    s = auth_server(tmp_path)
    try:
        admin = admin_secret(s)
        url = s.url()
        r = cli("queues", "--server", url)
        assert r.returncode == 1 and "unauthenticated" in r.stderr, r.stderr
        r = cli("tokens", "create", "ops", "--role", "operator", "--namespace", "a",
                "--server", url, "--token", admin)
        assert r.returncode == 0, r.stderr
        ops = r.stdout.strip()
        assert ops.startswith("ym_") and "\n" not in ops
        assert "shown only this once" in r.stderr and ops not in r.stderr
        # An operator of namespace a lists a's jobs (queues are every namespace's: 403).
        own_jobs = ("jobs", "list", "--namespace", "a", "--server", url)
        f = tmp_path / "ops.token"
        f.write_text(ops + "\n")
        assert cli(*own_jobs, "--token-file", str(f)).returncode == 0
        assert cli(*own_jobs, env={"YM_TOKEN": ops}).returncode == 0
        assert cli(*own_jobs, env={"YM_TOKEN_FILE": str(f)}).returncode == 0
        # --token wins over the variables.
        r = cli("queues", "--server", url, "--token", admin, env={"YM_TOKEN": "ym_x"})
        assert r.returncode == 0, r.stderr
        r = cli("tokens", "list", "--server", url, "--token", admin)
        assert r.returncode == 0 and "ops" in r.stdout and ops not in r.stdout, r.stdout
        r = cli("tokens", "list", "--server", url, "--token", admin, "--json")
        listed = json.loads(r.stdout)["tokens"]
        ops_id = [t["id"] for t in listed if t["name"] == "ops"][0]
        r = cli("tokens", "revoke", ops_id, "--server", url, "--token", admin)
        assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
        r = cli(*own_jobs, "--token-file", str(f))
        assert r.returncode == 1 and ops not in r.stderr and ops not in r.stdout, r.stderr
        r = cli("queues", "--server", url, "--token-file", str(tmp_path / "none"))
        assert r.returncode != 0 and "cannot read the token file" in r.stderr, r.stderr
    finally:
        s.stop()


def test_the_exec_worker_and_the_python_sdk_send_tokens(tmp_path, monkeypatch):
    if SDK not in sys.path:
        sys.path.insert(0, SDK)
    import yardmaster

    s = auth_server(tmp_path)
    w = None
    try:
        admin = admin_secret(s)
        worker_tok = create(s, admin, "worker", "worker")["secret"]
        tok_file = tmp_path / "worker.token"
        tok_file.write_text(worker_tok + "\n")
        for k in ("YM_TOKEN", "YM_TOKEN_FILE"):
            monkeypatch.delenv(k, raising=False)
        # Python SDK: refused without a token; token, token_file and the variables work.
        with pytest.raises(yardmaster.errors.Unauthenticated) as e:
            yardmaster.Client(s.url()).enqueue("x", "k", {"n": 0})
        assert e.value.status == 401
        c = yardmaster.Client(s.url(), token=admin)
        c.request("PUT", "/v1/queues/x?create=true", {"retention": {"succeeded_ms": 3600000}})
        job = c.enqueue("x", "k", {"n": 1})
        assert yardmaster.Client(s.url(), token_file=str(tok_file)).get(job["id"])["id"]
        monkeypatch.setenv("YM_TOKEN_FILE", str(tok_file))
        assert yardmaster.Client(s.url()).get(job["id"])["id"] == job["id"]
        monkeypatch.delenv("YM_TOKEN_FILE")
        monkeypatch.setenv("YM_TOKEN", admin)
        assert yardmaster.Client(s.url()).get(job["id"])["id"] == job["id"]
        monkeypatch.delenv("YM_TOKEN")

        handler = tmp_path / "ok.sh"
        handler.write_text("#!/bin/sh\ncat > /dev/null\nexit 0\n")
        handler.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k not in ("YM_TOKEN", "YM_TOKEN_FILE")}
        env["YM_TOKEN_FILE"] = str(tok_file)
        w = subprocess.Popen([binary(), "worker", "--server", s.url(), "--queue", "x", "--",
                              str(handler)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env=env)
        wait_until(lambda: c.get(job["id"])["state"] == "succeeded", 30,
                   "the job acked by the exec worker with a token from $YM_TOKEN_FILE")
        job2 = c.enqueue("x", "k", {"n": 2})
        w.send_signal(signal.SIGTERM)
        w.wait(30)
        w = subprocess.Popen([binary(), "worker", "--server", s.url(), "--token", worker_tok,
                              "--queue", "x", "--", str(handler)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True,
                             env={k: v for k, v in env.items() if k != "YM_TOKEN_FILE"})
        wait_until(lambda: c.get(job2["id"])["state"] == "succeeded", 30,
                   "the job acked by the exec worker with --token")
    finally:
        if w is not None and w.poll() is None:
            w.send_signal(signal.SIGTERM)
            w.wait(30)
        s.stop()


def test_no_secret_ever_reaches_a_log_line_or_a_listing(tmp_path):
    s = auth_server(tmp_path)
    try:
        admin = admin_secret(s)
        made = [create(s, admin, f"t{i}", "viewer") for i in range(3)]
        secrets = [admin] + [m["secret"] for m in made]
        revoked = made[0]
        call(s, "DELETE", f"/v1/tokens/{revoked['id']}", token=admin)
        for sec in secrets:
            call(s, "GET", "/v1/queues", token=sec)
            call(s, "GET", "/v1/queues", token=sec + "x")  # malformed: logged as a failure
        status, _, job = call(s, "POST", "/v1/jobs", {"queue": "q", "kind": "k", "payload": {}},
                              token=admin)
        assert status == 201, job
        _, _, listing = call(s, "GET", "/v1/tokens", token=admin)
        _, _, audit = call(s, "GET", "/v1/audit?limit=1000", token=admin)
        tok_entries = [e for e in audit["entries"] if e["action"].startswith("token.")]
        assert [(e["action"], e["actor"]) for e in tok_entries] == \
            [("token.create", "bootstrap-admin")] * 3 + [("token.revoke", "bootstrap-admin")], \
            tok_entries
        _, _, metrics = call(s, "GET", "/metrics", token=admin)
        r = cli("tokens", "list", "--server", s.url(), "--token", admin, "--json")
        s.terminate()
        logs = "\n".join(s.log_lines)
        assert " debug " in logs and "component=access" in logs  # debug and access logs were on
        for sec in secrets:
            body = sec[3:]
            assert body not in logs
            assert body not in json.dumps(listing)
            assert body not in json.dumps(audit)
            assert body not in metrics
            assert body not in r.stdout and body not in r.stderr
    finally:
        s.stop()


def test_a_cors_preflight_needs_no_token_and_is_not_a_failure(tmp_path):
    s = auth_server(tmp_path, "--cors-allowed-origins", "http://localhost:3000",
                    "--auth-max-failures", "2")
    try:
        admin = admin_secret(s)
        for _ in range(3):  # past auth_max_failures, were a preflight counted
            status, headers, _ = s.client().raw(
                "OPTIONS", "/v1/queues", None,
                {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"})
            assert status == 204
            assert "authorization" in headers["access-control-allow-headers"].lower()
        status, _, body = call(s, "GET", "/v1/queues", token=admin,
                               headers={"Origin": "http://localhost:3000"})
        assert status == 200, body  # not throttled
        _, _, text = call(s, "GET", "/metrics", token=admin)
        assert metric(text, 'ym_auth_failures_total{reason="missing"}') == 0
    finally:
        s.stop()


def test_a_request_without_a_valid_token_is_refused_before_its_body_is_read(tmp_path):
    # Regression: the token used to be checked only after the whole body (up to
    # max_request_bytes) was read, so a client without a token could make the server read and
    # buffer 16 MiB per request. Now the 401 comes from the header alone, and the connection
    # closes after it (the unread body must not be parsed as a next request).
    s = auth_server(tmp_path)
    try:
        admin = admin_secret(s)
        for token in (None, "ym_not-a-real-token"):
            with socket.create_connection(("127.0.0.1", s.port), timeout=15) as sock:
                headers = check_refused_before_the_body(RawConn(sock), token)
            rid = headers["x-request-id"]
            # The refused request still has its access line, and counts as a failure.
            wait_until(lambda: [l for l in s.log_lines
                                if f"request_id={rid}" in l and "component=access" in l
                                and "status=401" in l], 30, "the access line of the 401")
        # A client that writes its whole (8 MB) body before reading still gets the 401, not a
        # reset or a broken pipe: what it sends after the answer is dropped until it closes.
        status, headers, body = call(s, "POST", "/v1/jobs",
                                     {"queue": "q", "kind": "k", "payload": "x" * 8_000_000},
                                     token="ym_not-a-real-token")
        assert status == 401 and body["error"]["code"] == "unauthenticated", (status, body)
        _, _, text = s.client().raw("GET", "/metrics", None, {"Authorization": "Bearer " + admin})
        failures = sum(float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
                       if line.startswith("ym_auth_failures_total{"))
        assert failures >= 3, text
        # An authenticated client still sends bodies, pipelined, on a kept-alive connection.
        with socket.create_connection(("127.0.0.1", s.port), timeout=15) as sock:
            check_pipelined_bodies(RawConn(sock), admin)
    finally:
        s.stop()
