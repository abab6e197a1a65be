"""OTLP trace export, checked against a real OTLP/HTTP receiver: a Python HTTP server on
127.0.0.1 that decodes each POST /v1/traces body as an `ExportTraceServiceRequest` with the
`opentelemetry-proto` package (the protobuf definitions the collectors use).

- A write with a `traceparent` is exported as one trace with the caller's trace id: the server
  span is the caller's child, `auth`, `writer.queue_wait` and `sqlite.transaction` descend from
  it (the batch span also links to the request), with the tenant, route, method and status
  attributes; the webhook delivery is a client span in the caller's trace whose `traceparent`
  the consumer receives.
- With the collector down, 1,000 writes all succeed and /metrics counts the dropped spans.
- SIGTERM exports what is still queued before the process exits 0.
- `OTEL_SERVICE_NAME` and `OTEL_EXPORTER_OTLP_HEADERS` reach the collector, and a caller's
  "not sampled" flag is respected (the SDK's default `parentbased_always_on` sampler).
- `check-config` shows where spans go, and refuses a malformed `HPTS_OTLP_ENDPOINT` by name.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from conftest import Api, Loan, clean_env, http_session, new_loans, run_sequences

SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3


def _value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@dataclass
class ExportedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict
    links: list[tuple[str, str]]
    resource: dict


@dataclass
class Recorder:
    """What one loopback HTTP server received."""

    spans: list[ExportedSpan] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[ExportedSpan]:
        with self.lock:
            return list(self.spans)


class _Server:
    def __init__(self, handler_factory):
        self.recorder = Recorder()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_factory(self.recorder))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _collector_handler(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                self.send_response(404)
                self.end_headers()
                return
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            decoded = []
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        decoded.append(
                            ExportedSpan(
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_span_id=s.parent_span_id.hex(),
                                name=s.name,
                                kind=s.kind,
                                attributes={a.key: _value(a.value) for a in s.attributes},
                                links=[(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                                resource=resource,
                            )
                        )
            with recorder.lock:
                recorder.spans.extend(decoded)
                recorder.requests.append(dict(self.headers))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return Handler


def _consumer_handler(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with recorder.lock:
                recorder.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def collector():
    server = _Server(_collector_handler)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def consumer():
    server = _Server(_consumer_handler)
    try:
        yield server
    finally:
        server.close()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str, detail=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout} s{detail()}")


def _disburse(api: Api, loan: Loan, headers: dict[str, str]):
    body = {
        "loan_id": loan.loan_id,
        "borrower_id": loan.borrower_id,
        "amount_minor": "150000",
        "currency": "USD",
        "effective_at": time.strftime("%Y-%m-%d", time.gmtime()),
        "method": "ach",
    }
    with http_session() as s:
        return s.post(
            api.base_url + "/v1/disbursements",
            data=json.dumps(body),
            headers={
                "Authorization": f"Bearer {api.tokens[loan.tenant]}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"otlp:{loan.loan_id}",
                **headers,
            },
            timeout=30,
        )


def _descends_from(span: ExportedSpan, ancestor: ExportedSpan, by_id: dict[str, ExportedSpan]) -> bool:
    seen = 0
    while span.parent_span_id and seen < 64:
        if span.parent_span_id == ancestor.span_id:
            return True
        parent = by_id.get(span.parent_span_id)
        if parent is None:
            return False
        span, seen = parent, seen + 1
    return False


def test_a_traced_write_is_exported_as_the_callers_trace_down_to_the_webhook(
    hpts, tmp_path, collector, consumer
):
    data_dir = tmp_path / "data"
    inst = hpts.serve(
        data_dir,
        HPTS_OTLP_ENDPOINT=collector.base_url,
        OTEL_BSP_SCHEDULE_DELAY="200",
        HPTS_WEBHOOK_URL=consumer.base_url + "/hooks",
        HPTS_WEBHOOK_SECRET="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts.token(data_dir, tenant)})
    loan = Loan(tenant, str(uuid.uuid4()), str(uuid.uuid4()))
    trace_id, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    tracestate = "vendor=opaque-value,other=1"

    r = _disburse(api, loan, {"traceparent": f"00-{trace_id}-{caller_span}-01", "tracestate": tracestate})
    assert r.status_code == 201, r.text
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", r.headers["traceparent"])
    assert m and m.group(1) == trace_id, f"response traceparent {r.headers['traceparent']}"
    answered_span = m.group(2)
    assert r.headers["tracestate"] == tracestate

    wanted = {"POST /v1/disbursements", "auth", "writer.queue_wait", "sqlite.transaction"}

    def request_spans():
        spans = [s for s in collector.recorder.snapshot() if s.trace_id == trace_id]
        return spans if wanted <= {s.name for s in spans} else None

    spans = _wait_for(
        request_spans,
        30,
        "the request's spans were not exported",
        lambda: f": got {[(s.name, s.trace_id) for s in collector.recorder.snapshot()]}\n{inst.proc.tail()}",
    )
    by_name = {s.name: s for s in spans}
    by_id = {s.span_id: s for s in spans}

    server = by_name["POST /v1/disbursements"]
    assert server.kind == SPAN_KIND_SERVER
    assert server.parent_span_id == caller_span, "the server span must be the caller's child"
    assert server.span_id == answered_span, "the response's traceparent names the exported server span"
    assert server.attributes["http.route"] == "/v1/disbursements"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["hpts.tenant_id"] == tenant
    assert server.resource["service.name"] == "hpts"

    for name in ("auth", "writer.queue_wait", "sqlite.transaction"):
        assert _descends_from(by_name[name], server, by_id), (
            f"{name} does not descend from the server span: {[(s.name, s.span_id, s.parent_span_id) for s in spans]}"
        )
    batch = by_name["sqlite.transaction"]
    linked = [by_id[sid] for tid, sid in batch.links if tid == trace_id and sid in by_id]
    assert linked and all(s is server or _descends_from(s, server, by_id) for s in linked), (
        f"sqlite.transaction links {batch.links} do not point into the request"
    )

    # The log line of the request names the same trace and span.
    def request_log_line():
        for line in inst.proc.log_text().splitlines():
            if line.startswith("{") and trace_id in line and '"http.route":"/v1/disbursements"' in line:
                return json.loads(line)
        return None

    logged = _wait_for(request_log_line, 10, "no log line carries the caller's trace id", lambda: inst.proc.tail())
    logged_span = logged.get("span", logged)
    assert logged_span["trace_id"] == trace_id
    assert logged_span["span_id"] == server.span_id
    assert logged_span["parent_span_id"] == caller_span

    # The webhook delivery: a client span in the caller's trace, a child of the server span of
    # the request that posted the entry, whose traceparent the consumer received.
    delivery = _wait_for(
        lambda: consumer.recorder.requests[:1],
        30,
        "the webhook consumer received nothing",
        lambda: inst.proc.tail(),
    )[0]
    sent = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", delivery["headers"].get("traceparent", ""))
    assert sent, f"webhook request headers: {delivery['headers']}"

    def delivery_span():
        return [s for s in collector.recorder.snapshot() if s.name == "webhook.deliver"][:1]

    deliver = _wait_for(delivery_span, 30, "no webhook.deliver span was exported")[0]
    assert deliver.kind == SPAN_KIND_CLIENT
    assert (deliver.trace_id, deliver.span_id) == (sent.group(1), sent.group(2))
    assert deliver.trace_id == trace_id, "the delivery runs in the caller's trace"
    assert deliver.parent_span_id == server.span_id, "the delivery is a child of the request's server span"
    assert deliver.attributes["http.response.status_code"] == 204


def test_with_the_collector_down_every_write_succeeds_and_dropped_spans_are_counted(hpts, tmp_path):
    data_dir = tmp_path / "data"
    inst = hpts.serve(data_dir, HPTS_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts.token(data_dir, tenant)})

    acks, failures = run_sequences(api, new_loans([tenant], 1000), ["disbursement"], threads=16)
    assert not failures, f"{len(failures)} writes failed with the collector down: {failures[:5]}"
    assert len(acks) == 1000

    def dropped() -> float:
        with http_session() as s:
            text = s.get(inst.base_url + "/metrics", timeout=10).text
        m = re.search(r"^hpts_otlp_spans_dropped_total (\S+)$", text, re.M)
        assert m, "hpts_otlp_spans_dropped_total missing from /metrics"
        assert "# TYPE hpts_otlp_spans_dropped_total counter" in text
        return float(m.group(1))

    # Spans still queued are dropped when their batch's export fails (every 5 s by default).
    count = _wait_for(lambda: dropped() or None, 30, "no dropped span was counted")
    assert count > 0


def test_sigterm_exports_the_spans_still_queued(hpts, tmp_path, collector):
    data_dir = tmp_path / "data"
    # A minute between scheduled exports: only the shutdown flush can send these spans.
    inst = hpts.serve(data_dir, HPTS_OTLP_ENDPOINT=collector.base_url, OTEL_BSP_SCHEDULE_DELAY="60000")
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts.token(data_dir, tenant)})
    trace_id = uuid.uuid4().hex
    r = _disburse(api, Loan(tenant, str(uuid.uuid4()), str(uuid.uuid4())), {
        "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    })
    assert r.status_code == 201, r.text
    time.sleep(1)
    assert not [s for s in collector.recorder.snapshot() if s.trace_id == trace_id], (
        "spans were exported before the shutdown; the test would prove nothing"
    )

    inst.proc.popen.send_signal(signal.SIGTERM)
    try:
        code = inst.proc.popen.wait(timeout=35)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"hpts still running 35 s after SIGTERM:\n{inst.proc.tail()}") from None
    assert code == 0, f"exit code {code}:\n{inst.proc.tail()}"

    names = {s.name for s in collector.recorder.snapshot() if s.trace_id == trace_id}
    assert {"POST /v1/disbursements", "auth", "writer.queue_wait", "sqlite.transaction"} <= names, (
        f"after SIGTERM the collector has {names}:\n{inst.proc.tail()}"
    )


def test_service_name_and_headers_reach_the_collector_and_unsampled_callers_are_not_exported(
    hpts, tmp_path, collector
):
    data_dir = tmp_path / "data"
    inst = hpts.serve(
        data_dir,
        HPTS_OTLP_ENDPOINT=collector.base_url + "/v1/traces",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_SERVICE_NAME="ledger-eu",
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=key-1,x-tenant=ops",
    )
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts.token(data_dir, tenant)})
    sampled, unsampled = uuid.uuid4().hex, uuid.uuid4().hex
    for trace_id, flags in ((unsampled, "00"), (sampled, "01")):
        r = _disburse(api, Loan(tenant, str(uuid.uuid4()), str(uuid.uuid4())), {
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-{flags}"
        })
        assert r.status_code == 201, r.text
        assert r.headers["traceparent"].startswith(f"00-{trace_id}-")
        assert r.headers["traceparent"].endswith(f"-{flags}"), "the answer carries hpts's sampling decision"

    def server_span():
        return [s for s in collector.recorder.snapshot() if s.trace_id == sampled and s.kind == SPAN_KIND_SERVER]

    server = _wait_for(server_span, 30, "the sampled request was not exported")[0]
    assert server.resource["service.name"] == "ledger-eu"
    time.sleep(0.5)  # a scheduled export or two later, the unsampled request is still absent
    assert not [s for s in collector.recorder.snapshot() if s.trace_id == unsampled]
    with collector.recorder.lock:
        headers = [{k.lower(): v for k, v in h.items()} for h in collector.recorder.requests]
    assert headers and all(h.get("x-api-key") == "key-1" and h.get("x-tenant") == "ops" for h in headers), headers


def test_check_config_shows_the_traces_url_and_refuses_a_malformed_endpoint(hpts_bin, tmp_path):
    def check(endpoint: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [hpts_bin, "check-config", "--dev", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(HPTS_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="ledger-eu"),
        )

    ok = check("http://127.0.0.1:4318")
    assert ok.returncode == 0, ok.stderr
    otlp = json.loads(ok.stdout)["otlp"]
    assert otlp["traces_url"] == "http://127.0.0.1:4318/v1/traces"
    assert otlp["service_name"] == "ledger-eu"

    for bad in ("127.0.0.1:4318", "grpc://127.0.0.1:4317", ""):
        refused = check(bad)
        assert refused.returncode == 2, f"{bad!r} accepted: {refused.stdout}"
        assert "HPTS_OTLP_ENDPOINT" in refused.stderr, refused.stderr
