"""Replicated acknowledgements (HPTS_DURABILITY=replicated, SPEC §9): every 2xx is already in
the object-storage replica. Lose the machine with no grace period and nothing acknowledged is
missing; lose the bucket for a while and writes are 503 replication_unavailable, readiness is
503, and both recover by themselves."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
import uuid

import requests

from conftest import (
    Api,
    ContinuousLoad,
    entry_ids,
    http_session,
    new_loans,
    open_loans,
    Procs,
    start_moto,
    wait_dead,
)

REPLICATED = {"HPTS_DURABILITY": "replicated"}
ISSUER_FILES = ("dev-signing-key.pem", "dev-jwks.json")


def _ready_status(base_url: str) -> int:
    with http_session() as s:
        return s.get(base_url + "/v1/health/ready", timeout=5).status_code


def _metric(base_url: str, name: str) -> float:
    with http_session() as s:
        text = s.get(base_url + "/metrics", timeout=5).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert m, f"{name} is not in /metrics"
    return float(m.group(1))


def test_losing_the_machine_under_load_loses_no_acknowledged_write(hpts_ls, s3, tmp_path):
    bucket = s3.create_bucket()
    old_dir = tmp_path / "m1" / "data"
    primary = hpts_ls.serve_under_litestream(old_dir, s3, bucket, **REPLICATED)
    tenants = [str(uuid.uuid4()), str(uuid.uuid4())]
    api = Api(primary.base_url, {t: hpts_ls.token(old_dir, t) for t in tenants})
    loans = new_loans(tenants, 40)
    open_loans(api, loans)

    # Write under load and, while the writers are still posting, lose the machine at once: no
    # pause for Litestream's sync interval, kill -9 Litestream and hpts together.
    load = ContinuousLoad(api, loans, threads=16).start()
    load.wait_for_acks(1500)
    hpts_pid = primary.hpts_pid()
    assert hpts_pid != primary.proc.pid, "hpts must run as Litestream's child"
    keys = tmp_path / "issuer-keys"
    keys.mkdir()
    for name in ISSUER_FILES:
        shutil.copy2(old_dir / name, keys / name)
    primary.proc.kill_session()
    wait_dead([primary.proc.pid, hpts_pid])
    load.join()
    acks = list(load.acks)
    assert len(acks) >= 1500
    refused = [o for o in load.other if not o.endswith("ConnectionError")]
    assert not refused, f"answers other than 2xx before the kill: {refused[:5]}"
    shutil.rmtree(tmp_path / "m1")

    # A new machine restores from the bucket (scripts/start.sh) and runs replicated again.
    new_dir = tmp_path / "m2" / "data"
    new_dir.mkdir(parents=True)
    for name in ISSUER_FILES:
        shutil.copy2(keys / name, new_dir / name)
    restored = hpts_ls.start_script(new_dir, s3, bucket, **REPLICATED)
    assert "database missing; restoring" in restored.proc.log_text()
    after = Api(restored.base_url, api.tokens)

    missing = []
    for a in acks:
        r = after.get(a.tenant, f"/v1/journal-entries/{a.journal_entry_id}")
        if r.status_code != 200:
            missing.append(f"{a.kind} {a.journal_entry_id}: {r.status_code}")
    assert not missing, f"{len(missing)} of {len(acks)} acknowledged writes lost, e.g. {missing[:5]}"

    # A replay of an acknowledged write answers its stored body, byte for byte.
    for a in acks[:: max(1, len(acks) // 50)]:
        r = after.post(a.tenant, a.path, a.request, a.key)
        assert r.status_code == 200, f"replay of {a.key}: {r.status_code} {r.text}"
        assert r.headers.get("Idempotent-Replayed") == "true"
        assert r.json() == a.body

    restored.proc.popen.send_signal(signal.SIGTERM)
    assert restored.proc.popen.wait(timeout=90) == 0, restored.proc.tail()
    verify = hpts_ls.run("verify", "--database", str(restored.db))
    assert verify.returncode == 0, f"hpts verify exit {verify.returncode}:\n{verify.stdout}\n{verify.stderr}"


def test_while_the_bucket_is_unreachable_writes_are_503_and_recover_with_the_same_keys(hpts_ls, tmp_path):
    # Its own S3 server, so stopping it touches no other test.
    registry = Procs(tmp_path / "moto-logs")
    (tmp_path / "moto-logs").mkdir()
    try:
        s3, moto = start_moto(registry)
        bucket = s3.create_bucket()
        data = tmp_path / "data"
        timeout_ms = 1500
        inst = hpts_ls.serve_under_litestream(
            data, s3, bucket, HPTS_REPLICATION_TIMEOUT_MS=str(timeout_ms), **REPLICATED
        )
        tenant = str(uuid.uuid4())
        api = Api(inst.base_url, {tenant: hpts_ls.token(data, tenant)})
        loans = new_loans([tenant], 20)
        open_loans(api, loans)
        assert _metric(inst.base_url, "hpts_replication_up") == 1

        load = ContinuousLoad(api, loans, threads=8, max_seconds=60).start()
        load.wait_for_acks(200)

        # The S3 server stops answering (SIGSTOP: connections hang, as on a network partition).
        os.killpg(moto.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            # Writes now fail within the timeout (plus one sync's slack), as 503
            # replication_unavailable with Retry-After; readiness turns 503.
            loan = loans[0]
            started = time.monotonic()
            r = api.write(loan, "fee", 1111)
            took = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert r.json()["code"] == "replication_unavailable", r.text
            assert int(r.headers["Retry-After"]) >= 1
            assert took <= timeout_ms / 1000 + 1.5, f"the 503 took {took:.2f} s"
            unconfirmed = (loan, r.request)
            deadline = time.monotonic() + 10
            while _ready_status(inst.base_url) != 503:
                assert time.monotonic() < deadline, "readiness did not turn 503"
                time.sleep(0.1)
            time.sleep(1.0)
            acks_during = [a for a in load.acks if a.acked_at > stopped_at + 0.5]
            assert not acks_during, f"{len(acks_during)} writes acknowledged while the bucket was unreachable"
            assert _metric(inst.base_url, "hpts_replication_up") == 0
            assert _metric(inst.base_url, "hpts_replication_unavailable_total") >= 1
        finally:
            os.killpg(moto.pid, signal.SIGCONT)

        # The bucket is back: readiness recovers by itself, a retry with the same key is
        # answered with the stored result (the write was committed locally all along).
        deadline = time.monotonic() + 30
        while _ready_status(inst.base_url) != 200:
            assert time.monotonic() < deadline, "readiness did not recover"
            time.sleep(0.1)
        load.stop()
        _, request = unconfirmed
        retry = requests.Request("POST", request.url, data=request.body, headers=dict(request.headers))
        with http_session() as s:
            r = s.send(retry.prepare(), timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers.get("Idempotent-Replayed") == "true"
        replayed = r.json()["journal_entry_id"]
        assert api.get(tenant, f"/v1/journal-entries/{replayed}").status_code == 200
        for other in load.other:
            assert "replication_unavailable" in other or other.endswith("ConnectionError"), other

        # Nothing acknowledged is lost: every 2xx (before, during, after) is in a restore of
        # the bucket taken now.
        confirm = api.write(loans[1], "fee", 2222)
        assert confirm.status_code == 201, confirm.text
        out = tmp_path / "restored.db"
        restore = hpts_ls.restore(s3, bucket, inst.db, out)
        assert restore.returncode == 0, restore.stderr
        restored = entry_ids(out)
        lost = [a.journal_entry_id for a in load.acks if a.journal_entry_id not in restored]
        assert not lost, f"{len(lost)} acknowledged writes are not in the replica"
        assert replayed in restored
        assert confirm.json()["journal_entry_id"] in restored
    finally:
        registry.kill_all()


def _l0_files(db) -> list[int]:
    """Max TXIDs of the L0 files Litestream keeps beside `db` (one per sync)."""
    level0 = db.parent / f".{db.name}-litestream" / "ltx" / "0"
    return sorted(int(p.name.split("-")[1].split(".")[0], 16) for p in level0.glob("*.ltx"))


def test_under_sustained_replicated_writes_litestream_drops_compacted_l0_files_and_the_replica_still_restores(
    hpts_ls, s3, tmp_path
):
    # Every group of replicated writes is one sync, one L0 file. Litestream lists its L0
    # directory on each sync, so scripts/start.sh keeps them 30 s (and until their compaction into
    # L1, every 10 s) instead of Litestream's 5 minutes, which made every sync slower as they
    # piled up. The restore runs while the service and its Litestream still run, as a restore
    # drill does.
    bucket = s3.create_bucket()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    inst = hpts_ls.start_script(data_dir, s3, bucket, **REPLICATED)
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts_ls.token(data_dir, tenant)})
    loans = new_loans([tenant], 32)
    open_loans(api, loans)

    load = ContinuousLoad(api, loans, threads=16, max_seconds=55).start()
    load.join(timeout=90)
    refused = [o for o in load.other if not o.endswith("ConnectionError")]
    assert not refused, f"answers other than 2xx: {refused[:5]}"

    l0 = _l0_files(inst.db)
    assert l0, "Litestream wrote no L0 file"
    synced = l0[-1]
    assert synced >= 300, f"only {synced} syncs in 55 s of replicated writes"
    # Files older than 30 s are gone once compacted: about 55 % of them remain after 55 s.
    assert len(l0) <= synced * 0.8, (
        f"{len(l0)} of {synced} L0 files are still on disk after 55 s: compacted ones are not dropped"
    )

    # Dropping L0 files loses nothing: a restore of the bucket has every acknowledged write.
    out = tmp_path / "restored.db"
    restore = hpts_ls.restore(s3, bucket, inst.db, out)
    assert restore.returncode == 0, restore.stderr
    restored = entry_ids(out)
    lost = [a.journal_entry_id for a in load.acks if a.journal_entry_id not in restored]
    assert load.acks and not lost, f"{len(lost)} of {len(load.acks)} acknowledged writes are not in the replica"
