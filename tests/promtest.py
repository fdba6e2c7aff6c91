"""Helpers for the tests of deploy/prometheus and deploy/grafana: the metric families a broker
exposes, the metric names a PromQL expression reads, the expressions of the Grafana dashboard and
of the alert rules, and a real `prometheus` server on a loopback port with a temporary storage
directory (Debian's `prometheus` package, installed by scripts/install-deps.sh).

Standard library plus PyYAML (Debian's python3-yaml).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "yardmaster.json")
ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
ALERTS_TEST = os.path.join(ROOT, "deploy", "prometheus", "alerts_test.yml")
PROMETHEUS_YML = os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")
MONITORING_MD = os.path.join(ROOT, "docs", "monitoring.md")

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def tool(name: str) -> Optional[str]:
    """The path of `prometheus` or `promtool`, or None when the package is not installed."""
    return shutil.which(name) or shutil.which(name, path="/usr/bin")


# --- The exposition -----------------------------------------------------------------------------

def families(exposition: str) -> Dict[str, str]:
    """Family name -> type ("counter", "gauge", "histogram") from the `# TYPE` lines of a
    /metrics text. Every registered family prints its TYPE line, with samples or not."""
    out: Dict[str, str] = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            out[name] = kind.strip()
    return out


def unknown_names(names: Set[str], fams: Dict[str, str], allowed: Set[str] = frozenset()
                  ) -> List[str]:
    """The names among `names` that are not series of an exposed family: a counter or gauge by its
    own name, a histogram only through `_bucket`, `_sum` or `_count`."""
    bad = []
    for n in sorted(names):
        if n in allowed:
            continue
        if n in fams and fams[n] != "histogram":
            continue
        base = next((n[: -len(s)] for s in HISTOGRAM_SUFFIXES if n.endswith(s)), None)
        if base is not None and fams.get(base) == "histogram":
            continue
        bad.append(n)
    return bad


# --- PromQL -------------------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "offset", "bool", "inf", "nan", "atan2"}


def metric_names(expr: str) -> Set[str]:
    """The metric names a PromQL expression selects. Label matchers, strings, range and subquery
    brackets and grouping clauses are removed first; what is left that is an identifier, not a
    function call, keyword or part of a number is a metric name."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"'(?:[^'\\]|\\.)*'", "''", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names: Set[str] = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        before = s[m.start() - 1] if m.start() > 0 else " "
        if before.isdigit() or before in ".$":
            continue  # 1e3, 0.5e-2, a Grafana variable
        if s[m.end():].lstrip().startswith("("):
            continue  # a function
        if tok.lower() in _KEYWORDS:
            continue
        names.add(tok)
    return names


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by what Prometheus accepts: the
    interval variables by durations, template variables (regex matchers) by `.*`."""
    s = re.sub(r"\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}", "1m",
               expr)
    s = re.sub(r"\$__range|\$\{__range\}", "1h", s)
    s = re.sub(r"\$\{?\w+\}?", ".*", s)
    return s


# --- The dashboard and the rules ----------------------------------------------------------------

def load_dashboard() -> Dict[str, Any]:
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def dashboard_panels(dash: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Every panel, those inside rows included."""
    for p in dash["panels"]:
        yield p
        for inner in p.get("panels", []):
            yield inner


def dashboard_exprs(dash: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(where, expr) for every query of the dashboard: panel targets and query variables."""
    out = []
    for p in dashboard_panels(dash):
        for t in p.get("targets", []):
            out.append((f"panel {p['id']} {p['title']!r} target {t['refId']}", t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
            assert m, f"variable {v['name']}: expected label_values(metric, label), got {q!r}"
            out.append((f"variable {v['name']}", m.group(1)))
    return out


def load_alerts() -> List[Dict[str, Any]]:
    with open(ALERTS, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


# --- A real Prometheus server -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """`prometheus` on 127.0.0.1 and a free port, storage in `workdir`, scraping `targets`
    (host:port) every `interval`, evaluating `rule_files`. Its log is workdir/prometheus.log."""

    def __init__(self, workdir: str, targets: List[str], interval: str = "1s",
                 rule_files: Optional[List[str]] = None,
                 scrape_configs: Optional[List[Dict[str, Any]]] = None):
        """`scrape_configs`, when given, replaces the one plain job (relative paths in it, such
        as a `credentials_file`, are from workdir, where the config is written)."""
        self.workdir = workdir
        self.scrape_configs = scrape_configs
        self.targets = targets
        self.interval = interval
        self.rule_files = list(rule_files or [])
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.log_path = os.path.join(workdir, "prometheus.log")

    def config(self) -> Dict[str, Any]:
        return {
            "global": {"scrape_interval": self.interval, "scrape_timeout": self.interval,
                       "evaluation_interval": self.interval},
            "rule_files": self.rule_files,
            "scrape_configs": self.scrape_configs or [
                {"job_name": "yardmaster", "metrics_path": "/metrics",
                 "static_configs": [{"targets": self.targets}]}],
        }

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self, timeout: float = 60.0) -> "Prometheus":
        binary = tool("prometheus")
        assert binary, "prometheus is not installed"
        cfg = os.path.join(self.workdir, "prometheus.yml")
        with open(cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump(self.config(), f)
        # The port is free when picked and may be taken before prometheus binds it: a few tries.
        for _ in range(5):
            self.port = free_port()
            with open(self.log_path, "w", encoding="utf-8") as log:
                self.proc = subprocess.Popen(
                    [binary, f"--config.file={cfg}",
                     f"--storage.tsdb.path={os.path.join(self.workdir, 'tsdb')}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=info"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._ready():
                    return self
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.stop()
                raise AssertionError(f"prometheus not ready after {timeout}s:\n{self.log()}")
            if "address already in use" not in self.log():
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n"
                                     f"{self.log()}")
        raise AssertionError(f"prometheus found no free port:\n{self.log()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/<path>; returns `data` of a successful answer, fails the test otherwise."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        assert body.get("status") == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str, at: Optional[float] = None) -> List[Dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [ts, "text"]}, ...]."""
        params: Dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def value(self, expr: str, at: Optional[float] = None) -> Optional[float]:
        """The value of a query that returns one series; None when it returns none."""
        result = self.query(expr, at)
        if not result:
            return None
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
