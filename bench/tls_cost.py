"""What TLS costs end to end: an interleaved A/B of plain HTTP and TLS on one build.

docs/benchmarks.md, "TLS". Makes a throw-away CA and a server certificate for 127.0.0.1 with the
`openssl` command (P-256), then, each round, starts a fresh server without and with
--tls-cert-file/--tls-key-file on 127.0.0.1 with a fresh temporary data directory and runs the
same `ym_bench` scenario against it (keep-alive connections; ym_bench is given the CA through
$YM_CA_FILE). The order flips each round so that the drift of a shared machine falls on both
alike. Prints each run (throughput, and the server's CPU time per job from /proc), then the
medians and the TLS figures relative to plain HTTP. Bounded by
--rounds and by ym_bench's --jobs and --max-seconds.

    python3 bench/tls_cost.py --build build/release [--scenario enqueue] [--jobs 20000] \
        [--rounds 5]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

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


def one_run(build, tls, pki, scenario, jobs):
    d = tempfile.mkdtemp(prefix="ym-tls-cost-")
    try:
        extra = []
        if tls:
            extra = ["--tls-cert-file", os.path.join(pki, "server.pem"), "--tls-key-file",
                     os.path.join(pki, "server.key")]
        s = run_all.Server(build, d, extra)
        if tls:
            s.url = s.url.replace("http://", "https://")
        c0 = run_all.cpu_seconds(s.proc.pid)
        res, cmd = run_all.bench(build, s.url, scenario, "--jobs", str(jobs), "--connections",
                                 "4", "--consumers", "4", "--batch", "100", "--max-seconds",
                                 "300")
        cpu = run_all.cpu_seconds(s.proc.pid) - c0
        s.stop()
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
    a = ap.parse_args()
    if a.rounds < 1 or a.rounds > 100 or a.jobs < 1000 or a.jobs > 10_000_000:
        ap.error("--rounds must be 1..100 and --jobs 1000..10000000")
    pki = tempfile.mkdtemp(prefix="ym-tls-pki-")
    try:
        make_pki(pki)
        os.environ["YM_CA_FILE"] = os.path.join(pki, "ca.pem")
        results = {False: [], True: []}
        cmd = None
        for r in range(a.rounds):
            for tls in ((False, True) if r % 2 == 0 else (True, False)):
                value, cmd = one_run(a.build, tls, pki, a.scenario, a.jobs)
                results[tls].append(value)
                print(f"round {r + 1} {'tls  ' if tls else 'plain'}: {value[0]:.0f} jobs/s, "
                      f"{value[1]:.2f} us server CPU per job (load {load_average()})",
                      flush=True)
        print("command:", cmd)
        print(f"load average at the end: {load_average()}")
        for i, what in ((0, "jobs/s"), (1, "us server CPU per job")):
            plain = statistics.median(v[i] for v in results[False])
            tls = statistics.median(v[i] for v in results[True])
            print(f"median plain: {plain:.2f} {what}; tls: {tls:.2f} {what} "
                  f"({(tls / plain - 1) * 100:+.1f} %)")
    finally:
        shutil.rmtree(pki, ignore_errors=True)


if __name__ == "__main__":
    main()
