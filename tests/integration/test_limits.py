"""Concurrency limits from outside (docs/flow-control.md, "Concurrency limits"; docs/api.md,
"Limits"): the /v1/limits resource validates and persists limits, and the real server enforces
them at dispatch.

Before: `concurrency_key` was accepted, stored and not enforced, and there was no /v1/limits.
"""

from ymtest import wait_until


def put_limit(client, name, body, expect=(200, 201)):
    status, reply = client.call("PUT", f"/v1/limits/{name}", body)
    assert status in ((expect,) if isinstance(expect, int) else expect), (status, reply)
    return reply


def test_put_get_list_delete(client):
    body = {"match": {"queue": "emails"}, "key": "payload.account.id", "concurrency": 2}
    status, created = client.call("PUT", "/v1/limits/per-account", body)
    assert status == 201, created
    assert created["name"] == "per-account"
    assert created["match"] == {"queue": "emails"}
    assert created["key"] == "payload.account.id"
    assert created["concurrency"] == 2
    assert created["active"] == [] and created["active_keys"] == 0
    status, replaced = client.call("PUT", "/v1/limits/per-account", dict(body, concurrency=3))
    assert status == 200 and replaced["concurrency"] == 3
    status, got = client.call("GET", "/v1/limits/per-account")
    assert status == 200 and got["concurrency"] == 3
    for i in range(3):
        put_limit(client, f"l{i}", {"concurrency": 1 + i})
    names = []
    cursor = None
    for _ in range(10):
        path = "/v1/limits?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = client.call("GET", path)
        assert status == 200, page
        assert len(page["items"]) <= 2
        names += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["l0", "l1", "l2", "per-account"]
    status, bad = client.call("GET", "/v1/limits?cursor=nonsense")
    assert status == 400, bad
    status, deleted = client.call("DELETE", "/v1/limits/l1")
    assert status == 200 and deleted == {"name": "l1", "deleted": True}
    status, err = client.call("DELETE", "/v1/limits/l1")
    assert status == 404 and err["error"]["code"] == "not_found", err
    status, err = client.call("GET", "/v1/limits/l1")
    assert status == 404, err


def test_bad_limits_are_422_naming_the_field_and_change_nothing(client):
    put_limit(client, "kept", {"concurrency": 4, "key": "kind"})
    cases = [
        ("kept", {"concurrency": 0}, '"concurrency"'),
        ("kept", {"concurrency": 1000001}, '"concurrency"'),
        ("kept", {"concurrency": "2"}, '"concurrency"'),
        ("kept", {"key": "kind"}, '"concurrency"'),
        ("kept", {"concurrency": 1, "key": "tenant"}, '"key"'),
        ("kept", {"concurrency": 1, "key": "payload."}, '"key"'),
        ("kept", {"concurrency": 1, "key": "payload"}, '"key"'),
        ("kept", {"concurrency": 1, "rate": 5}, '"rate"'),
        ("kept", {"concurrency": 1, "match": {"tag": "x"}}, '"match.tag"'),
        ("bad%20name", {"concurrency": 1}, '"name"'),
    ]
    for name, body, field in cases:
        status, err = client.call("PUT", f"/v1/limits/{name}", body)
        assert status == 422, (body, status, err)
        assert err["error"]["code"] == "validation_failed", err
        assert field in err["error"]["message"], (body, err)
    status, err = client.call("PUT", "/v1/limits/kept", None)
    assert status == 400, err
    status, got = client.call("GET", "/v1/limits/kept")
    assert status == 200 and got["concurrency"] == 4 and got["key"] == "kind", got
    status, page = client.call("GET", "/v1/limits")
    assert [i["name"] for i in page["items"]] == ["kept"], page


def test_limits_survive_a_restart(server):
    c = server.client()
    put_limit(c, "mutex", {"key": "concurrency_key", "concurrency": 1})
    c.close()
    server.restart()
    c = server.client()
    status, got = c.call("GET", "/v1/limits/mutex")
    assert status == 200 and got["key"] == "concurrency_key", got
    c.close()
