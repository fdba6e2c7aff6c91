"""Progress reported through the heartbeat (docs/api.md, POST /v1/jobs/{id}:heartbeat)."""


def beat(client, job, **fields):
    return client.call("POST", f"/v1/jobs/{job['id']}:heartbeat",
                       {"token": job["lease"]["token"], **fields})


def test_progress_is_shown_while_the_attempt_runs(server, client):
    client.enqueue(queue="p", kind="k", max_attempts=2)
    job = client.lease(["p"], lease_ms=60000)[0]
    assert client.get(job["id"])[1]["progress"] is None
    status, _ = beat(client, job, progress=25)
    assert status == 200
    assert client.get(job["id"])[1]["progress"] == {"percent": 25}
    status, _ = beat(client, job, progress={"percent": 60.5, "step": "resize", "files": [1, 2]})
    assert status == 200
    view = client.get(job["id"])[1]
    assert view["progress"] == {"percent": 60.5, "step": "resize", "files": [1, 2]}
    # A heartbeat without progress keeps it; a listing shows it too.
    assert beat(client, job)[0] == 200
    assert client.get(job["id"])[1]["progress"]["step"] == "resize"
    listed = client.call("GET", "/v1/jobs?queue=p&state=active")[1]["items"]
    assert listed[0]["progress"]["percent"] == 60.5
    # The attempt fails and is retried: the next attempt starts with no progress.
    status, _ = client.call("POST", f"/v1/jobs/{job['id']}:fail",
                            {"token": job["lease"]["token"], "retry_in_ms": 0,
                             "error": {"type": "E", "message": "m"}})
    assert status == 200
    assert client.get(job["id"])[1]["progress"] is None


def test_bad_progress_is_refused_and_changes_nothing(server, client):
    client.enqueue(queue="p", kind="k")
    job = client.lease(["p"], lease_ms=60000)[0]
    assert beat(client, job, progress={"percent": 10})[0] == 200
    before = client.get(job["id"])[1]
    for bad, status, code in ((150, 422, "validation_failed"),
                              ("half", 422, "validation_failed"),
                              ([1], 422, "validation_failed"),
                              ({"percent": -3}, 422, "validation_failed"),
                              ({"blob": "x" * 5000}, 413, "payload_too_large")):
        got, body = beat(client, job, progress=bad)
        assert (got, body["error"]["code"]) == (status, code), (bad, body)
        assert "progress" in body["error"]["message"]
    after = client.get(job["id"])[1]
    assert after["progress"] == {"percent": 10}
    assert after["lease"]["expires_at"] == before["lease"]["expires_at"]


def test_the_cli_shows_progress(server, client):
    import subprocess
    from ymtest import binary
    client.enqueue(queue="p", kind="k")
    job = client.lease(["p"], lease_ms=60000)[0]
    show = lambda: subprocess.run([binary(), "jobs", "get", job["id"], "--server", server.url()],
                                  capture_output=True, text=True, timeout=60)
    p = show()
    assert p.returncode == 0 and "progress:" not in p.stdout, p.stdout
    assert beat(client, job, progress={"percent": 70, "step": "upload"})[0] == 200
    p = show()
    assert p.returncode == 0
    assert any(line.split()[:1] == ["progress:"] and '"percent":70' in line
               for line in p.stdout.splitlines()), p.stdout
