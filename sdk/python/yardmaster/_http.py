"""One keep-alive HTTP/1.1 JSON connection to a Yardmaster server (internal).

:class:`Connection` is owned by one thread at a time; only :meth:`Connection.abort` may be called
from another thread. Non-2xx answers become typed :mod:`yardmaster.errors`; transport failures
(refused, reset, timed out) become :class:`~yardmaster.errors.Unreachable`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

from ._version import __version__
from .errors import Unreachable, error_from_response

DEFAULT_URL = "http://127.0.0.1:7433"
USER_AGENT = f"yardmaster-python/{__version__}"


def resolve_url(url: Optional[str]) -> str:
    """The server URL to use: ``url`` if given, else ``$YM_URL``, else the default address."""
    return (url or os.environ.get("YM_URL") or DEFAULT_URL).rstrip("/")


class JsonFloat(float):
    """A JSON number read from the server that is not a plain integer (``1E2``, ``0.10``,
    ``3.14159265358979323846``, ``1e400``), kept with its exact text.

    It is a ``float`` for arithmetic (``1e400`` is ``inf`` as a float), and it is written back
    exactly as it was read: a payload handed to a handler and returned as its result, or
    re-enqueued, reaches the server unchanged (docs/api.md: payloads are passed through
    exactly). Integers need no such help: Python's ``int`` is exact at any size.
    """

    __slots__ = ("text",)

    def __new__(cls, text: str) -> "JsonFloat":
        obj = super().__new__(cls, float(text))
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text

    def __reduce__(self) -> Any:
        return (JsonFloat, (self.text,))


def decode_json(data: bytes) -> Any:
    """Decodes a server answer, keeping every non-integer number's text (:class:`JsonFloat`)."""
    return json.loads(data, parse_float=JsonFloat)


def _floatstr(o: float) -> str:
    if isinstance(o, JsonFloat):
        return o.text
    if o != o or o in (float("inf"), float("-inf")):
        raise ValueError(f"out of range float values are not JSON compliant: {o!r}")
    return float.__repr__(o)


def _has_json_float(o: Any) -> bool:
    if isinstance(o, dict):
        return any(_has_json_float(v) for v in o.values())
    if isinstance(o, (list, tuple)):
        return any(_has_json_float(v) for v in o)
    return isinstance(o, JsonFloat)


def encode_json(body: Any) -> bytes:
    """Compact JSON as the server wants it. NaN and infinities are refused (``ValueError``)
    because they are not JSON; a :class:`JsonFloat` is written with its original text."""
    if not _has_json_float(body):
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
    # The C encoder writes every float through float.__repr__, which would lose a JsonFloat's
    # text; the pure-Python one takes the float formatter as a parameter.
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    chunks = json.encoder._make_iterencode(  # type: ignore[attr-defined]
        {}, encoder.default, json.encoder.encode_basestring_ascii, None, _floatstr,
        ":", ",", False, False, True)(body, 0)
    return "".join(chunks).encode("utf-8")


def _read_token_file(path: str, origin: str) -> str:
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read(8192)
    except OSError as e:
        raise ValueError(f"cannot read the token file {path} ({origin}): {e.strerror}") from None
    first = text.split("\n", 1)[0].rstrip("\r \t")
    if not first:
        raise ValueError(f"the token file {path} ({origin}) is empty")
    return first


def resolve_token(token: Optional[str] = None, token_file: Optional[str] = None) -> Optional[str]:
    """The API token to send: ``token``, else the first line of ``token_file``, else
    ``$YM_TOKEN``, else the first line of the file named by ``$YM_TOKEN_FILE``; None when none
    is set. A value that cannot be a header (spaces, control characters) is a ValueError that
    does not repeat it."""
    if token:
        value, origin = token, "token"
    elif token_file:
        value, origin = _read_token_file(token_file, "token_file"), "token_file"
    elif os.environ.get("YM_TOKEN"):
        value, origin = os.environ["YM_TOKEN"], "$YM_TOKEN"
    elif os.environ.get("YM_TOKEN_FILE"):
        value = _read_token_file(os.environ["YM_TOKEN_FILE"], "$YM_TOKEN_FILE")
        origin = "$YM_TOKEN_FILE"
    else:
        return None
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in value):
        raise ValueError(f"the API token from {origin} holds a space or a control character; "
                         "it cannot be sent")
    return value


class Connection:
    """A keep-alive connection to one server.

    Args:
        url: ``http://host:port`` (``https://`` works too); a path prefix is kept and prepended
            to every request path, for servers behind a reverse proxy.
        timeout: socket timeout in seconds for connecting and for each read.
        ca_file: for ``https://``, a PEM file of the CAs the server's certificate must chain
            to; None means ``$YM_CA_FILE`` when set, else the system's trusted CAs. The host
            name (or IP address) is always checked against the certificate.
        client_cert_file, client_key_file: for ``https://`` to a server that requires client
            certificates (mTLS), this client's PEM certificate and unencrypted key; None means
            ``$YM_CLIENT_CERT_FILE`` / ``$YM_CLIENT_KEY_FILE`` when set, else none.
        token, token_file: an API token sent as ``Authorization: Bearer``, or a file whose
            first line is one; both None: ``$YM_TOKEN``, else the file named by
            ``$YM_TOKEN_FILE``, else none (see :func:`resolve_token`).
    """

    def __init__(self, url: str, timeout: float = 60.0, ca_file: Optional[str] = None,
                 client_cert_file: Optional[str] = None,
                 client_key_file: Optional[str] = None, token: Optional[str] = None,
                 token_file: Optional[str] = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"invalid server URL {url!r}: expected http://HOST:PORT")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._ssl: Optional[ssl.SSLContext] = None
        if self._https:
            cafile = ca_file or os.environ.get("YM_CA_FILE") or None
            self._ssl = ssl.create_default_context(cafile=cafile)
            self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
            if client_cert_file is None and client_key_file is None:
                client_cert_file = os.environ.get("YM_CLIENT_CERT_FILE") or None
                client_key_file = os.environ.get("YM_CLIENT_KEY_FILE") or None
            if (client_cert_file is None) != (client_key_file is None):
                raise ValueError("a client certificate needs both client_cert_file and "
                                 "client_key_file")
            if client_cert_file is not None:
                self._ssl.load_cert_chain(client_cert_file, client_key_file)
        self._authorization = None
        resolved = resolve_token(token, token_file)
        if resolved is not None:
            self._authorization = "Bearer " + resolved
        self.timeout = timeout
        self._conn: Optional[http.client.HTTPConnection] = None
        # abort() may run on another thread (a signal handler, Worker.stop); it only reads the
        # current socket and shuts it down, which is safe against a concurrent blocking read.
        self._abort_lock = threading.Lock()
        self._aborted = False

    def close(self) -> None:
        """Close the socket; the next request opens a new one."""
        with self._abort_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def abort(self) -> None:
        """Half-close the connection from any thread to end a long poll early.

        Only the write side is shut: the server sees the hang-up and releases any jobs it had
        not yet written back (docs/api.md, POST /v1/leases), while a reply that is already on
        its way can still be read, so no leased job is silently dropped.
        """
        with self._abort_lock:
            self._aborted = True
            conn = self._conn
            sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout,
                                               context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None,
                timeout: Optional[float] = None) -> Any:
        """Send one request and return the decoded JSON body of a 2xx answer.

        Raises:
            YardmasterError subclass: the server answered with an error.
            Unreachable: no answer (refused, reset, timed out, or aborted).
        """
        status, headers, data = self._roundtrip(method, path, body, timeout)
        try:
            parsed = decode_json(data) if data else None
        except ValueError:
            parsed = data.decode("utf-8", errors="replace")
        if status >= 300:
            retry_after: Optional[float] = None
            if "retry-after" in headers:
                try:
                    retry_after = float(headers["retry-after"])
                except ValueError:
                    retry_after = None
            raise error_from_response(status, parsed, retry_after)
        return parsed

    def _roundtrip(self, method: str, path: str, body: Any,
                   timeout: Optional[float]) -> Tuple[int, Dict[str, str], bytes]:
        data = encode_json(body) if body is not None else None
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        if data is not None or method != "GET":
            # Writes name their JSON type even without a body: the server refuses them
            # otherwise (browsers cannot send this type cross-origin, docs/security.md).
            headers["Content-Type"] = "application/json"
        t = self.timeout if timeout is None else timeout
        for attempt in range(2):
            with self._abort_lock:
                if self._aborted:
                    raise Unreachable("connection aborted")
                reused = self._conn is not None
                if self._conn is None:
                    self._conn = self._open(t)
                conn = self._conn
            conn.timeout = t
            if conn.sock is not None:
                conn.sock.settimeout(t)
            try:
                conn.request(method, self._prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                # The server closes keep-alive connections that idle for 60 s; such a request
                # never reached it, so it is safe to send once more on a fresh connection. A
                # failure on a fresh connection is a real one.
                if reused and attempt == 0 and not self._aborted:
                    continue
                raise Unreachable(f"{self.url}: {type(e).__name__}: {e}") from e
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise Unreachable(f"{self.url}: {type(e).__name__}: {e}") from e
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if hdrs.get("connection", "").lower() == "close" or self._aborted:
                self.close()
            return resp.status, hdrs, payload
        raise Unreachable(f"{self.url}: no answer")  # pragma: no cover - loop always returns
