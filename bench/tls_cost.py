"""What TLS (and API-token authentication) cost end to end: an interleaved comparison of plain
HTTP, TLS and TLS with `--auth tokens` on one build.

docs/benchmarks.md, "TLS". Makes a throw-away CA and a server certificate for 127.0.0.1 with the
`openssl` command (P-256), then, each round, starts a fresh server without and with
--tls-cert-file/--tls-key-file on 127.0.0.1 with a fresh temporary data directory and runs the
same `ym_bench` scenario against it (keep-alive connections; ym_bench is given the CA through
$YM_CA_FILE and, with auth, the bootstrap admin token the server wrote to <data>/admin.token
through $YM_TOKEN_FILE). The order rotates each round so that the drift of a shared machine
falls on every mode alike. Prints each run (throughput, and the server's CPU time per job from /proc), then the
medians and the TLS figures relative to plain HTTP. Bounded by
--rounds and by ym_bench's --jobs and --max-seconds.

    python3 bench/tls_cost.py --build build/release [--scenario enqueue] [--jobs 20000] \
        [--rounds 5] [--modes plain,tls,tls+auth]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_all  # noqa: E402

CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
[server]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


def make_pki(d):
    with open(os.path.join(d, "openssl.cnf"), "w") as f:
        f.write(CNF)

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    for name in ("ca", "server"):
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
             f"{name}.key")
    ossl("req", "-config", "openssl.cnf", "-new", "-x509", "-key", "ca.key", "-subj", "/CN=ca",
         "-days", "1", "-extensions", "ca", "-out", "ca.pem")
    ossl("req", "-config", "openssl.cnf", "-new", "-key", "server.key", "-subj", "/CN=server",
         "-out", "server.csr")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "1", "-extfile", "openssl.cnf", "-extensions", "server",
         "-out", "server.pem")


def load_average():
    """The 1-minute load average: the machine is shared, so every figure is quoted with it."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


MODES = ("plain", "tls", "auth", "tls+auth")


def one_run(build, mode, pki, scenario, jobs):
    d = tempfile.mkdtemp(prefix="ym-tls-cost-")
    tls = mode.startswith("tls")
    auth = mode.endswith("auth")
    try:
        extra = []
        if tls:
            extra = ["--tls-cert-file", os.path.join(pki, "server.pem"), "--tls-key-file",
                     os.path.join(pki, "server.key")]
        if auth:
            extra += ["--auth", "tokens"]
        s = run_all.Server(build, d, extra)
        if tls:
            s.url = s.url.replace("http://", "https://")
        os.environ.pop("YM_TOKEN_FILE", None)
        if auth:
            # The server writes its first admin token's secret there at start.
            token = os.path.join(d, "admin.token")
            deadline = time.monotonic() + 60
            while not os.path.exists(token) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not os.path.exists(token):
                s.stop()
                raise RuntimeError(f"no bootstrap token at {token}")
            os.environ["YM_TOKEN_FILE"] = token
        c0 = run_all.cpu_seconds(s.proc.pid)
        res, cmd = run_all.bench(build, s.url, scenario, "--jobs", str(jobs), "--connections",
                                 "4", "--consumers", "4", "--batch", "100", "--max-seconds",
                                 "300")
        cpu = run_all.cpu_seconds(s.proc.pid) - c0
        s.stop()
        if res.get("errors") or res.get("completed") is False:
            raise RuntimeError(f"{mode}: ym_bench reported errors or did not complete: {res}")
        key = "end_to_end_jobs_per_s" if scenario == "drain" else "jobs_per_s"
        return (float(res[key]), cpu * 1e6 / jobs), cmd
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--scenario", choices=["enqueue", "drain"], default="enqueue")
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modes", default="plain,tls",
                    help="comma-separated, the first is the baseline: " + ", ".join(MODES))
    a = ap.parse_args()
    modes = a.modes.split(",")
    if len(modes) < 2 or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        ap.error(f"--modes: two or more of {', '.join(MODES)}")
    if a.rounds < 1 or a.rounds > 100 or a.jobs < 1000 or a.jobs > 10_000_000:
        ap.error("--rounds must be 1..100 and --jobs 1000..10000000")
    pki = tempfile.mkdtemp(prefix="ym-tls-pki-")
    try:
        make_pki(pki)
        os.environ["YM_CA_FILE"] = os.path.join(pki, "ca.pem")
        results = {m: [] for m in modes}
        cmd = None
        for r in range(a.rounds):
            k = r % len(modes)
            for mode in modes[k:] + modes[:k]:
                value, cmd = one_run(a.build, mode, pki, a.scenario, a.jobs)
                results[mode].append(value)
                print(f"round {r + 1} {mode:8}: {value[0]:.0f} jobs/s, "
                      f"{value[1]:.2f} us server CPU per job (load {load_average()})",
                      flush=True)
        print("command:", cmd)
        print(f"load average at the end: {load_average()}")
        for i, what in ((0, "jobs/s"), (1, "us server CPU per job")):
            base = statistics.median(v[i] for v in results[modes[0]])
            parts = [f"{modes[0]}: {base:.2f}"]
            for m in modes[1:]:
                med = statistics.median(v[i] for v in results[m])
                parts.append(f"{m}: {med:.2f} ({(med / base - 1) * 100:+.1f} %)")
            print(f"median {what}: " + "; ".join(parts))
    finally:
        shutil.rmtree(pki, ignore_errors=True)


if __name__ == "__main__":
    main()
