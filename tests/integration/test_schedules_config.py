"""[[schedules]] in the server's config file (docs/cron.md, "Schedules in the config file"):
created at start, replaced when their spec changed (cursor kept), left alone when equal, and a
bad table stops the server with an error naming the file, the table and the member."""

import pytest

NIGHTLY = ('[[schedules]]\nid = "nightly"\ncron = "0 3 * * *"\ntime_zone = "Europe/Paris"\n'
           'missed_runs = { policy = "catch_up", max_count = 7 }\n'
           'job = { queue = "rep", kind = "nightly", payload = { scope = "all", n = 2 } }\n')


def test_config_schedules_are_created_replaced_and_others_kept(make_server, tmp_path):
    cfg = tmp_path / "ym.toml"
    cfg.write_text(NIGHTLY)
    s = make_server("--config", str(cfg), data_dir=str(tmp_path / "data"))
    c = s.client()
    status, got = c.call("GET", "/v1/schedules/nightly")
    assert status == 200, got
    assert got["cron"] == "0 3 * * *" and got["time_zone"] == "Europe/Paris"
    assert got["missed_runs"]["policy"] == "catch_up" and got["missed_runs"]["max_count"] == 7
    assert got["job"]["payload"] == {"scope": "all", "n": 2}
    created_at, cursor = got["created_at"], got["cursor"]
    # Created through the API: kept, as the file only adds.
    status, body = c.call("POST", "/v1/schedules",
                          {"id": "api-only", "cron": "@hourly", "job": {"queue": "q", "kind": "k"}})
    assert status == 201, body
    # Paused through the API, and unchanged in the file: left alone across a restart.
    status, paused = c.call("POST", "/v1/schedules/nightly:pause")
    assert status == 200 and paused["state"] == "paused", paused
    c.close()
    s.restart()
    c = s.client()
    status, got = c.call("GET", "/v1/schedules/nightly")
    assert got["updated_at"] == paused["updated_at"] and got["state"] == "paused", got
    assert got["created_at"] == created_at and got["cursor"] >= cursor
    assert c.call("GET", "/v1/schedules/api-only")[0] == 200
    c.close()

    # A changed spec replaces the stored one; the cursor and the creation time stay.
    cfg.write_text(NIGHTLY.replace('cron = "0 3 * * *"', 'cron = "30 3 * * *"'))
    s.restart()
    c = s.client()
    status, got = c.call("GET", "/v1/schedules/nightly")
    assert got["cron"] == "30 3 * * *" and got["created_at"] == created_at, got
    assert got["cursor"] >= cursor
    assert got["missed_runs"]["max_count"] == 7
    c.close()


@pytest.mark.parametrize("text, expected", [
    (NIGHTLY.replace('"0 3 * * *"', '"0 3 * *"'), 'schedules[0] (nightly): field "cron"'),
    (NIGHTLY.replace('"Europe/Paris"', '"Mars/Olympus"'),
     'schedules[0] (nightly): field "time_zone"'),
    (NIGHTLY.replace('policy = "catch_up"', 'policy = "always"'),
     'schedules[0] (nightly): field "missed_runs.policy"'),
    (NIGHTLY.replace('queue = "rep", ', ''), 'schedules[0] (nightly): field "job.queue"'),
    (NIGHTLY + 'colour = "red"\n', 'schedules[0] (nightly): field "colour"'),
    (NIGHTLY.replace('id = "nightly"\n', ''), "schedules[0].id: required"),
    (NIGHTLY + NIGHTLY, "schedules[1].id: the schedule nightly is defined twice"),
    ('schedules = 3\n', 'key "schedules" must be an array of tables'),
])
def test_bad_config_schedules_name_the_file_table_and_member(make_server, tmp_path, text,
                                                              expected):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(RuntimeError) as e:
        make_server("--config", str(cfg))
    assert str(cfg) in str(e.value) and expected in str(e.value), str(e.value)
