"""The role matrix through the real binary (docs/security.md, "Roles and the route matrix",
"Namespace scoping"): every route of the documented table, called by every role with a real
API token of all namespaces and with one of namespace `a`, on things of `a` and of `b`.

tests/unit/authz_test.cc (AuthzRbacTest) checks the same cells with principals injected into
the Api; this file proves that the transport turns a bearer token into that principal (its
role and its namespaces) on every route. The table is read from docs/security.md, so the test
fails if the document and the server disagree. One server (`--auth tokens`, 127.0.0.1, port 0)
for the module; every request gets a fixture of its own, made by the bootstrap admin first.
"""

import json
import os
import re
import subprocess
import time

import pytest

from ymtest import Server, admin_secret, binary, create_token

ROLES = ["admin", "operator", "producer", "worker", "viewer"]
PROBES = ("GET /livez", "GET /readyz", "GET /healthz")
SECURITY_MD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs", "security.md")
NEVER_ISSUED = "987654321"


def documented_matrix():
    """The rows between the authz-matrix markers: (label, {role: may}, scope)."""
    with open(SECURITY_MD) as f:
        text = f.read()
    m = re.search(r"<!-- authz-matrix:begin -->\n(.*?)<!-- authz-matrix:end -->", text, re.S)
    assert m, "docs/security.md has no authz-matrix markers"
    rows = []
    for line in m.group(1).splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 7, line
        assert all(c in ("yes", "no") for c in cells[1:6]), line
        rows.append((cells[0].strip("`"), dict(zip(ROLES, [c == "yes" for c in cells[1:6]])),
                     cells[6]))
    return rows


class Prepared:
    """One request of a route, for things of one namespace; `id` is the job it names, if any."""

    def __init__(self, method, path, body=None, id=None):
        self.method, self.path, self.body, self.id = method, path, body, id


class Rig:
    """The server, the tokens and the admin-made fixtures."""

    def __init__(self, server):
        self.server = server
        self.conn = server.client()
        self.admin = admin_secret(server)
        self.counter = 0
        self.all = {}  # role -> secret, all namespaces
        self.a = {}  # role -> secret, namespace a
        for role in ROLES:
            self.all[role] = create_token(server, self.admin, "all-" + role, role)["secret"]
            self.a[role] = create_token(server, self.admin, "a-" + role, role,
                                        namespaces=["a"])["secret"]

    def send(self, token, method, path, body=None, raw=False):
        """(status, parsed body), or (status, body bytes) when raw."""
        if raw:
            hdrs = {"Authorization": "Bearer " + token} if token else {}
            if method != "GET":
                hdrs["Content-Type"] = "application/json"
            data = None if body is None else json.dumps(body).encode()
            status, _, payload = self.conn.raw(method, path, data, hdrs)
            return status, payload
        status, _, parsed = self.conn.call_as(method, path, body, token)
        return status, parsed

    def run(self, token, p):
        return self.send(token, p.method, p.path, p.body)

    def as_admin(self, method, path, body=None, expect=(200, 201)):
        status, parsed = self.send(self.admin, method, path, body)
        assert status in expect, (method, path, status, parsed)
        return parsed

    def unique(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def enqueue(self, ns, q, **extra):
        return self.as_admin("POST", "/v1/jobs", {"namespace": ns, "queue": q, "kind": "k",
                                                  "payload": {"n": 1}, **extra},
                             expect=(201,))["id"]

    def lease_one(self, q, worker="w"):
        # An enqueue is answered once durable and the job is dispatchable right after: the
        # lease waits for it.
        jobs = self.as_admin("POST", "/v1/leases", {"queues": [q], "max": 1, "wait_ms": 20000,
                                                    "worker_id": worker}, expect=(200,))["jobs"]
        assert len(jobs) == 1, jobs
        return jobs[0]

    def dead_job(self, ns, q):
        job_id = self.enqueue(ns, q, max_attempts=1)
        job = self.lease_one(q)
        assert job["id"] == job_id
        self.as_admin("POST", f"/v1/jobs/{job_id}:fail",
                      {"token": job["lease"]["token"], "error": {"message": "x"}})
        return job_id

    def limit(self, extra=None):
        name = self.unique("l")
        self.as_admin("PUT", "/v1/limits/" + name,
                      {"match": {"queue": "unused"}, "concurrency": 5, **(extra or {})})
        return name

    def schedule(self, ns, q):
        sid = self.unique("s")
        self.as_admin("POST", "/v1/schedules", schedule_body(sid, ns, q), expect=(201,))
        return sid

    def prepare(self, label, ns):
        """A fresh request of route `label` on things of namespace `ns`."""
        q = self.unique("q")
        filt = {"namespace": ns, "queue": q}

        def job(verb, method="POST"):
            job_id = self.enqueue(ns, q)
            return Prepared(method, f"/v1/jobs/{job_id}{verb}", None, job_id)

        def leased(verb, extra=None):
            job_id = self.enqueue(ns, q)
            lease = self.lease_one(q)
            assert lease["id"] == job_id
            return Prepared("POST", f"/v1/jobs/{job_id}{verb}",
                            {"token": lease["lease"]["token"], **(extra or {})}, job_id)

        if label == "POST /v1/jobs":
            return Prepared("POST", "/v1/jobs", {"namespace": ns, "queue": q, "kind": "k"})
        if label == "POST /v1/jobs:batch":
            return Prepared("POST", "/v1/jobs:batch",
                            {"jobs": [{"namespace": ns, "queue": q, "kind": "k"}]})
        if label == "POST /v1/jobs:cancel":
            self.enqueue(ns, q)
            return Prepared("POST", "/v1/jobs:cancel", filt)
        if label in ("POST /v1/jobs:replay", "POST /v1/jobs:delete"):
            self.dead_job(ns, q)
            return Prepared("POST", label.split(" ")[1], filt)
        if label == "GET /v1/jobs":
            self.enqueue(ns, q)
            return Prepared("GET", f"/v1/jobs?namespace={ns}&queue={q}")
        if label == "GET /v1/jobs/{id}":
            return job("", "GET")
        if label == "POST /v1/jobs/{id}:cancel":
            return job(":cancel")
        if label == "POST /v1/jobs/{id}:replay":
            p = job(":replay")
            self.as_admin("POST", f"/v1/jobs/{p.id}:cancel")
            return p
        if label == "POST /v1/leases":
            job_id = self.enqueue(ns, q)
            return Prepared("POST", "/v1/leases",
                            {"queues": [q], "max": 5, "wait_ms": 1000, "worker_id": "rbac"},
                            job_id)
        if label == "POST /v1/jobs/{id}:heartbeat":
            return leased(":heartbeat")
        if label == "POST /v1/jobs/{id}:ack":
            return leased(":ack")
        if label == "POST /v1/jobs/{id}:fail":
            return leased(":fail", {"error": {"message": "x"}})
        if label == "POST /v1/cancels:watch":
            worker = self.unique("w")
            job_id = self.enqueue(ns, q)
            assert self.lease_one(q, worker)["id"] == job_id
            self.as_admin("POST", f"/v1/jobs/{job_id}:cancel")
            return Prepared("POST", "/v1/cancels:watch", {"worker_id": worker}, job_id)
        if label == "POST /v1/acks:batch":
            job_id = self.enqueue(ns, q)
            lease = self.lease_one(q)
            return Prepared("POST", "/v1/acks:batch",
                            {"acks": [{"id": job_id, "token": lease["lease"]["token"]}]}, job_id)
        if label == "GET /v1/queues":
            return Prepared("GET", "/v1/queues")
        if label == "GET /v1/queues/{q}":
            self.enqueue(ns, q)
            return Prepared("GET", "/v1/queues/" + q)
        if label == "PUT /v1/queues/{q}":
            return Prepared("PUT", f"/v1/queues/{q}?create=true", {"weight": 2})
        if label == "POST /v1/queues/{q}:pause":
            return Prepared("POST", f"/v1/queues/{q}:pause?create=true")
        if label == "POST /v1/queues/{q}:resume":
            return Prepared("POST", f"/v1/queues/{q}:resume?create=true")
        if label == "DELETE /v1/queues/{q}":
            self.enqueue(ns, q)
            return Prepared("DELETE", "/v1/queues/" + q)
        if label == "GET /v1/limits":
            return Prepared("GET", "/v1/limits")
        if label == "GET /v1/limits/{name}":
            return Prepared("GET", "/v1/limits/" + self.limit())
        if label == "PUT /v1/limits/{name}":
            return Prepared("PUT", "/v1/limits/" + self.unique("l"),
                            {"match": {"namespace": ns, "queue": "unused"}, "concurrency": 2})
        if label == "DELETE /v1/limits/{name}":
            return Prepared("DELETE", "/v1/limits/" + self.limit())
        if label == "POST /v1/limits/{name}:reset-breaker":
            return Prepared("POST", f"/v1/limits/{self.limit({'breaker': {}})}:reset-breaker")
        if label == "GET /v1/namespaces":
            return Prepared("GET", "/v1/namespaces")
        if label == "GET /v1/namespaces/{name}":
            self.as_admin("PUT", "/v1/namespaces/" + ns, {"weight": 1})
            return Prepared("GET", "/v1/namespaces/" + ns)
        if label == "PUT /v1/namespaces/{name}":
            return Prepared("PUT", "/v1/namespaces/" + ns, {"weight": 2})
        if label == "DELETE /v1/namespaces/{name}":
            self.as_admin("PUT", "/v1/namespaces/" + ns, {"weight": 1})
            return Prepared("DELETE", "/v1/namespaces/" + ns)
        if label == "GET /v1/namespaces/{name}/export":
            self.enqueue(ns, q)
            return Prepared("GET", f"/v1/namespaces/{ns}/export")
        if label == "POST /v1/namespaces/{name}:wipe":
            self.enqueue(ns, q)
            return Prepared("POST", f"/v1/namespaces/{ns}:wipe", {"confirm": ns})
        if label == "GET /v1/schedules":
            return Prepared("GET", "/v1/schedules")
        if label == "POST /v1/schedules":
            return Prepared("POST", "/v1/schedules", schedule_body(self.unique("s"), ns, q))
        if label == "GET /v1/schedules/{id}":
            return Prepared("GET", "/v1/schedules/" + self.schedule(ns, q))
        if label == "PUT /v1/schedules/{id}":
            sid = self.schedule(ns, q)
            return Prepared("PUT", "/v1/schedules/" + sid, schedule_body(sid, ns, q))
        if label == "PATCH /v1/schedules/{id}":
            return Prepared("PATCH", "/v1/schedules/" + self.schedule(ns, q), {"jitter_ms": 5})
        if label == "DELETE /v1/schedules/{id}":
            return Prepared("DELETE", "/v1/schedules/" + self.schedule(ns, q))
        for verb in ("pause", "resume", "trigger"):
            if label == f"POST /v1/schedules/{{id}}:{verb}":
                return Prepared("POST", f"/v1/schedules/{self.schedule(ns, q)}:{verb}")
        if label == "POST /v1/schedules/{id}:backfill":
            now = int(time.time() * 1000)
            return Prepared("POST", f"/v1/schedules/{self.schedule(ns, q)}:backfill",
                            {"from": now - 3_600_000, "to": now})
        if label == "GET /v1/dead":
            self.dead_job(ns, q)
            return Prepared("GET", f"/v1/dead?namespace={ns}&queue={q}")
        if label == "POST /v1/dead:replay":
            job_id = self.dead_job(ns, q)
            return Prepared("POST", "/v1/dead:replay", {"ids": [job_id]}, job_id)
        if label == "POST /v1/tokens":
            return Prepared("POST", "/v1/tokens", {"name": self.unique("t"), "role": "viewer"})
        if label == "DELETE /v1/tokens/{id}":
            tid = create_token(self.server, self.admin, self.unique("t"), "viewer")["id"]
            return Prepared("DELETE", "/v1/tokens/" + tid)
        if label in ("GET /v1/alerts", "GET /v1/tokens", "GET /v1/audit",
                     "GET /v1/audit/checkpoint", "GET /v1/info", "GET /metrics") + PROBES:
            return Prepared("GET", label.split(" ")[1])
        raise AssertionError(f"no request for route {label}: add one to prepare()")

    def missing_answer(self, token, p):
        """The answer to `p` with its job id replaced by one never issued, with the id written
        back: what a job the token may not see must look like."""
        path = p.path.replace(p.id, NEVER_ISSUED)
        status, payload = self.send(token, p.method, path, p.body, raw=True)
        return status, payload.replace(NEVER_ISSUED.encode(), p.id.encode())


def schedule_body(sid, ns, q):
    return {"id": sid, "cron": "0 * * * *", "job": {"namespace": ns, "queue": q, "kind": "k"}}


def code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    # The failure throttle is off: the 401 test below fails authentication on purpose on every
    # route from one address (the throttle has tests of its own in test_auth.py).
    s = Server(str(tmp_path_factory.mktemp("rbac") / "data"),
               ["--auth", "tokens", "--auth-max-failures", "0"]).start()
    try:
        yield Rig(s)
    finally:
        s.stop()


def test_every_route_every_role_own_and_foreign_namespace(rig):
    rows = documented_matrix()
    assert len(rows) >= 50, "the documented matrix looks truncated"
    assert len({r[0] for r in rows}) == len(rows), "a route is documented twice"
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    for label, may, scope in rows:
        for role in ROLES:
            at = f"{label} as {role}"
            if not may[role]:
                # One fixture for both tokens: the role check comes before anything else.
                p = rig.prepare(label, "a")
                for kind, token in (("all", rig.all[role]), ("a", rig.a[role])):
                    status, body = rig.run(token, p)
                    expect(status == 403 and code(body) == "forbidden",
                           f"{at} ({kind}): documented no, got {status} {body}")
                    msg = body.get("error", {}).get("message", "") if isinstance(body, dict) \
                        else ""
                    expect(f"role {role}" in msg and label in msg,
                           f"{at} ({kind}): the denial names neither role nor route: {body}")
                continue
            status, body = rig.run(rig.all[role], rig.prepare(label, "a"))
            expect(status < 300, f"{at} (all): documented yes, got {status} {body}")
            own = rig.prepare(label, "a")
            foreign = rig.prepare(label, "b")
            scoped = rig.a[role]
            hidden = rig.missing_answer(scoped, foreign) if scope == "job" else None
            if scope in ("lease", "worker"):
                # Long polls: the own request answers as soon as its job is there, however
                # loaded the machine; the foreign one waits out its short wait_ms (a second
                # for a lease, none for a watch) and must come back empty.
                own.body["wait_ms"] = 20000
            before = rig.as_admin("GET", "/v1/jobs/" + foreign.id) if scope == "job" else None
            ms, mb = rig.run(scoped, own)
            # A hidden job's answer is compared byte for byte.
            ts, tb = rig.send(scoped, foreign.method, foreign.path, foreign.body,
                              raw=scope == "job")
            if scope == "open":
                expect(ms == 200 and ts == 200, f"{at}: a probe answered {ms}, {ts}")
            elif scope == "global":
                expect(ms == 403 and code(mb) == "forbidden",
                       f"{at} (a, own): a global route with a scoped token gave {ms} {mb}")
                expect(ts == 403 and code(tb) == "forbidden",
                       f"{at} (a, foreign): a global route with a scoped token gave {ts} {tb}")
            elif scope in ("body", "filter", "namespace"):
                expect(ms < 300, f"{at} (a, own): got {ms} {mb}")
                expect(ts == 403 and code(tb) == "forbidden",
                       f"{at} (a, foreign): got {ts} {tb}")
            elif scope == "job":
                expect(ms < 300, f"{at} (a, own): got {ms} {mb}")
                expect(hidden[0] == 404, f"{at}: a never-issued id gave {hidden}")
                expect((ts, tb) == hidden,
                       f"{at} (a, foreign): {ts} {tb!r} is not the missing-job answer {hidden}")
                # Nothing of the foreign job was touched.
                after = rig.as_admin("GET", "/v1/jobs/" + foreign.id)
                expect(after == before, f"{at}: the foreign job changed: {before} -> {after}")
            elif scope == "jobs" and label == "POST /v1/acks:batch":
                expect(ms == 200 and mb["acks"][0].get("ok") is True, f"{at} (a, own): {mb}")
                expect(ts == 200 and code(tb["acks"][0]) == "not_found",
                       f"{at} (a, foreign): {ts} {tb}")
                expect(rig.as_admin("GET", "/v1/jobs/" + foreign.id)["state"] == "active",
                       f"{at}: the foreign job was acked")
            elif scope == "jobs" and label == "POST /v1/dead:replay":
                expect(ms == 200 and mb.get("replayed") == 1, f"{at} (a, own): {mb}")
                expect(ts == 200 and tb.get("replayed") == 0, f"{at} (a, foreign): {ts} {tb}")
                expect(rig.as_admin("GET", "/v1/jobs/" + foreign.id)["state"] == "dead",
                       f"{at}: the foreign dead job was replayed")
            elif scope == "lease":
                expect(ms == 200 and [j["id"] for j in mb["jobs"]] == [own.id],
                       f"{at} (a, own): {ms} {mb}")
                if ts == 200 and tb["jobs"] == []:
                    # The foreign job was there to take all along.
                    left = rig.lease_one(foreign.body["queues"][0])
                    expect(left["id"] == foreign.id, f"{at}: the foreign job was not leasable")
                else:
                    failures.append(f"{at} (a, foreign): leased another namespace's job: "
                                    f"{ts} {tb}")
            elif scope == "worker":
                expect(ms == 200 and own.id in mb["cancel_requested"], f"{at} (a, own): {mb}")
                expect(ts == 200 and foreign.id not in tb["cancel_requested"],
                       f"{at} (a, foreign): {ts} {tb}")
            else:
                failures.append(f"{label}: scope {scope} has no check in this test")
    assert not failures, "\n".join(failures)


def test_no_token_or_a_wrong_token_is_401_and_probes_answer_without_one(rig):
    wrong = subprocess.run([binary(), "tokens", "new-secret"], capture_output=True, text=True,
                           timeout=60).stdout.strip()
    assert wrong.startswith("ym_"), wrong
    job_id = rig.enqueue("a", "q401")
    failures = []
    for label, _, scope in documented_matrix():
        method, path = label.split(" ")
        path = (path.replace("{id}", job_id if "/jobs/" in path else "x")
                .replace("{q}", "q401").replace("{name}", "a"))
        body = None if method in ("GET", "DELETE") else {}
        for kind, token in (("no token", None), ("wrong token", wrong)):
            status, payload = rig.send(token, method, path, body, raw=True)
            if scope == "open":
                if status != 200:
                    failures.append(f"{label} ({kind}): a probe answered {status} {payload}")
            elif status != 401 or b'"unauthenticated"' not in payload:
                failures.append(f"{label} ({kind}): {status} {payload}")
    assert not failures, "\n".join(failures)
    # Nothing was done by any of them.
    assert rig.as_admin("GET", "/v1/jobs/" + job_id)["state"] == "ready"
