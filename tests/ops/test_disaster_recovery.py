"""Litestream replication end to end: lose the machine, restore from the bucket, lose nothing
that was acknowledged more than a sync interval ago; restore to a point in time."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import time
import uuid

from conftest import (
    LITESTREAM_YML,
    Api,
    litestream_env,
    new_loans,
    parse_ts,
    run_sequences,
    wait_dead,
)

# Litestream ships WAL frames every second (sync-interval in litestream.yml). Writes older
# than this are guaranteed to be in the bucket.
REPLICATION_WINDOW_S = 3.5


def test_disaster_recovery_drill(hpts_ls, s3, tmp_path):
    bucket = s3.create_bucket()
    old_dir = tmp_path / "machine-1" / "data"
    primary = hpts_ls.serve_under_litestream(old_dir, s3, bucket)
    tenants = [str(uuid.uuid4()), str(uuid.uuid4())]
    api = Api(primary.base_url, {t: hpts_ls.token(old_dir, t) for t in tenants})

    # 2 tenants x 125 loans x 8 writes = 2,000 writes, 16 at a time, mixed kinds.
    loans = new_loans(tenants, 125)
    sequence = ["disbursement", "fee", "payment", "disbursement", "fee", "payment", "fee", "payment"]
    acks, failures = run_sequences(api, loans, sequence, threads=16)
    last_ack_at = time.monotonic()
    assert not failures, f"{len(failures)} writes were not acknowledged: {failures[:5]}"
    assert len(acks) == 2000
    assert len({a.journal_entry_id for a in acks}) == 2000

    # What the ledger says before the disaster: every entry, every loan balance.
    before = {}
    for a in acks:
        r = api.get(a.tenant, f"/v1/journal-entries/{a.journal_entry_id}")
        assert r.status_code == 200, r.text
        before[a.journal_entry_id] = r.json()
        assert before[a.journal_entry_id]["posted_at"] == a.posted_at
    balances_before = {}
    for loan in loans:
        r = api.get(loan.tenant, f"/v1/loans/{loan.loan_id}/balance")
        assert r.status_code == 200, r.text
        balances_before[loan.loan_id] = r.json()

    # Let Litestream ship the last writes (sync interval 1 s), then lose the machine: kill -9
    # the service and Litestream together, delete the data directory.
    time.sleep(max(0.0, REPLICATION_WINDOW_S - (time.monotonic() - last_ack_at)))
    hpts_pid = primary.hpts_pid()
    assert hpts_pid != primary.proc.pid, "hpts must run as Litestream's child"
    keys = tmp_path / "issuer-keys"  # the token issuer's key lives outside the machine
    keys.mkdir()
    for name in ("dev-signing-key.pem", "dev-jwks.json"):
        shutil.copy2(old_dir / name, keys / name)
    primary.proc.kill_session()
    wait_dead([primary.proc.pid, hpts_pid])
    shutil.rmtree(tmp_path / "machine-1")

    # A new machine: empty data directory (plus the issuer's key), same bucket, production
    # entry point. start.sh must restore before hpts starts.
    new_dir = tmp_path / "machine-2" / "data"
    new_dir.mkdir(parents=True)
    for name in ("dev-signing-key.pem", "dev-jwks.json"):
        shutil.copy2(keys / name, new_dir / name)
    restored = hpts_ls.start_script(new_dir, s3, bucket)
    assert "database missing; restoring" in restored.proc.log_text()
    assert restored.db.is_file()
    api_after = Api(restored.base_url, api.tokens)

    # Every acknowledged write is back, byte for byte (same posted_at, same lines).
    missing, changed = [], []
    for a in acks:
        r = api_after.get(a.tenant, f"/v1/journal-entries/{a.journal_entry_id}")
        if r.status_code != 200:
            missing.append(f"{a.journal_entry_id}: {r.status_code}")
        elif r.json() != before[a.journal_entry_id]:
            changed.append(a.journal_entry_id)
        else:
            assert r.json()["posted_at"] == a.posted_at
    assert not missing, f"{len(missing)} acknowledged entries lost, e.g. {missing[:5]}"
    assert not changed, f"{len(changed)} entries differ after restore, e.g. {changed[:5]}"
    for loan in loans:
        r = api_after.get(loan.tenant, f"/v1/loans/{loan.loan_id}/balance")
        assert r.status_code == 200 and r.json() == balances_before[loan.loan_id], loan.loan_id

    # The restored ledger takes new writes.
    r = api_after.write(loans[0], "payment", 1234)
    assert r.status_code == 201, r.text

    # The ledger's own reconciliation agrees, for each tenant.
    for tenant in tenants:
        r = api_after.get(tenant, "/v1/reconciliation/status")
        assert r.status_code == 200, f"GET /v1/reconciliation/status: {r.status_code} {r.text}"
        status = r.json()
        assert status["ledger_integrity"]["status"] == "ok", status
        bad = [c for c in status["checks"] if c["status"] != "ok"]
        assert status["checks"] and not bad, status

    # Graceful stop through Litestream (SIGTERM is forwarded, final sync), then verify the file.
    restored.proc.popen.send_signal(signal.SIGTERM)
    assert restored.proc.popen.wait(timeout=90) == 0, restored.proc.tail()
    conn = sqlite3.connect(f"file:{restored.db}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM journal_entries").fetchone()[0] == len(acks) + 1
    finally:
        conn.close()
    verify = hpts_ls.run("verify", "--database", str(restored.db))
    assert verify.returncode == 0, f"hpts verify exit {verify.returncode}:\n{verify.stdout}\n{verify.stderr}"


def test_point_in_time_restore(hpts_ls, litestream_bin, s3, tmp_path):
    bucket = s3.create_bucket()
    data_dir = tmp_path / "data"
    inst = hpts_ls.serve_under_litestream(data_dir, s3, bucket)
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts_ls.token(data_dir, tenant)})
    loans = new_loans([tenant], 60)

    def burst(kind: str):
        acks, failures = run_sequences(api, loans, [kind], threads=16)
        assert not failures, failures[:5]
        return acks

    burst1 = burst("disbursement")
    time.sleep(3)
    burst2 = burst("fee")
    time.sleep(5)
    burst3 = burst("payment")

    last2 = max(parse_ts(a.posted_at) for a in burst2)
    first3 = min(parse_ts(a.posted_at) for a in burst3)
    gap = (first3 - last2).total_seconds()
    assert gap >= 4, f"bursts 2 and 3 are only {gap:.2f} s apart"
    assert (min(parse_ts(a.posted_at) for a in burst2) - max(parse_ts(a.posted_at) for a in burst1)).total_seconds() >= 2
    target = last2 + (first3 - last2) / 2
    before_target = {a.journal_entry_id for a in burst1 + burst2 if parse_ts(a.posted_at) < target}
    assert len(before_target) == 120

    time.sleep(REPLICATION_WINDOW_S)  # burst 3 reaches the bucket too
    env = litestream_env(s3, bucket, HPTS_DATABASE=str(inst.db))

    def restore(out, *extra):
        result = subprocess.run(
            [litestream_bin, "restore", "-config", str(LITESTREAM_YML), *extra, "-o", str(out), str(inst.db)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, f"litestream restore {extra}:\n{result.stdout}\n{result.stderr}"
        conn = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
        try:
            return {row[0] for row in conn.execute("SELECT entry_id FROM journal_entries")}
        finally:
            conn.close()

    latest = restore(tmp_path / "latest.db")
    assert latest == {a.journal_entry_id for a in burst1 + burst2 + burst3}, "the replica holds all three bursts"

    stamp = target.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    at_target = restore(tmp_path / "out.db", "-timestamp", stamp)
    assert len(at_target) == len(before_target), (
        f"restore to {stamp} has {len(at_target)} entries; {len(before_target)} were committed before it"
    )
    assert at_target == before_target
