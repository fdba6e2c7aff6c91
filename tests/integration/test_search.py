"""Search: GET /v1/jobs filters (docs/api.md "GET /v1/jobs") on live and finished jobs, with the
real binary. Every filter is checked against the same filter applied by this test to the full,
unfiltered listing, so a job wrongly left out or wrongly included fails the test."""

import itertools
import urllib.parse

import pytest

KEEP = ["--retention-succeeded-ms", "3600000"]


@pytest.fixture
def kept(make_server):
    """A server that keeps succeeded jobs (for an hour) so they can be found."""
    s = make_server(*KEEP)
    c = s.client()
    yield s, c
    c.close()


def list_all(client, params, limit=1000, max_pages=2000):
    """Every item of the listing `params`, following cursors; fails on a duplicate."""
    items, cursor = [], None
    for _ in range(max_pages):
        q = dict(params, limit=limit)
        if cursor:
            q["cursor"] = cursor
        status, page = client.call("GET", "/v1/jobs?" + urllib.parse.urlencode(q))
        assert status == 200, (params, page)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    else:
        raise AssertionError(f"listing {params} did not end in {max_pages} pages")
    ids = [j["id"] for j in items]
    assert len(ids) == len(set(ids)), f"duplicates in {params}"
    assert ids == sorted(ids, key=int), f"not in id order: {params}"
    return items


def matches(job, f):
    """The documented meaning of each filter, applied to a job object."""
    if "namespace" in f and job["namespace"] != f["namespace"]:
        return False
    if "queue" in f and job["queue"] != f["queue"]:
        return False
    if "kind" in f and job["kind"] != f["kind"]:
        return False
    if "state" in f and job["state"] not in f["state"].split(","):
        return False
    if "tag" in f and f["tag"] not in job["tags"]:
        return False
    if "created_after" in f and job["created_at"] < f["created_after"]:
        return False
    if "created_before" in f and job["created_at"] >= f["created_before"]:
        return False
    finished = job["finished_at"]
    if "finished_after" in f and (finished is None or finished < f["finished_after"]):
        return False
    if "finished_before" in f and (finished is None or finished >= f["finished_before"]):
        return False
    return True


def populate(client):
    """Jobs in every state across two namespaces, three queues, three kinds and some tags."""
    spec = []
    for i in range(36):
        spec.append(dict(queue=f"s{i % 3}", kind=f"k{i % 4}",
                         namespace="default" if i % 5 else "tenant-b",
                         tags=[t for t, on in (("red", i % 2 == 0), ("blue", i % 3 == 0),
                                               ("big order", i % 7 == 0)) if on],
                         payload={"i": i}))
    ids = [client.enqueue(**s)["id"] for s in spec]
    # Finish some: succeeded (acked), dead (failed, not retryable), cancelled; leave some
    # active, some ready; add scheduled ones.
    leased = client.lease(["s0", "s1", "s2"], max_jobs=20, lease_ms=600000)
    assert len(leased) == 20
    for j in leased[:8]:
        client.ack(j)
    for j in leased[8:14]:
        status, body = client.call("POST", f"/v1/jobs/{j['id']}:fail",
                                   {"token": j["lease"]["token"],
                                    "error": {"type": "E", "message": "no", "retryable": False}})
        assert status == 200, body
    leased_ids = {j["id"] for j in leased}
    for jid in [i for i in ids if i not in leased_ids][:4]:
        status, body = client.call("POST", f"/v1/jobs/{jid}:cancel")
        assert status == 200, body
    for i in range(3):
        client.enqueue(queue="s0", kind="k0", delay_ms=3600000, tags=["red"])
    return leased


FILTERS = [
    {},
    {"namespace": "tenant-b"},
    {"queue": "s1"},
    {"kind": "k2"},
    {"tag": "red"},
    {"tag": "big order"},
    {"tag": "none-has-it"},
    {"state": "succeeded"},
    {"state": "dead"},
    {"state": "cancelled"},
    {"state": "ready"},
    {"state": "active"},
    {"state": "scheduled"},
    {"state": "ready,succeeded,dead"},
    {"state": "scheduled,active"},
    {"queue": "s0", "state": "succeeded,cancelled"},
    {"queue": "s0", "kind": "k0", "tag": "red"},
    {"namespace": "default", "kind": "k1", "state": "dead,active"},
    {"namespace": "tenant-b", "tag": "blue", "queue": "s0"},
    {"kind": "nope"},
    {"queue": "nope"},
]


def test_every_filter_on_live_and_finished_jobs(kept):
    _, client = kept
    populate(client)
    everything = list_all(client, {})
    states = {j["state"] for j in everything}
    assert states == {"succeeded", "dead", "cancelled", "ready", "active", "scheduled"}
    assert len(everything) == 39
    created = sorted(j["created_at"] for j in everything)
    finished = sorted(j["finished_at"] for j in everything if j["finished_at"] is not None)
    mid_c, mid_f = created[len(created) // 2], finished[len(finished) // 2]
    time_filters = [
        {"created_after": mid_c}, {"created_before": mid_c},
        {"created_after": created[0], "created_before": created[-1] + 1},
        {"finished_after": mid_f}, {"finished_before": mid_f},
        {"finished_after": 0},
        {"finished_after": mid_f, "tag": "red"},
        {"created_before": mid_c, "state": "ready,dead", "queue": "s2"},
    ]
    nonempty = 0
    for f in FILTERS + time_filters:
        want = [j["id"] for j in everything if matches(j, f)]
        nonempty += bool(want)
        for limit in (1000, 4):
            got = [j["id"] for j in list_all(client, f, limit=limit)]
            assert got == want, (f, limit)
    assert nonempty >= 20
    # The finished-at bounds: `after` inclusive, `before` exclusive; together they split the
    # finished jobs with no overlap and no gap.
    lo = [j["id"] for j in list_all(client, {"finished_before": mid_f})]
    hi = [j["id"] for j in list_all(client, {"finished_after": mid_f})]
    assert not set(lo) & set(hi)
    assert sorted(lo + hi, key=int) == [j["id"] for j in everything if j["finished_at"] is not None]


def test_filters_find_jobs_after_a_restart(kept):
    server, client = kept
    populate(client)
    before = {json_key(f): [j["id"] for j in list_all(client, f)] for f in FILTERS}
    client.close()
    server.restart()
    client = server.client()
    try:
        for f in FILTERS:
            got = [j["id"] for j in list_all(client, f)]
            # Active jobs stay active across a restart (leases are durable), so every listing
            # is the same.
            assert got == before[json_key(f)], f
    finally:
        client.close()


def json_key(f):
    return tuple(sorted(f.items()))


def test_pagination_while_jobs_finish(kept):
    """Paging `tag=p` three at a time while jobs ahead of and behind the cursor finish: every
    job is listed exactly once (live or finished), none is skipped."""
    _, client = kept
    ids = [client.enqueue(queue="pp", kind="k", tags=["p"], payload={"n": i})["id"]
           for i in range(60)]
    for i in range(20):  # some noise the filter must skip
        client.enqueue(queue="pp", kind="k", tags=["q"])
    seen, states, cursor = [], set(), None
    for page_no in itertools.count():
        assert page_no < 200
        q = {"tag": "p", "limit": 3}
        if cursor:
            q["cursor"] = cursor
        status, page = client.call("GET", "/v1/jobs?" + urllib.parse.urlencode(q))
        assert status == 200, page
        seen += [j["id"] for j in page["items"]]
        states |= {j["state"] for j in page["items"]}
        assert all("p" in j["tags"] for j in page["items"])
        # Finish five jobs between pages (lease order is id order here): faster than the cursor
        # moves, so jobs finish both behind it and ahead of it.
        for j in client.lease(["pp"], max_jobs=5, lease_ms=600000):
            client.ack(j)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    assert states == {"succeeded", "ready"}  # pages mixed core's live jobs and stored ones


def test_finished_listing_pages_through_many_jobs(kept):
    """Many pages of finished jobs under a filter the store serves from an index, each page
    limited; ids ascend across pages with no duplicate and no gap."""
    _, client = kept
    status, body = client.call("POST", "/v1/jobs:batch", {"jobs": [
        {"queue": "many", "kind": "a" if i % 3 else "b", "tags": ["x"] if i % 2 else []}
        for i in range(300)]})
    assert status in (200, 201), body
    done = 0
    while done < 300:
        jobs = client.lease(["many"], max_jobs=100, lease_ms=600000)
        status, body = client.call("POST", "/v1/acks:batch", {"acks": [
            {"id": j["id"], "token": j["lease"]["token"]} for j in jobs]})
        assert status == 200, body
        done += len(jobs)
    everything = list_all(client, {"queue": "many"})
    assert len(everything) == 300 and {j["state"] for j in everything} == {"succeeded"}
    for f in ({"kind": "a"}, {"tag": "x", "state": "succeeded"}, {"queue": "many", "kind": "b"}):
        want = [j["id"] for j in everything if matches(j, f)]
        assert [j["id"] for j in list_all(client, f, limit=7)] == want, f


def test_bad_filters_are_refused_and_name_the_parameter(kept):
    _, client = kept
    client.enqueue(queue="b", kind="k")
    bad = {
        "namespace=a%20b": "namespace",
        "queue=a/b": "queue",
        "kind=" + "k" * 129: "kind",
        "state=done": "state",
        "state=ready,": "state",
        "state=ready,,dead": "state",
        "tag=" + "t" * 129: "tag",
        "created_after=-1": "created_after",
        "created_before=yesterday": "created_before",
        "finished_after=1.5": "finished_after",
        "finished_before=99999999999999999999": "finished_before",
        "colour=red": "colour",
    }
    for query, param in bad.items():
        status, body = client.call("GET", "/v1/jobs?" + query)
        assert status == 400, (query, body)
        assert body["error"]["code"] == "invalid_request"
        assert f'"{param}"' in body["error"]["message"], (query, body)


def test_a_cursor_belongs_to_its_filter(kept):
    _, client = kept
    for i in range(5):
        client.enqueue(queue="c", kind="k", tags=["t"])
    status, page = client.call("GET", "/v1/jobs?tag=t&limit=2")
    assert status == 200 and page["next_cursor"]
    cursor = page["next_cursor"]
    assert client.call("GET", f"/v1/jobs?tag=t&limit=2&cursor={cursor}")[0] == 200
    # The same parameters in another order are the same filter.
    assert client.call("GET", f"/v1/jobs?cursor={cursor}&limit=2&tag=t")[0] == 200
    for other in ("tag=u", "", "tag=t&kind=k", "tag=t&state=ready", "tag=t&created_after=0",
                  "tag=t&namespace=default", "tag=t&finished_before=5"):
        status, body = client.call("GET", f"/v1/jobs?{other}&limit=2&cursor={cursor}")
        assert status == 400, (other, body)
        assert '"cursor"' in body["error"]["message"]


def test_dead_letters_take_the_same_filters(kept):
    _, client = kept
    populate(client)
    everything = list_all(client, {})
    for f in ({"kind": "k1"}, {"tag": "red"}, {"namespace": "tenant-b"}, {"queue": "s2"},
              {"finished_after": 0, "kind": "k0"}):
        want = [j["id"] for j in everything if j["state"] == "dead" and matches(j, f)]
        got, cursor = [], None
        for _ in range(50):
            q = dict(f, limit=2, **({"cursor": cursor} if cursor else {}))
            status, page = client.call("GET", "/v1/dead?" + urllib.parse.urlencode(q))
            assert status == 200, page
            got += [j["id"] for j in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert got == want, f
    status, body = client.call("GET", "/v1/dead?state=ready")
    assert status == 400 and '"state"' in body["error"]["message"]
