"""The `yardmaster server` process itself: its JSON log format, --help, and the exit code and
message of each way it can fail to start (docs/operations.md, "Stopping: SIGTERM, drain and exit
codes" and "Logs")."""

import json
import os
import socket
import subprocess

from ymtest import Server, binary


def run_server(*args, timeout=60):
    return subprocess.run([binary(), "server", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_json_logs_are_one_object_per_line_with_the_message_escaped(tmp_path):
    # A data directory whose name needs escaping inside a JSON string.
    data = str(tmp_path / 'da"ta\\dir\tx')
    srv = Server(data, ["--log-format", "json", "--log-level", "debug"]).start()
    c = srv.client()
    c.enqueue(queue="logs", kind="k")
    c.close()
    assert srv.terminate() == 0
    assert srv.log_lines
    records = []
    for line in srv.log_lines:
        record = json.loads(line)  # every line is one JSON object, nothing else
        # ts, level and msg first; then the component and the line's fields (test_logs.py).
        assert list(record)[:3] == ["ts", "level", "msg"], record
        assert "component" in record, record
        assert record["ts"].endswith("Z") and record["ts"][4] == "-", record
        records.append(record)
    msgs = [r["msg"] for r in records]
    # The path comes back exactly, quote, backslash and tab included.
    assert any(data in m for m in msgs), msgs
    assert any("listening on" in m for m in msgs), msgs
    assert records[-1] == {"ts": records[-1]["ts"], "level": "info", "msg": "stopped cleanly",
                           "component": "server"}
    assert {r["level"] for r in records} <= {"trace", "debug", "info", "warning", "error",
                                             "critical"}


def test_help_prints_every_option_and_exits_zero():
    p = run_server("--help")
    assert p.returncode == 0, p.stderr
    for text in ("--listen", "YM_LISTEN", "--data-dir", "--shutdown-grace-ms",
                 "YM_SHUTDOWN_GRACE_MS", "--log-format", "--config"):
        assert text in p.stdout, text


def test_bad_configuration_exits_2_and_points_at_help(tmp_path):
    p = run_server("--data-dir", str(tmp_path / "d"), "--log-level", "loud")
    assert p.returncode == 2
    assert "--log-level" in p.stderr and "loud" in p.stderr, p.stderr
    assert "yardmaster server --help" in p.stderr
    assert not os.path.exists(tmp_path / "d")  # nothing was created


def test_a_data_dir_that_cannot_be_created_exits_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    p = run_server("--listen", "127.0.0.1:0", "--data-dir", str(blocker / "data"))
    assert p.returncode == 1
    assert "cannot create data directory" in p.stderr, p.stderr


def test_a_store_that_is_not_a_database_exits_1_and_is_left_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    garbage = b"this is not an SQLite database " * 100
    (data / "yardmaster.db").write_bytes(garbage)
    p = run_server("--listen", "127.0.0.1:0", "--data-dir", str(data))
    assert p.returncode == 1
    assert "cannot open store" in p.stderr, p.stderr
    assert (data / "yardmaster.db").read_bytes() == garbage


def test_an_address_in_use_exits_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        p = run_server("--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"))
    assert p.returncode == 1
    assert "cannot listen on 127.0.0.1:" in p.stderr, p.stderr
