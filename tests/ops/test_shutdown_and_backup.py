"""Stopping and copying a busy ledger: SIGTERM under load loses no acknowledged write, and an
online backup taken under load is complete and consistent."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

from conftest import Api, ContinuousLoad, entry_ids, integrity, new_loans, open_loans


def _busy_ledger(hpts, tmp_path):
    data_dir = tmp_path / "data"
    inst = hpts.serve(data_dir)
    tenant = str(uuid.uuid4())
    api = Api(inst.base_url, {tenant: hpts.token(data_dir, tenant)})
    loans = new_loans([tenant], 64)  # 64 loans over 16 writers: each loan has one writer
    open_loans(api, loans)
    return inst, api, loans


def test_sigterm_under_write_load_loses_no_acknowledged_write(hpts, tmp_path):
    inst, api, loans = _busy_ledger(hpts, tmp_path)
    load = ContinuousLoad(api, loans, threads=16, max_seconds=120).start()
    load.wait_for_acks(300)

    writers_at_signal = load.running()
    inst.proc.popen.send_signal(signal.SIGTERM)
    sent_at = time.monotonic()
    try:
        code = inst.proc.popen.wait(timeout=35)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"hpts still running 35 s after SIGTERM:\n{inst.proc.tail()}") from None
    stopped_after = time.monotonic() - sent_at
    load.join(timeout=60)

    assert code == 0, f"exit code {code} after SIGTERM:\n{inst.proc.tail()}"
    assert stopped_after < 35
    assert writers_at_signal == 16, f"only {writers_at_signal} writers were running at SIGTERM: {load.other[:5]}"
    acked = load.acked_ids()
    assert len(acked) >= 300
    stored = entry_ids(inst.db)
    lost = acked - stored
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes are not in the database: {sorted(lost)[:5]}"
    assert integrity(inst.db) == "ok"
    print(
        f"SIGTERM: stopped in {stopped_after:.2f} s; {len(acked)} writes acknowledged; "
        f"{load.connection_errors} writers saw the connection close; other answers: {sorted(set(load.other))[:5]}"
    )


def test_backup_during_write_load_passes_verify(hpts, tmp_path):
    inst, api, loans = _busy_ledger(hpts, tmp_path)
    load = ContinuousLoad(api, loans, threads=16, max_seconds=180).start()
    try:
        load.wait_for_acks(300)
        acked_before_backup = load.acked_ids()
        out = tmp_path / "backups" / "hpts-copy.db"
        out.parent.mkdir()
        started = time.monotonic()
        backup = hpts.run("backup", "--database", str(inst.db), "--out", str(out))
        backup_seconds = time.monotonic() - started
        acks_after_backup = load.ack_count()
        still_writing = load.running()
    finally:
        load.stop()

    assert backup.returncode == 0, f"hpts backup exit {backup.returncode}:\n{backup.stdout}\n{backup.stderr}"
    assert still_writing == 16, f"writers stopped during the backup: {load.other[:5]}"
    assert out.is_file()

    verify = hpts.run("verify", "--database", str(out))
    assert verify.returncode == 0, f"hpts verify exit {verify.returncode}:\n{verify.stdout}\n{verify.stderr}"

    copied = entry_ids(out)
    assert len(copied) >= len(acked_before_backup)
    missing = acked_before_backup - copied
    assert not missing, f"{len(missing)} writes acknowledged before the backup started are not in it"
    assert integrity(out) == "ok"
    # Informational: how busy the ledger was while the copy ran.
    print(f"backup took {backup_seconds:.2f} s; acks during it: {acks_after_backup - len(acked_before_backup)}")
