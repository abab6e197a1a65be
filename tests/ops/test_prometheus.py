"""deploy/prometheus: promtool accepts the alerting rules and their unit tests pass, every alert
has its runbook line in docs/OPERATIONS.md, and a real Prometheus (Debian's `prometheus`
package, which scripts/test.sh installs) scrapes a running hpts on loopback, finds the ledger's
series, evaluates every rule without error, and fires the reconciliation alert when a tampered
ledger is reconciled."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, Api, Instance, Procs, clean_env, http_session, new_loans, open_loans

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
ALERTS_YML = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST_YML = PROMETHEUS_DIR / "alerts_test.yml"
EXAMPLE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
OPERATIONS_MD = REPO / "docs" / "OPERATIONS.md"


def prometheus_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(
            f"`{name}` is not installed. Run ./scripts/test.sh, which installs Debian's "
            "`prometheus` package (apt-get install --no-install-recommends prometheus).",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    return prometheus_tool("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return prometheus_tool("prometheus")


def alert_names() -> list[str]:
    """The alerts alerts.yml defines, in file order."""
    names = re.findall(r"^\s*- alert:\s*(\w+)\s*$", ALERTS_YML.read_text(), flags=re.M)
    assert names, f"no alerts found in {ALERTS_YML}"
    return names


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR, env=clean_env()
    )
    assert out.returncode == 0, f"promtool {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


# ----------------------------------------------------------------------------- the files


def test_promtool_accepts_the_alert_rules_and_the_example_config(promtool):
    out = run_promtool(promtool, "check", "rules", str(ALERTS_YML))
    assert f"SUCCESS: {len(alert_names())} rules found" in out.stdout, out.stdout
    out = run_promtool(promtool, "check", "config", str(EXAMPLE_CONFIG))
    assert "is valid prometheus config file syntax" in out.stdout, out.stdout


def test_the_alert_rule_unit_tests_pass_and_cover_every_alert(promtool):
    out = run_promtool(promtool, "test", "rules", str(ALERTS_TEST_YML))
    assert "SUCCESS" in out.stdout + out.stderr, out.stdout + out.stderr
    tested = set(re.findall(r"alertname:\s*(\w+)", ALERTS_TEST_YML.read_text()))
    untested = [name for name in alert_names() if name not in tested]
    assert not untested, f"alerts without a rule unit test: {untested}"
    for required in ("HptsWriterQueueNearFull", "HptsWebhookBacklog", "HptsReconciliationMismatch"):
        assert required in alert_names(), f"{required} is missing from alerts.yml"


def _github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_every_alert_has_a_runbook_row_in_operations_md():
    doc = OPERATIONS_MD.read_text()
    anchors = {_github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", doc, flags=re.M)}
    runbooks = re.findall(r'runbook:\s*"docs/OPERATIONS\.md#([\w-]+)"', ALERTS_YML.read_text())
    assert len(runbooks) == len(alert_names()), "every alert needs a runbook annotation"
    for anchor in set(runbooks):
        assert anchor in anchors, f"runbook anchor #{anchor} is not a heading of docs/OPERATIONS.md"
    section = doc.split("\n## Alerts\n", 1)
    assert len(section) == 2, "docs/OPERATIONS.md has no '## Alerts' section"
    alerts_section = section[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(\w+)` \|", alerts_section, flags=re.M))
    missing = [name for name in alert_names() if name not in rows]
    assert not missing, f"alerts without a runbook row under '## Alerts' in docs/OPERATIONS.md: {missing}"
    stale = rows - set(alert_names())
    assert not stale, f"runbook rows for alerts that alerts.yml does not define: {sorted(stale)}"


# ----------------------------------------------------------------------------- a real Prometheus


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Prometheus:
    """A Prometheus server of one test, scraping one hpts every second."""

    base_url: str
    proc: object

    def api(self, path: str, **params: str) -> dict:
        with http_session() as s:
            r = s.get(self.base_url + path, params=params, timeout=10)
        assert r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text}"
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        data = self.api("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        return data["result"]

    def wait_for(self, what: str, check, timeout: float = 60):
        """Polls `check()` until it returns something truthy; fails with the last value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            assert self.proc.popen.poll() is None, f"prometheus exited:\n{self.proc.tail()}"
            time.sleep(0.5)
        pytest.fail(f"{what} within {timeout} s; last answer: {last}\n{self.proc.tail()}")

    def value(self, promql: str, timeout: float = 60, accept=lambda v: True) -> float:
        """The single sample `promql` returns, once it exists and `accept`s."""

        def sample():
            result = self.query(promql)
            if len(result) == 1 and accept(float(result[0]["value"][1])):
                return result
            return None

        result = self.wait_for(f"Prometheus returns one acceptable sample of {promql}", sample, timeout)
        return float(result[0]["value"][1])

    def stop(self) -> None:
        """SIGTERM and a clean exit (the procs fixture kills it anyway if this fails)."""
        self.proc.popen.send_signal(signal.SIGTERM)
        try:
            code = self.proc.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"prometheus still running 30 s after SIGTERM:\n{self.proc.tail()}") from None
        assert code == 0, f"prometheus exited {code} after SIGTERM:\n{self.proc.tail()}"


def start_prometheus(prometheus_bin: str, procs: Procs, tmp_path: Path, target: str) -> Prometheus:
    """Prometheus on a free loopback port with alerts.yml, scraping `target` (host:port) as job
    "hpts" every second, its TSDB in `tmp_path`."""
    workdir = tmp_path / "prometheus"
    (workdir / "data").mkdir(parents=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS_YML)],
                "scrape_configs": [{"job_name": "hpts", "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    port = free_port()
    proc = procs.start(
        "prometheus",
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        clean_env(),
        cwd=workdir,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc)

    def ready():
        try:
            with http_session() as s:
                return s.get(prom.base_url + "/-/ready", timeout=2).status_code == 200
        except OSError:
            return False

    prom.wait_for("prometheus is ready", ready, timeout=60)
    return prom


def hpts_with_writes(hpts, tmp_path: Path, loans: int) -> tuple[Instance, Api, str]:
    """A running hpts with `loans` disbursements posted (each answered 201)."""
    data_dir = tmp_path / "data"
    inst = hpts.serve(data_dir)
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts.token(data_dir, tenant)})
    open_loans(api, new_loans([tenant], loans), threads=4)
    return inst, api, tenant


def target_of(inst: Instance) -> str:
    return inst.base_url.removeprefix("http://")


def test_a_real_prometheus_scrapes_the_ledger_series_and_evaluates_every_alert(
    hpts, prometheus_bin, procs, tmp_path
):
    inst, api, tenant = hpts_with_writes(hpts, tmp_path, loans=8)
    reconciled = api.get(tenant, "/v1/reconciliation/status")
    assert reconciled.status_code == 200, reconciled.text
    assert reconciled.json()["ledger_integrity"]["status"] == "ok", reconciled.text
    prom = start_prometheus(prometheus_bin, procs, tmp_path, target_of(inst))
    instance = f'job="hpts", instance="{target_of(inst)}"'

    assert prom.value(f"up{{{instance}}}", accept=lambda v: v == 1) == 1
    assert prom.value(f"hpts_writer_up{{{instance}}}", accept=lambda v: v == 1) == 1
    assert prom.value(f"hpts_writer_commits_total{{{instance}}}", accept=lambda v: v > 0) >= 1
    assert prom.value(f"hpts_writer_queue_capacity{{{instance}}}") == 4096
    assert prom.value(f"hpts_writer_storage_full_total{{{instance}}}") == 0
    assert prom.value(f"hpts_reconciliation_failures_total{{{instance}}}") == 0
    last_run = prom.value(f"hpts_reconciliation_last_run_timestamp_seconds{{{instance}}}")
    assert abs(last_run - time.time()) < 300, f"last reconciliation at {last_run}, now {time.time()}"
    # The eight disbursements, counted by route template, method and status.
    writes = f'{instance}, endpoint="/v1/disbursements", method="POST", status="201"'
    assert prom.value(f"hpts_http_requests_total{{{writes}}}") == 8
    assert prom.value(f"hpts_http_request_duration_seconds_count{{{writes}}}") == 8
    p99 = prom.value(
        "histogram_quantile(0.99, sum by (le) "
        f'(hpts_http_request_duration_seconds_bucket{{{instance}, method="POST"}}))'
    )
    assert 0 < p99 <= 2.5, p99

    # Every alert of alerts.yml is loaded, with its severity and runbook, and is evaluated
    # against the real series without an error.
    def evaluated_rules():
        groups = prom.api("/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r["health"] == "ok" and not r["lastEvaluation"].startswith("0001-") for r in rules):
            return rules
        return None

    rules = prom.wait_for("every rule was evaluated once with health ok", evaluated_rules)
    assert sorted(r["name"] for r in rules) == sorted(alert_names())
    for rule in rules:
        assert rule["type"] == "alerting", rule
        assert rule["labels"].get("severity") in {"critical", "warning"}, rule
        assert rule["annotations"].get("runbook") == "docs/OPERATIONS.md#alerts", rule
        assert rule["annotations"].get("summary") and rule["annotations"].get("description"), rule
    firing = [a for a in prom.api("/api/v1/alerts")["alerts"] if a["state"] == "firing"]
    assert not firing, f"a healthy hpts fires alerts: {firing}"
    prom.stop()


def test_a_real_prometheus_fires_the_reconciliation_alert_when_a_tampered_ledger_is_reconciled(
    hpts, prometheus_bin, procs, tmp_path
):
    inst, api, tenant = hpts_with_writes(hpts, tmp_path, loans=2)
    prom = start_prometheus(prometheus_bin, procs, tmp_path, target_of(inst))
    instance = f'job="hpts", instance="{target_of(inst)}"'
    # Scraped at 0 first, so the rise to 1 is an increase Prometheus can see.
    assert prom.value(f"hpts_reconciliation_failures_total{{{instance}}}") == 0

    # Edit one posted journal line behind the service's back (the append-only trigger dropped).
    conn = sqlite3.connect(inst.db, timeout=30)
    try:
        conn.execute("DROP TRIGGER journal_lines_no_update")
        changed = conn.execute(
            "UPDATE journal_lines SET amount_minor = amount_minor + 1 "
            "WHERE entry_id = (SELECT min(entry_id) FROM journal_lines) AND sequence = 1"
        ).rowcount
        conn.commit()
    finally:
        conn.close()
    assert changed == 1
    report = api.get(tenant, "/v1/reconciliation/status")
    assert report.status_code == 200, report.text
    assert report.json()["ledger_integrity"]["status"] == "mismatch", report.text

    assert prom.value(f"hpts_reconciliation_failures_total{{{instance}}}", accept=lambda v: v == 1) == 1

    def firing():
        alerts = prom.api("/api/v1/alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "HptsReconciliationMismatch" and a["state"] == "firing"]

    alerts = prom.wait_for("HptsReconciliationMismatch fires", firing, timeout=60)
    assert len(alerts) == 1, alerts
    assert alerts[0]["labels"] == {
        "alertname": "HptsReconciliationMismatch",
        "severity": "critical",
        "job": "hpts",
        "instance": target_of(inst),
    }
    assert alerts[0]["annotations"]["summary"] == f"hpts {target_of(inst)}: a reconciliation found a mismatch"
    prom.stop()
