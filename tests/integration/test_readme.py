"""README.md's "A first job" works when pasted: its shell blocks run as they are written (only
the address is pointed at this test's server), against the real binary."""

import os
import re
import subprocess

from ymtest import binary

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def first_job_blocks():
    text = open(README, encoding="utf-8").read()
    section = text.split("## A first job", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, blocks  # curl, then the CLI
    return blocks


def test_the_first_job_example_runs_as_pasted(server, tmp_path):
    script = "\n".join(first_job_blocks()).replace("localhost:7433", f"127.0.0.1:{server.port}")
    # The CLI block puts ./build/release on PATH: give this directory one, holding the binary
    # under test. Its `yardmaster` finds the server through YM_URL, as the README says.
    os.makedirs(tmp_path / "build" / "release")
    os.symlink(binary(), tmp_path / "build" / "release" / "yardmaster")
    env = dict(os.environ, YM_URL=server.url())
    p = subprocess.run(["sh", "-eu", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stderr == "", p.stderr
    out = p.stdout
    assert '"state":"ready"' in out  # the GET of the enqueued job
    assert '{"id":"1","state":"succeeded"}' in out  # the ack, with the token from the lease
    # The CLI part: its enqueue made job 2, which `jobs get` and `jobs list` show as ready.
    # (curl prints no newline after a reply, so the next output may follow on its line.)
    assert re.search(r"id:\s+2$", out, re.M) and re.search(r"^state:\s+ready$", out, re.M), out
    # As the README says next: the succeeded job is kept, with its result.
    c = server.client()
    status, body = c.get("1")
    assert status == 200 and body["state"] == "succeeded", body
    assert body["result"] == {"sent": True}, body
    c.close()
