"""deploy/grafana/yardmaster.json and deploy/prometheus/*.yml against the real broker and the
real promtool (docs/monitoring.md):

* the dashboard is well-formed Grafana JSON with the agreed variables and panels, and every
  expression in it, and in the alert rules, reads only metric families that a running broker
  exposes (so renaming or dropping a metric fails here), and parses as PromQL;
* `promtool check rules`, `promtool test rules` (alerts_test.yml) and `promtool check config`
  pass, and `promtool check metrics` accepts a live /metrics exposition after a workload;
* the shipped deployment is secure by default: no file in deploy/ passes `--insecure`; the
  container, the StatefulSet and the systemd unit run with auth = tokens; the StatefulSet's
  bootstrap secret reaches the server as a file only its user may read, its probes need no
  token, workers and Prometheus get theirs from Secrets; the shipped Prometheus configs send a
  bearer token from a credentials_file (promtool refuses them without that file);
* every alert has its annotations and a runbook entry in docs/monitoring.md, and that document
  names every exposed metric family, every panel and every alert.

The promtool tests skip only when Debian's `prometheus` package is missing (scripts/
install-deps.sh installs it, so CI runs them).
"""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from promtest import (ALERTS, ALERTS_TEST, MONITORING_MD, PROMETHEUS_YML, ROOT, dashboard_exprs,
                      dashboard_panels, families, grafana_to_promql, load_alerts,
                      load_dashboard, metric_names, tool, unknown_names)
from ymtest import Server, auth_call, binary

# What the dashboard must show (issue 12, part 6): a panel reading each of these families.
REQUIRED_FAMILIES = {
    "ym_job_events_total",                 # throughput, errors, failure ratio, dead letters
    "ym_job_wait_seconds", "ym_job_run_seconds",
    "ym_queue_jobs",                       # depth
    "ym_queue_blocked_jobs",               # blocked by reason
    "ym_queue_oldest_ready_age_seconds",
    "ym_store_commit_duration_seconds", "ym_store_commit_batch_mutations",
    "ym_http_requests_total", "ym_http_request_duration_seconds",
    "process_resident_memory_bytes", "process_open_fds", "ym_build_info",
    "ym_tls_handshakes_total", "ym_tls_certificate_expiry_timestamp_seconds",  # issue 13
}

# The alerts the issues ask for (12, part 6; 13), by name.
REQUIRED_ALERTS = {
    "YardmasterTargetDown", "YardmasterNotReady", "YardmasterStoreReadOnly",
    "YardmasterStoreCommitLatencyHigh", "YardmasterQueueWaitHigh",
    "YardmasterQueueOldestReadyJobOld", "YardmasterQueueNoPollers",
    "YardmasterQueueFailureRatioHigh", "YardmasterDeadLettersGrowing",
    "YardmasterTlsCertificateExpiresSoon",  # issue 13: warn before the certificate expires
}

# Series Prometheus makes itself for every target; an alert may read them.
PROMETHEUS_SERIES = {"up"}

needs_promtool = pytest.mark.skipif(
    tool("promtool") is None,
    reason="promtool is not installed (Debian package `prometheus`; scripts/install-deps.sh)")


def promtool(*args, stdin=None):
    return subprocess.run([tool("promtool"), *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def exposition(tmp_path_factory):
    """/metrics of a real broker after a small workload: enqueues, an ack, a retryable fail, a
    fail that makes a dead letter, a cancel, a long-poll that times out."""
    server = Server(str(tmp_path_factory.mktemp("deploy") / "data")).start()
    try:
        c = server.client()
        for i in range(3):
            c.enqueue(queue="work", kind="k", payload={"i": i}, max_attempts=1)
        c.enqueue(queue="work", kind="retry", payload={}, max_attempts=5)
        doomed = c.enqueue(queue="idle", kind="k", payload={})
        jobs = c.lease(["work"], max_jobs=4)
        assert len(jobs) == 4, jobs
        c.ack(jobs[0])
        for job in jobs[1:]:
            status, body = c.call("POST", f"/v1/jobs/{job['id']}:fail", {
                "token": job["lease"]["token"],
                "error": {"type": "E", "message": "boom", "retryable": True}})
            assert status == 200, body
        status, body = c.call("POST", f"/v1/jobs/{doomed['id']}:cancel")
        assert status == 200, body
        assert c.lease(["nothing"], wait_ms=50) == []
        status, headers, text = c.raw("GET", "/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain"), headers
        c.close()
        return text.decode()
    finally:
        server.stop()


# --- The dashboard ------------------------------------------------------------------------------

def test_dashboard_is_grafana_json_with_the_variables():
    dash = load_dashboard()
    assert dash["uid"] == "yardmaster" and dash["title"] == "Yardmaster"
    assert 36 <= dash["schemaVersion"] <= 41, dash["schemaVersion"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    queue = variables["queue"]
    assert queue["type"] == "query" and queue["includeAll"] and queue["multi"]
    assert re.fullmatch(r"label_values\(ym_queue_jobs\{.*\}, queue\)", queue["query"]["query"])
    assert queue["definition"] == queue["query"]["query"]
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, v["name"]


def test_dashboard_panels_are_well_formed():
    dash = load_dashboard()
    panels = list(dashboard_panels(dash))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    titles = [p["title"] for p in panels if p["type"] != "row"]
    assert len(titles) == len(set(titles)), "panel titles must be unique (docs name them)"
    cells = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        assert p["type"] in {"timeseries", "stat"}, p["type"]
        assert p.get("description"), f"panel {p['title']!r} has no description"
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"], (p["title"], t["refId"])
            assert t["expr"].strip(), (p["title"], t["refId"])
            assert "legendFormat" in t, (p["title"], t["refId"])
            # Per-queue panels follow the queue variable.
            if re.search(r"by \([^)]*\bqueue\b", t["expr"]):
                assert 'queue=~"$queue"' in t["expr"], (p["title"], t["expr"])


def test_dashboard_shows_the_required_families(exposition):
    fams = families(exposition)
    read = set()
    for _, expr in dashboard_exprs(load_dashboard()):
        for n in metric_names(expr):
            base = next((n[: -len(s)] for s in ("_bucket", "_sum", "_count")
                         if n.endswith(s) and fams.get(n[: -len(s)]) == "histogram"), n)
            read.add(base)
    missing = REQUIRED_FAMILIES - read
    assert not missing, f"no panel reads {sorted(missing)}"
    absent = REQUIRED_FAMILIES - set(fams)
    assert not absent, f"the broker does not expose {sorted(absent)}"


def test_dashboard_reads_only_exposed_families(exposition):
    fams = families(exposition)
    assert "ym_queue_jobs" in fams and fams["ym_store_commit_duration_seconds"] == "histogram"
    problems = []
    for where, expr in dashboard_exprs(load_dashboard()):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        bad = unknown_names(names, fams)
        if bad:
            problems.append(f"{where}: {bad} not exposed by the broker")
    assert not problems, "\n".join(problems)


def test_alerts_read_only_exposed_families(exposition):
    fams = families(exposition)
    problems = []
    for rule in load_alerts():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        bad = unknown_names(names, fams, allowed=PROMETHEUS_SERIES)
        if bad:
            problems.append(f"{rule['alert']}: {bad} not exposed by the broker")
    assert not problems, "\n".join(problems)


def test_metric_name_extraction():
    """The check above is only as good as this parser: it must find every metric, and nothing
    else, in the shapes the dashboard and rules use."""
    assert metric_names(
        'histogram_quantile(0.95, sum by (queue, le) (rate(ym_job_wait_seconds_bucket'
        '{instance=~"$instance", queue=~"$queue"}[$__rate_interval]))) > 1e3') == \
        {"ym_job_wait_seconds_bucket"}
    assert metric_names(
        'ym_queue_jobs{state="ready"} > 0 unless on (job, instance, queue) ym_queue_paused == 1 '
        'and on (queue) (time() - ym_queue_last_poll_timestamp_seconds offset 5m > 120)') == \
        {"ym_queue_jobs", "ym_queue_paused", "ym_queue_last_poll_timestamp_seconds"}
    assert metric_names('sum(x) by (le) / ignoring(code) group_left y') == {"x", "y"}
    fams = {"h": "histogram", "c": "counter"}
    assert unknown_names({"h_bucket", "h_count", "c"}, fams) == []
    assert unknown_names({"h", "c_bucket", "gone"}, fams) == ["c_bucket", "gone", "h"]


@needs_promtool
def test_dashboard_expressions_parse(tmp_path):
    """Each query, with Grafana's variables substituted, as a recording rule: promtool parses
    it as PromQL."""
    rules = [{"record": f"dashboard:expr_{i}", "expr": grafana_to_promql(expr)}
             for i, (_, expr) in enumerate(dashboard_exprs(load_dashboard()))]
    assert all("$" not in r["expr"] for r in rules)
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = promtool("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules)} rules found" in r.stdout, r.stdout


# --- The alert rules ----------------------------------------------------------------------------

@needs_promtool
def test_promtool_check_rules():
    r = promtool("check", "rules", ALERTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(load_alerts())} rules found" in r.stdout, r.stdout


@needs_promtool
def test_promtool_rule_unit_tests_cover_every_alert():
    r = promtool("test", "rules", ALERTS_TEST)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout
    with open(ALERTS_TEST, encoding="utf-8") as f:
        tested = {t["alertname"] for case in yaml.safe_load(f)["tests"]
                  for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    untested = {a["alert"] for a in load_alerts()} - tested
    assert not untested, f"alerts_test.yml never sees these fire: {sorted(untested)}"


def write_secret(path, secret="ym_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"):
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")


@needs_promtool
def test_promtool_check_example_config(tmp_path):
    """The shipped prometheus.yml, next to its alerts.yml and the token file it names, passes;
    without the token file promtool refuses it, naming the file: the scrape really sends it."""
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(os.path.join(os.path.dirname(PROMETHEUS_YML), name), tmp_path / name)
    cfg = str(tmp_path / "prometheus.yml")
    r = promtool("check", "config", cfg)
    assert r.returncode != 0 and "yardmaster.token" in r.stdout + r.stderr, r.stdout + r.stderr
    write_secret(tmp_path / "yardmaster.token")
    r = promtool("check", "config", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "alerts.yml" in r.stdout and "SUCCESS" in r.stdout, r.stdout


@needs_promtool
def test_promtool_check_metrics_accepts_the_exposition(exposition):
    assert "ym_http_request_duration_seconds_bucket{" in exposition
    assert "ym_store_commit_duration_seconds_bucket{" in exposition
    r = promtool("check", "metrics", stdin=exposition)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr


def test_promtool_check_metrics_catches_a_bad_exposition():
    """The check above can fail: promtool rejects a broken text and lints a bad name."""
    if tool("promtool") is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    r = promtool("check", "metrics", stdin="# TYPE ym_x counter\nym_x{a=\"1\" 2\n")
    assert r.returncode != 0
    r = promtool("check", "metrics", stdin="# HELP ym_x x\n# TYPE ym_x counter\nym_x 2\n")
    assert r.returncode != 0 and "_total" in r.stdout + r.stderr


# --- Annotations, runbook and docs --------------------------------------------------------------

def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rules)."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def read_monitoring_md() -> str:
    with open(MONITORING_MD, encoding="utf-8") as f:
        return f.read()


def runbook_anchors(doc: str) -> set:
    """The anchors of the headings under `## Runbook`."""
    part = doc.split("\n## Runbook", 1)
    assert len(part) == 2, "docs/monitoring.md has no `## Runbook` section"
    runbook = part[1].split("\n## ", 1)[0]
    return {slug(m.group(1)) for m in re.finditer(r"^###\s+(.+)$", runbook, re.M)}


def test_alerts_have_annotations_and_runbook_entries():
    alerts = load_alerts()
    assert {a["alert"] for a in alerts} == REQUIRED_ALERTS
    anchors = runbook_anchors(read_monitoring_md())
    for a in alerts:
        assert a["labels"]["severity"] in {"critical", "warning"}, a["alert"]
        ann = a["annotations"]
        assert ann.get("summary") and ann.get("description"), a["alert"]
        m = re.fullmatch(r"docs/monitoring\.md#([a-z0-9-]+)", ann.get("runbook_url", ""))
        assert m, f"{a['alert']}: runbook_url must be docs/monitoring.md#anchor: {ann}"
        assert m.group(1) in anchors, f"{a['alert']}: no runbook heading for #{m.group(1)}"


def test_monitoring_doc_names_every_metric_panel_and_alert(exposition):
    doc = read_monitoring_md()
    undocumented = [f for f in sorted(families(exposition)) if f"`{f}`" not in doc]
    assert not undocumented, f"docs/monitoring.md does not describe {undocumented}"
    panels = [p["title"] for p in dashboard_panels(load_dashboard()) if p["type"] != "row"]
    missing = [t for t in panels if f"**{t}**" not in doc]
    assert not missing, f"docs/monitoring.md does not explain the panels {missing}"
    alerts = [a["alert"] for a in load_alerts() if f"`{a['alert']}`" not in doc]
    assert not alerts, f"docs/monitoring.md does not list the alerts {alerts}"
    for path in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc):
        assert not re.match(r"[a-z]+:", path), f"docs point outside the repository: {path}"
        target = os.path.normpath(os.path.join(os.path.dirname(MONITORING_MD), path))
        assert os.path.exists(target), f"docs/monitoring.md links to a missing {path}"


# --- Secure by default (issue 13) -------------------------------------------------------------

DEPLOY = os.path.join(ROOT, "deploy")


def deploy_file(*parts):
    with open(os.path.join(DEPLOY, *parts), encoding="utf-8") as f:
        return f.read()


def uncommented(text):
    """The lines that take effect: without `#` comments (YAML, Dockerfile, systemd, Procfile)."""
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


def k8s_docs(name):
    return [d for d in yaml.safe_load_all(deploy_file("kubernetes", name)) if d]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_no_shipped_file_runs_insecure():
    files = [os.path.join(d, f) for d, _, fs in os.walk(DEPLOY) for f in fs]
    assert len(files) >= 10, files
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in uncommented(f.read()):
                assert not re.search(r"--insecure|YM_INSECURE|insecure\s*=\s*(true|on)", line,
                                     re.I), f"{os.path.relpath(path, ROOT)}: {line.strip()}"


def test_container_image_turns_auth_on():
    lines = uncommented(deploy_file("Dockerfile"))
    final = lines[max(i for i, l in enumerate(lines) if l.startswith("FROM ")):]
    env = " ".join(l for l in final if l.startswith("ENV "))
    assert re.search(r"\bYM_AUTH=tokens\b", env), env
    assert re.search(r"\bYM_LISTEN=0\.0\.0\.0:7433\b", env), env
    assert 'CMD ["server"]' in final, final
    # The bootstrap secret lands in the data dir; the header says how to read it once.
    assert "docker exec yardmaster cat /var/lib/yardmaster/admin.token" in \
        deploy_file("Dockerfile")


def test_statefulset_turns_auth_on_with_a_private_bootstrap_file():
    (sts,) = [d for d in k8s_docs("server.yaml") if d["kind"] == "StatefulSet"]
    spec = sts["spec"]["template"]["spec"]
    (server,) = spec["containers"]
    assert server["args"] == ["server"], server["args"]
    env = env_of(server)
    assert env["YM_AUTH"] == "tokens" and env["YM_LISTEN"] == "0.0.0.0:7433", env
    bootstrap = env["YM_AUTH_BOOTSTRAP_TOKEN_FILE"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    run_dir = os.path.dirname(bootstrap)
    assert "emptyDir" in volumes[mounts[run_dir]], "the copy must not outlive the pod"
    # The init container copies the Secret there, mode 0400, as the server's own user (a
    # Secret volume's files belong to root and get group read with fsGroup).
    (init,) = spec["initContainers"]
    cmd = init["command"]
    assert cmd[:3] == ["/usr/bin/install", "-m", "0400"] and cmd[-1] == bootstrap, cmd
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    assert init_mounts[run_dir] == mounts[run_dir]
    secret_vol = volumes[init_mounts[os.path.dirname(cmd[3])]]["secret"]
    assert secret_vol["secretName"] == "yardmaster-bootstrap"
    assert secret_vol["defaultMode"] & 0o007 == 0, oct(secret_vol["defaultMode"])
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsUser"]


def test_statefulset_bootstrap_chain_on_the_real_server(tmp_path):
    """The StatefulSet's bootstrap chain, run here: the Secret's file as the volume presents it
    (defaultMode) is refused by the server; the init container's command makes a copy it
    accepts, whose secret is then an admin token; the probes answer without one."""
    (sts,) = [d for d in k8s_docs("server.yaml") if d["kind"] == "StatefulSet"]
    spec = sts["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    env = env_of(spec["containers"][0])
    mode = {v["name"]: v for v in spec["volumes"]}["bootstrap"]["secret"]["defaultMode"]
    secret = subprocess.run([binary(), "tokens", "new-secret"], capture_output=True, text=True,
                            timeout=30, check=True).stdout.strip()
    mounted = tmp_path / "admin.token"
    write_secret(mounted, secret)
    os.chmod(mounted, mode)
    server_env = {"YM_AUTH": env["YM_AUTH"], "YM_AUTH_BOOTSTRAP_TOKEN_FILE": str(mounted)}
    refused = Server(str(tmp_path / "data0"), env=server_env)
    with pytest.raises(RuntimeError, match="readable or writable by group or others"):
        refused.start()
    refused.kill()
    copied = tmp_path / "run" / "admin.token"
    copied.parent.mkdir()
    cmd = init["command"]
    subprocess.run([*cmd[:-2], str(mounted), str(copied)], check=True, timeout=30)
    assert os.stat(copied).st_mode & 0o777 == 0o400
    server_env["YM_AUTH_BOOTSTRAP_TOKEN_FILE"] = str(copied)
    server = Server(str(tmp_path / "data"), env=server_env).start()
    try:
        assert auth_call(server, "GET", "/metrics")[0] == 401
        status, _, body = auth_call(server, "GET", "/v1/tokens", token=secret)
        assert status == 200 and [t["role"] for t in body["tokens"]] == ["admin"], body
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            path = spec["containers"][0][probe]["httpGet"]["path"]
            assert auth_call(server, "GET", path)[0] == 200, path
    finally:
        server.stop()


def test_statefulset_probes_need_no_token():
    """GET /livez and /readyz are the routes auth = tokens leaves open; the probes send no
    header (test_prometheus_scrape.py checks the server answers them 200 without a token)."""
    (sts,) = [d for d in k8s_docs("server.yaml") if d["kind"] == "StatefulSet"]
    (server,) = sts["spec"]["template"]["spec"]["containers"]
    probes = [server[k] for k in ("livenessProbe", "readinessProbe", "startupProbe")]
    for probe in probes:
        get = probe["httpGet"]
        assert get["path"] in {"/livez", "/readyz"} and "httpHeaders" not in get, get
    assert {p["httpGet"]["path"] for p in probes} == {"/livez", "/readyz"}


def test_workers_and_prometheus_get_tokens_from_secrets():
    (dep,) = k8s_docs("worker.yaml")
    spec = dep["spec"]["template"]["spec"]
    (worker,) = spec["containers"]
    token_file = env_of(worker)["YM_TOKEN_FILE"]
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    vol = {v["name"]: v for v in spec["volumes"]}[mounts[os.path.dirname(token_file)]]
    assert vol["secret"]["defaultMode"] & 0o007 == 0
    unit = deploy_file("systemd", "yardmaster-worker@.service")
    assert "LoadCredential=token:" in unit and "Environment=YM_TOKEN_FILE=%d/token" in unit
    server_unit = uncommented(deploy_file("systemd", "yardmaster.service"))
    assert "Environment=YM_AUTH=tokens" in server_unit, server_unit


@needs_promtool
def test_kubernetes_prometheus_mounts_its_token(tmp_path):
    docs = {d["kind"]: d for d in k8s_docs("prometheus.yaml")}
    config = yaml.safe_load(docs["ConfigMap"]["data"]["prometheus.yml"])
    (job,) = config["scrape_configs"]
    auth = job["authorization"]
    assert auth["type"] == "Bearer" and not os.path.isabs(auth["credentials_file"]), auth
    spec = docs["Deployment"]["spec"]["template"]["spec"]
    (prom,) = spec["containers"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["args"]
    mounts = {m["mountPath"]: m["name"] for m in prom["volumeMounts"]}
    projected = {v["name"]: v for v in spec["volumes"]}[mounts["/etc/prometheus"]]["projected"]
    assert projected["defaultMode"] & 0o007 == 0
    paths = {item["path"]: src for src in projected["sources"] for kind in src
             for item in src[kind]["items"]}
    assert "secret" in paths[auth["credentials_file"]], paths
    assert "configMap" in paths["prometheus.yml"], paths
    (tmp_path / "prometheus.yml").write_text(docs["ConfigMap"]["data"]["prometheus.yml"])
    write_secret(tmp_path / auth["credentials_file"])
    r = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
