"""What API-token authentication costs end to end: an interleaved A/B of `auth = none` and
`auth = tokens` on one build.

docs/benchmarks.md, "API tokens". Each round starts a fresh server without and with
`--auth tokens` on 127.0.0.1 with a fresh temporary data directory, and runs the same `ym_bench`
scenario against it over keep-alive connections; with auth, ym_bench gets the bootstrap admin
token through $YM_TOKEN_FILE (<data_dir>/admin.token), so every request carries a bearer token
the server hashes and looks up. The order flips each round so that the drift of a shared
machine falls on both alike. Prints each run (throughput, and the server's CPU time per job
from /proc), then the medians and the auth figures relative to no auth. Bounded by --rounds and
by ym_bench's --jobs and --max-seconds.

    python3 bench/auth_cost.py --build build/release [--scenario enqueue] [--jobs 20000] \
        [--rounds 5]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_all  # noqa: E402


def one_run(build, auth, scenario, jobs):
    d = tempfile.mkdtemp(prefix="ym-auth-cost-")
    try:
        os.environ.pop("YM_TOKEN", None)
        os.environ.pop("YM_TOKEN_FILE", None)
        s = run_all.Server(build, d, ["--auth", "tokens"] if auth else [])
        if auth:
            os.environ["YM_TOKEN_FILE"] = os.path.join(d, "admin.token")
        c0 = run_all.cpu_seconds(s.proc.pid)
        res, cmd = run_all.bench(build, s.url, scenario, "--jobs", str(jobs), "--connections",
                                 "4", "--consumers", "4", "--batch", "100", "--max-seconds",
                                 "300")
        cpu = run_all.cpu_seconds(s.proc.pid) - c0
        s.stop()
        key = "end_to_end_jobs_per_s" if scenario == "drain" else "jobs_per_s"
        return (float(res[key]), cpu * 1e6 / jobs), cmd
    finally:
        os.environ.pop("YM_TOKEN_FILE", None)
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--scenario", choices=["enqueue", "drain"], default="enqueue")
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if a.rounds < 1 or a.rounds > 100 or a.jobs < 1000 or a.jobs > 10_000_000:
        ap.error("--rounds must be 1..100 and --jobs 1000..10000000")
    results = {False: [], True: []}
    cmd = None
    for r in range(a.rounds):
        for auth in ((False, True) if r % 2 == 0 else (True, False)):
            value, cmd = one_run(a.build, auth, a.scenario, a.jobs)
            results[auth].append(value)
            print(f"round {r + 1} {'tokens' if auth else 'none  '}: {value[0]:.0f} jobs/s, "
                  f"{value[1]:.2f} us server CPU per job", flush=True)
    print("command:", cmd)
    for i, what in ((0, "jobs/s"), (1, "us server CPU per job")):
        none = statistics.median(v[i] for v in results[False])
        tokens = statistics.median(v[i] for v in results[True])
        print(f"median none: {none:.2f} {what}; tokens: {tokens:.2f} {what} "
              f"({(tokens / none - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
