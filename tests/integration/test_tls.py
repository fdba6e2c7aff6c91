"""TLS on the listener (docs/security.md, "TLS"): handshake, trust, expiry, protocol floor,
reload on SIGHUP, client certificates, the handshake timeout and the start-up errors.

Every certificate is made by the test with the `openssl` command (a CA, a second CA nobody
trusts, server certificates for 127.0.0.1/localhost, an expired one, client certificates), in
a temporary directory. The client side is Python's stdlib `ssl`. Servers listen on 127.0.0.1.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest

from ymtest import binary, metric, wait_until

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

REQ_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[elsewhere]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:jobs.example.invalid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
"""


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)


class Pki:
    """Certificates made with `openssl` in `d`: ca(name) makes a CA, leaf(...) a certificate
    it signs. Keys are P-256."""

    def __init__(self, d):
        self.d = str(d)
        with open(os.path.join(self.d, "openssl.cnf"), "w") as f:
            f.write(REQ_CNF)

    def path(self, name):
        return os.path.join(self.d, name)

    def _key(self, name):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", f"{name}.key", cwd=self.d)

    def ca(self, name):
        self._key(name)
        _openssl("req", "-config", "openssl.cnf", "-new", "-x509", "-key", f"{name}.key",
                 "-subj", f"/CN={name}", "-days", "2", "-extensions", "ca",
                 "-out", f"{name}.pem", cwd=self.d)
        return self.path(f"{name}.pem")

    def leaf(self, name, ca, kind="server", days=1):
        self._key(name)
        _openssl("req", "-config", "openssl.cnf", "-new", "-key", f"{name}.key",
                 "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=self.d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-days", str(days), "-extfile", "openssl.cnf",
                 "-extensions", kind, "-out", f"{name}.pem", cwd=self.d)
        return self.path(f"{name}.pem"), self.path(f"{name}.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.ca("ca")
    p.ca("other-ca")
    p.leaf("server1", "ca")
    p.leaf("server2", "ca")
    p.leaf("expired", "ca", days=-1)  # notAfter a day before now
    p.leaf("client", "ca", kind="client")
    p.leaf("elsewhere", "ca", kind="elsewhere")  # a good certificate for another name
    p.leaf("stranger", "other-ca", kind="client")
    return p


class TlsServer:
    """A `yardmaster server` with TLS on a fresh data dir; its cert and key are copies, so a
    test can replace them before a SIGHUP."""

    def __init__(self, tmp_path, pki, cert="server1", extra=()):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.cert = str(tmp_path / "server.pem")
        self.key = str(tmp_path / "server.key")
        shutil.copy(pki.path(f"{cert}.pem"), self.cert)
        shutil.copy(pki.path(f"{cert}.key"), self.key)
        args = [binary(), "server", "--listen", "127.0.0.1:0", "--data-dir",
                str(tmp_path / "data"), "--tls-cert-file", self.cert, "--tls-key-file", self.key,
                *extra]
        self.lines = []
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        self.port = 0
        found = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                if not found.is_set() and "listening on https://127.0.0.1:" in line:
                    self.port = int(line.rsplit(":", 1)[1].split()[0])
                    found.set()
            found.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        assert found.wait(30) and self.port, "\n".join(self.lines)

    def replace(self, pki, cert):
        # Written to a temporary name and renamed, as a certificate manager would.
        for src, dst in ((pki.path(f"{cert}.pem"), self.cert), (pki.path(f"{cert}.key"), self.key)):
            shutil.copy(src, dst + ".new")
            os.replace(dst + ".new", dst)

    def log_count(self, text):
        return sum(text in line for line in list(self.lines))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.reader.join(5)


@pytest.fixture
def tls_server(tmp_path, pki):
    servers = []

    def make(**kw):
        s = TlsServer(tmp_path / f"s{len(servers)}", pki, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def client_context(pki, ca="ca", cert=None):
    ctx = ssl.create_default_context(cafile=pki.path(f"{ca}.pem"))
    if cert:
        ctx.load_cert_chain(pki.path(f"{cert}.pem"), pki.path(f"{cert}.key"))
    return ctx


def connect(port, ctx, host="127.0.0.1"):
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
    conn.connect()
    return conn


def call(conn, method, path, body=None):
    headers = {"content-type": "application/json"} if method != "GET" else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def metrics_text(conn):
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    assert r.status == 200, body
    return body


def not_after(path):
    """A certificate's notAfter in Unix seconds, read with `openssl x509`."""
    p = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-enddate"], capture_output=True,
                       text=True, timeout=60, check=True)
    return ssl.cert_time_to_seconds(p.stdout.strip().split("=", 1)[1])


def peer_cn(conn):
    subject = dict(x[0] for x in conn.sock.getpeercert()["subject"])
    return subject["commonName"]


def test_handshake_and_requests_over_tls(tls_server, pki):
    s = tls_server()
    conn = connect(s.port, client_context(pki))
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert peer_cn(conn) == "server1"
    status, job = call(conn, "POST", "/v1/jobs", {"queue": "q", "kind": "k", "payload": {"n": 1}})
    assert status == 201, job
    sock = conn.sock
    status, got = call(conn, "GET", f"/v1/jobs/{job['id']}")
    assert status == 200 and got["id"] == job["id"]
    assert conn.sock is sock  # keep-alive: the same TLS connection
    # By name too: the certificate carries DNS:localhost.
    conn2 = connect(s.port, client_context(pki), host="localhost")
    assert call(conn2, "GET", "/livez")[0] == 200


def test_tls12_gets_an_ecdhe_aead_suite(tls_server, pki):
    s = tls_server()
    ctx = client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = connect(s.port, ctx)
    assert conn.sock.version() == "TLSv1.2"
    name = conn.sock.cipher()[0]
    assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name
    # A TLS 1.2 client offering only non-forward-secret or CBC suites is refused.
    weak = client_context(pki)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-SHA:AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA")
    with pytest.raises(ssl.SSLError):
        connect(s.port, weak)


def test_a_client_trusting_another_ca_fails(tls_server, pki):
    s = tls_server()
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(s.port, client_context(pki, ca="other-ca"))


def test_an_expired_certificate_is_refused_at_start_and_at_reload(tmp_path, tls_server, pki):
    # At start: exit code 2 with the date, before the store is touched (a server never offers a
    # certificate every verifying client refuses).
    expired_key = tmp_path / "expired.key"
    shutil.copy(pki.path("expired.key"), expired_key)
    p = run_server(tmp_path, "--tls-cert-file", pki.path("expired.pem"), "--tls-key-file",
                   str(expired_key))
    assert p.returncode == 2, p.stderr
    assert "the certificate in " + pki.path("expired.pem") in p.stderr and "expired on" in p.stderr
    assert not (tmp_path / "data").exists()
    # At a reload: refused, the valid certificate in use is kept, the metric says so.
    s = tls_server()
    s.replace(pki, "expired")
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: s.log_count("TLS reload failed") >= 1, 30, "the reload error line")
    assert any("expired on" in line for line in s.lines), s.lines[-5:]
    conn = connect(s.port, client_context(pki))  # a verifying client: still a valid certificate
    assert peer_cn(conn) == "server1"
    text = metrics_text(conn)
    assert metric(text, 'ym_tls_reloads_total{result="error"}') == 1
    assert metric(text, 'ym_tls_reloads_total{result="ok"}') == 0


def _tls11_context():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def test_tls11_is_refused(tls_server, pki):
    # Control: this client context really speaks TLS 1.1 (to a Python server that allows it),
    # so the refusal below is the yardmaster server's doing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.minimum_version = ssl.TLSVersion.TLSv1_1
        srv.set_ciphers("DEFAULT:@SECLEVEL=0")
    srv.load_cert_chain(pki.path("server1.pem"), pki.path("server1.key"))
    listener = socket.create_server(("127.0.0.1", 0))
    done = {}

    def serve():
        c, _ = listener.accept()
        with srv.wrap_socket(c, server_side=True) as t:
            done["version"] = t.version()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    with _tls11_context().wrap_socket(socket.create_connection(listener.getsockname())) as t:
        assert t.version() == "TLSv1.1"
    th.join(30)
    listener.close()
    assert done.get("version") == "TLSv1.1"

    s = tls_server()
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
            _tls11_context().wrap_socket(raw)


def test_sighup_reloads_the_certificate_and_keeps_open_connections(tls_server, pki):
    s = tls_server()
    old = connect(s.port, client_context(pki))
    assert peer_cn(old) == "server1"
    assert call(old, "GET", "/livez")[0] == 200
    sock = old.sock

    s.replace(pki, "server2")
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: s.log_count("TLS certificate reloaded") >= 1, 30, "the reload log line")
    new = connect(s.port, client_context(pki))
    assert peer_cn(new) == "server2"
    assert call(new, "GET", "/livez")[0] == 200
    # The connection opened before the reload is still the same one, with the old certificate.
    status, job = call(old, "POST", "/v1/jobs", {"queue": "q", "kind": "k", "payload": {}})
    assert status == 201, job
    assert old.sock is sock and peer_cn(old) == "server1"

    # A bad pair (server1's certificate with server2's key) is refused, logged, and the pair in
    # use is kept: new connections still get server2, and the server keeps running.
    shutil.copy(pki.path("server1.pem"), s.cert)
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: s.log_count("TLS reload failed") >= 1, 30, "the reload error line")
    assert any("does not match the certificate" in line for line in s.lines), s.lines[-5:]
    assert s.proc.poll() is None
    again = connect(s.port, client_context(pki))
    assert peer_cn(again) == "server2"
    assert call(again, "GET", "/livez")[0] == 200


def test_mtls_requires_a_client_certificate_from_the_ca(tls_server, pki):
    s = tls_server(extra=("--tls-client-ca-file", pki.path("ca.pem")))
    conn = connect(s.port, client_context(pki, cert="client"))
    assert call(conn, "GET", "/livez")[0] == 200

    for cert in (None, "stranger"):
        # With TLS 1.3 the client learns of the refusal at its first read, not in connect().
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c = connect(s.port, client_context(pki, cert=cert))
            call(c, "GET", "/livez")


def test_sighup_reloads_the_client_ca_file_with_the_certificate(tmp_path, tls_server, pki):
    ca_file = tmp_path / "clients.pem"
    shutil.copy(pki.path("ca.pem"), ca_file)
    s = tls_server(extra=("--tls-client-ca-file", str(ca_file)))
    kept = connect(s.port, client_context(pki, cert="client"))
    assert call(kept, "GET", "/livez")[0] == 200

    def refused(cert):
        try:
            c = connect(s.port, client_context(pki, cert=cert))
            call(c, "GET", "/livez")
        except (ssl.SSLError, ConnectionError):
            return True
        return False

    assert refused("stranger") and not refused("client")
    # The clients' CA changes to other-ca: after the SIGHUP, new connections need its clients.
    shutil.copy(pki.path("other-ca.pem"), str(ca_file) + ".new")
    os.replace(str(ca_file) + ".new", ca_file)
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: s.log_count("TLS certificate reloaded") >= 1, 30, "the reload log line")
    assert any("1 client CA certificate(s)" in line for line in s.lines), s.lines[-5:]
    assert refused("client") and not refused("stranger")
    # The connection opened before the reload, with the old CA's client, is still served.
    status, job = call(kept, "POST", "/v1/jobs", {"queue": "q", "kind": "k", "payload": {}})
    assert status == 201, job

    # A CA file that cannot be used: the whole reload is refused, the CA set in use is kept.
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: s.log_count("TLS reload failed") >= 1, 30, "the reload error line")
    assert any("tls_client_ca_file: " + str(ca_file) in line for line in s.lines), s.lines[-5:]
    assert refused("client") and not refused("stranger")
    text = metrics_text(connect(s.port, client_context(pki, cert="stranger")))
    assert metric(text, 'ym_tls_reloads_total{result="ok"}') == 1
    assert metric(text, 'ym_tls_reloads_total{result="error"}') == 1


def test_handshake_results_and_the_certificate_expiry_are_metrics(tmp_path, tls_server, pki):
    s = tls_server(extra=("--tls-handshake-timeout-ms", "300"))
    good = connect(s.port, client_context(pki))
    # The served certificate's notAfter, for an alert before it expires.
    assert metric(metrics_text(good), "ym_tls_certificate_expiry_timestamp_seconds") == \
        not_after(pki.path("server1.pem"))
    # The test certificates live a day: under 14 days, so the start logged a warning.
    assert any("the certificate in " + s.cert in line and "expires on" in line
               for line in s.lines), s.lines[:5]
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(s.port, client_context(pki, ca="other-ca"))  # the client refuses ours: an alert
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        plain.request("GET", "/livez")
        plain.getresponse()  # not TLS at all: protocol
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
        assert raw.recv(1) == b""  # silent until the server gives up: timeout
    socket.create_connection(("127.0.0.1", s.port), timeout=30).close()  # gone: closed

    def counts():
        text = metrics_text(good)
        return {r: metric(text, f'ym_tls_handshakes_total{{result="{r}"}}')
                for r in ("ok", "client_alert", "protocol", "timeout", "closed",
                          "client_certificate")}

    want = {"ok": 1, "client_alert": 1, "protocol": 1, "timeout": 1, "closed": 1,
            "client_certificate": 0}
    wait_until(lambda: counts() == want, 30, f"handshake counts {want}")

    m = tls_server(extra=("--tls-client-ca-file", pki.path("ca.pem")))
    for cert in (None, "stranger"):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c = connect(m.port, client_context(pki, cert=cert))
            call(c, "GET", "/livez")
    # The client can see its refusal a moment before the server's handler counts it.
    mconn = connect(m.port, client_context(pki, cert="client"))
    wait_until(lambda: metric(metrics_text(mconn),
                              'ym_tls_handshakes_total{result="client_certificate"}') == 2,
               30, "two client_certificate handshakes")
    assert metric(metrics_text(mconn), 'ym_tls_handshakes_total{result="ok"}') == 1


def test_a_handshake_dribbled_byte_by_byte_is_cut_at_the_timeout(tls_server, pki):
    # The deadline covers the whole handshake, not each read: a client that sends its
    # ClientHello one byte at a time is closed at the timeout all the same.
    s = tls_server(extra=("--tls-handshake-timeout-ms", "500"))
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 400
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
        start = time.monotonic()
        closed = False
        for byte in hello:  # 411 bytes at 50 ms each: 20 s if the server waited for them all
            try:
                raw.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            raw.settimeout(0.05)
            try:
                if raw.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        assert closed, "the server waited for the whole dribbled ClientHello"
        assert time.monotonic() - start < 15


def test_a_key_every_user_can_read_is_refused_at_reload(tls_server, pki):
    s = tls_server()
    s.replace(pki, "server2")
    os.chmod(s.key, 0o644)
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: s.log_count("TLS reload failed") >= 1, 30, "the reload error line")
    assert any("is readable or writable by every user (mode 0644)" in line for line in s.lines)
    assert peer_cn(connect(s.port, client_context(pki))) == "server1"
    os.chmod(s.key, 0o640)  # group-readable is fine
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: s.log_count("TLS certificate reloaded") >= 1, 30, "the reload log line")
    assert peer_cn(connect(s.port, client_context(pki))) == "server2"


def test_relative_paths_in_the_config_file_are_from_its_directory(tmp_path, pki):
    # The config file and its certificates in one directory, the server started elsewhere.
    conf = tmp_path / "etc"
    (conf / "tls").mkdir(parents=True)
    for name in ("server1.pem", "server1.key", "ca.pem"):
        shutil.copy(pki.path(name), conf / "tls" / name)
    (conf / "ym.toml").write_text('listen = "127.0.0.1:0"\n'
                                  'tls_cert_file = "tls/server1.pem"\n'
                                  'tls_key_file = "tls/server1.key"\n'
                                  'tls_client_ca_file = "./tls/ca.pem"\n'
                                  'data_dir = "data"\n')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    proc = subprocess.Popen([binary(), "server", "--config", str(conf / "ym.toml")], cwd=elsewhere,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        port = 0
        for line in proc.stderr:
            if "listening on https://127.0.0.1:" in line:
                port = int(line.rsplit(":", 1)[1].split()[0])
                break
        assert port, "the server did not start with the relative paths of its config file"
        c = connect(port, client_context(pki, cert="client"))
        assert call(c, "GET", "/livez")[0] == 200
        assert (conf / "data").is_dir() and not (elsewhere / "data").exists()
    finally:
        proc.kill()
        proc.wait(30)


def test_a_silent_connection_is_closed_at_the_handshake_timeout(tls_server, pki):
    s = tls_server(extra=("--tls-handshake-timeout-ms", "300"))
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
        start = time.monotonic()
        assert raw.recv(1) == b""  # closed by the server, long before the 30 s client timeout
        assert time.monotonic() - start < 25


def test_plain_http_to_a_tls_port_gets_no_answer(tls_server, pki):
    s = tls_server()
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("GET", "/livez")
        conn.getresponse()


def test_limits_apply_over_tls(tls_server, pki):
    s = tls_server(extra=("--max-request-bytes", "2048", "--max-payload-bytes", "1024"))
    conn = connect(s.port, client_context(pki))
    status, body = call(conn, "POST", "/v1/jobs", {"queue": "q", "kind": "k", "payload": {"x": "y" * 4000}})
    assert status == 413 and body["error"]["code"] == "payload_too_large", body
    conn = connect(s.port, client_context(pki))
    conn.request("GET", "/livez", headers={"x-big": "a" * 20000})
    r = conn.getresponse()
    assert r.status == 400 and b"headers are over the limit" in r.read()


def run_server(tmp_path, *args):
    return subprocess.run([binary(), "server", "--listen", "127.0.0.1:0", "--data-dir",
                           str(tmp_path / "data"), *args],
                          capture_output=True, text=True, timeout=60)


def test_bad_tls_configuration_is_a_clear_error_at_start(tmp_path, pki):
    cert, key = pki.path("server1.pem"), pki.path("server1.key")
    private_cert = str(tmp_path / "cert-as-key.pem")  # not a key, but private: parsed
    shutil.copy(cert, private_cert)
    os.chmod(private_cert, 0o600)
    public_key = str(tmp_path / "public.key")  # a key every user can read: refused
    shutil.copy(key, public_key)
    os.chmod(public_key, 0o644)
    cases = [
        (("--tls-cert-file", cert), "tls_cert_file is set but tls_key_file is not"),
        (("--tls-key-file", key), "tls_key_file is set but tls_cert_file is not"),
        (("--tls-client-ca-file", pki.path("ca.pem")), "tls_client_ca_file needs tls_cert_file"),
        (("--tls-cert-file", str(tmp_path / "none.pem"), "--tls-key-file", key),
         "tls_cert_file: cannot read"),
        (("--tls-cert-file", cert, "--tls-key-file", str(tmp_path / "none.key")),
         "tls_key_file: cannot read"),
        (("--tls-cert-file", key, "--tls-key-file", key), "holds no PEM certificate"),
        (("--tls-cert-file", cert, "--tls-key-file", private_cert),
         "holds no usable PEM private key"),
        (("--tls-cert-file", cert, "--tls-key-file", public_key),
         f"tls_key_file: {public_key} is readable or writable by every user (mode 0644)"),
        (("--tls-cert-file", cert, "--tls-key-file", pki.path("server2.key")),
         "does not match the certificate"),
    ]
    for args, message in cases:
        p = run_server(tmp_path, *args)
        assert p.returncode == 2 and message in p.stderr, (args, p.stderr)
        assert not (tmp_path / "data").exists()  # refused before the store was touched


# --- https:// in the clients: the CLI and the exec worker (the C++ HttpClient, as the C++ SDK
# uses it) and the Python SDK --------------------------------------------------------------


def cli(*args, env=None):
    full_env = dict(os.environ)
    full_env.pop("YM_CA_FILE", None)
    full_env.update(env or {})
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=60,
                          env=full_env)


def test_the_cli_speaks_https_with_a_ca_file(tls_server, pki):
    s = tls_server()
    url = f"https://127.0.0.1:{s.port}"
    r = cli("enqueue", "--server", url, "--ca-file", pki.path("ca.pem"), "--json", "-q", "q",
            "-k", "k", "-p", '{"n":1}')
    assert r.returncode == 0, r.stderr
    job_id = json.loads(r.stdout)["id"]
    # $YM_CA_FILE instead of the flag, and the host name instead of the address.
    r = cli("jobs", "get", job_id, "--server", f"https://localhost:{s.port}", "--json",
            env={"YM_CA_FILE": pki.path("ca.pem")})
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == job_id, r.stderr
    # A CA that did not sign the server's certificate: refused, with the reason.
    r = cli("info", "--server", url, "--ca-file", pki.path("other-ca.pem"))
    assert r.returncode != 0
    assert "TLS handshake" in r.stderr and "certificate" in r.stderr, r.stderr
    r = cli("info", "--server", url, "--ca-file", str(pki.path("missing.pem")))
    assert r.returncode != 0 and "cannot read the CA file" in r.stderr, r.stderr
    # The address in the URL must be one the certificate names.
    other = tls_server(cert="elsewhere")
    r = cli("info", "--server", f"https://127.0.0.1:{other.port}", "--ca-file",
            pki.path("ca.pem"))
    assert r.returncode != 0 and "TLS handshake" in r.stderr, r.stderr
    r = cli("info", "--server", f"https://localhost:{other.port}", "--ca-file",
            pki.path("ca.pem"))
    assert r.returncode != 0 and "TLS handshake" in r.stderr, r.stderr


def test_the_exec_worker_runs_a_job_over_https(tls_server, pki, tmp_path):
    s = tls_server()
    conn = connect(s.port, client_context(pki))
    status, _ = call(conn, "PUT", "/v1/queues/x?create=true",
                     {"retention": {"succeeded_ms": 3600000}})
    assert status == 200
    status, job = call(conn, "POST", "/v1/jobs", {"queue": "x", "kind": "k", "payload": {"a": 1}})
    assert status == 201, job
    handler = tmp_path / "ok.sh"
    handler.write_text("#!/bin/sh\ncat > /dev/null\nexit 0\n")
    handler.chmod(0o755)
    env = dict(os.environ)
    env.pop("YM_CA_FILE", None)
    w = subprocess.Popen([binary(), "worker", "--server", f"https://127.0.0.1:{s.port}",
                          "--ca-file", pki.path("ca.pem"), "--queue", "x", "--", str(handler)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_until(lambda: call(conn, "GET", f"/v1/jobs/{job['id']}")[1]["state"] == "succeeded",
                   30, "the job acked by the exec worker over https")
    finally:
        w.send_signal(signal.SIGTERM)
        w.wait(30)


def test_the_python_sdk_speaks_https_with_a_ca_file(tls_server, pki, monkeypatch):
    import sys
    sdk = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "sdk", "python")
    if sdk not in sys.path:
        sys.path.insert(0, sdk)
    import yardmaster

    s = tls_server()
    monkeypatch.delenv("YM_CA_FILE", raising=False)
    c = yardmaster.Client(f"https://127.0.0.1:{s.port}", ca_file=pki.path("ca.pem"))
    job = c.enqueue("q", "k", {"n": 1})
    assert c.get(job["id"])["id"] == job["id"]
    monkeypatch.setenv("YM_CA_FILE", pki.path("ca.pem"))
    assert yardmaster.Client(f"https://localhost:{s.port}").get(job["id"])["id"] == job["id"]
    monkeypatch.delenv("YM_CA_FILE")
    bad = yardmaster.Client(f"https://127.0.0.1:{s.port}", ca_file=pki.path("other-ca.pem"))
    with pytest.raises(yardmaster.errors.Unreachable):
        bad.get(job["id"])


def test_the_clients_present_a_client_certificate_to_an_mtls_server(tls_server, pki,
                                                                   monkeypatch):
    s = tls_server(extra=("--tls-client-ca-file", pki.path("ca.pem")))
    url = f"https://127.0.0.1:{s.port}"
    ca = ("--ca-file", pki.path("ca.pem"))
    # The CLI: refused without a certificate, answered with one (flags, then variables).
    r = cli("info", "--server", url, *ca)
    assert r.returncode != 0, r.stdout
    r = cli("info", "--server", url, *ca, "--client-cert-file", pki.path("client.pem"),
            "--client-key-file", pki.path("client.key"))
    assert r.returncode == 0, r.stderr
    r = cli("info", "--server", url, *ca, env={"YM_CLIENT_CERT_FILE": pki.path("client.pem"),
                                              "YM_CLIENT_KEY_FILE": pki.path("client.key")})
    assert r.returncode == 0, r.stderr
    r = cli("info", "--server", url, *ca, "--client-cert-file", pki.path("stranger.pem"),
            "--client-key-file", pki.path("stranger.key"))
    assert r.returncode != 0, r.stdout
    r = cli("info", "--server", url, *ca, "--client-cert-file", pki.path("client.pem"))
    assert r.returncode != 0 and "both its certificate file and its key file" in r.stderr

    # The Python SDK.
    import sys
    sdk = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "sdk", "python")
    if sdk not in sys.path:
        sys.path.insert(0, sdk)
    import yardmaster

    for name in ("YM_CA_FILE", "YM_CLIENT_CERT_FILE", "YM_CLIENT_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    good = yardmaster.Client(url, ca_file=pki.path("ca.pem"),
                             client_cert_file=pki.path("client.pem"),
                             client_key_file=pki.path("client.key"))
    job = good.enqueue("q", "k", {"n": 1})
    assert good.get(job["id"])["id"] == job["id"]
    with pytest.raises(yardmaster.errors.Unreachable):
        yardmaster.Client(url, ca_file=pki.path("ca.pem")).get(job["id"])


def test_sighup_without_tls_is_logged_and_the_server_keeps_serving(make_server):
    s = make_server()
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any("nothing to reload (TLS is off)" in line for line in s.log_lines), 30,
               "the SIGHUP log line")
    assert s.proc.poll() is None
    status, _ = s.client().call("GET", "/livez")
    assert status == 200


def test_a_connection_over_the_cap_is_closed_without_a_plain_answer(tls_server, pki):
    s = tls_server(extra=("--max-connections-per-client", "1"))
    first = connect(s.port, client_context(pki))
    assert call(first, "GET", "/livez")[0] == 200
    # The second connection from 127.0.0.1 is over the cap: closed at once, and without the
    # plain-HTTP 503 a TLS client could not read.
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
        assert raw.recv(100) == b""
    assert call(first, "GET", "/livez")[0] == 200  # the first one is untouched


def test_a_closing_connection_ends_with_close_notify(tls_server, pki):
    # Connection: close: after the reply the server sends TLS close_notify, so a strict client
    # (ragged EOFs not suppressed) reads a clean end, not a truncation.
    s = tls_server()
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    ctx = client_context(pki)
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)  # a truncation is an error
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                                         suppress_ragged_eofs=False) as t:
        t.sendall(b"GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = t.recv(4096)  # raises ssl.SSLEOFError on a close without close_notify
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data, data


def test_a_streamed_export_over_tls_is_complete_and_a_vanished_reader_stops_it(tls_server, pki):
    """The chunked namespace export (docs/api.md) over TLS: complete, then the same connection
    is reused; a client that closes its TLS connection mid-export leaves the server healthy."""
    s = tls_server()
    ctx = client_context(pki)
    conn = connect(s.port, ctx)
    ids = []
    for _ in range(6):
        jobs = [{"queue": "q", "kind": "k", "namespace": "t", "payload": {"pad": "x" * 500}}
                for _ in range(1000)]
        status, body = call(conn, "POST", "/v1/jobs:batch", {"jobs": jobs})
        assert status == 200, body
        ids += [r["id"] for r in body["results"]]
    conn.request("GET", "/v1/namespaces/t/export")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    lines = r.read().decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    status, _ = call(conn, "GET", "/healthz")  # the keep-alive connection is still good
    assert status == 200
    for _ in range(3):
        gone = connect(s.port, ctx)
        gone.request("GET", "/v1/namespaces/t/export")
        resp = gone.getresponse()
        assert resp.status == 200
        resp.read(1000)
        gone.sock.close()  # about 4 MB left unread
        gone.close()
    status, _ = call(conn, "GET", "/healthz")
    assert status == 200
    conn.request("GET", "/v1/namespaces/t/export")
    assert len(conn.getresponse().read().decode().splitlines()) == len(ids)
    conn.close()


def test_with_tokens_a_request_without_one_is_refused_before_its_body_over_tls(tmp_path,
                                                                                tls_server, pki):
    # The same checks as test_auth.py's, over the TLS session: the 401 comes from the header
    # alone, then the connection closes (after at most the 2 s the server drops what a client
    # still sends: this one sends nothing more); an authenticated client still
    # pipelines requests with bodies on one kept-alive connection.
    from test_auth import RawConn, check_pipelined_bodies, check_refused_before_the_body
    s = tls_server(extra=("--auth", "tokens"))
    admin = (tmp_path / "s0" / "data" / "admin.token").read_text().strip()
    ctx = client_context(pki)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=15),
                         server_hostname="127.0.0.1") as sock:
        check_refused_before_the_body(RawConn(sock))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=15),
                         server_hostname="127.0.0.1") as sock:
        check_pipelined_bodies(RawConn(sock), admin)
