"""fly.toml, litestream.yml and scripts/start.sh agree with what the binary actually accepts."""

from __future__ import annotations

import json
import posixpath
import re
import subprocess
import tomllib
import uuid

from conftest import LITESTREAM_YML, REPO, START_SH, clean_env


def _seconds(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(value))
    assert m and any(m.groups()), f"unreadable duration {value!r}"
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_fly_toml_matches_app_configuration(hpts_bin, tmp_path):
    cfg = tomllib.loads((REPO / "fly.toml").read_text())
    env = cfg["env"]

    listen = env["HPTS_LISTEN"]
    host, _, port = listen.rpartition(":")
    assert host == "0.0.0.0", f"HPTS_LISTEN={listen} must listen on every interface inside the VM"
    assert cfg["http_service"]["internal_port"] == int(port), "internal_port must be the port hpts listens on"

    mounts = _as_list(cfg["mounts"])
    assert len(mounts) == 1, "one machine, one volume"
    assert mounts[0]["destination"] == posixpath.dirname(env["HPTS_DATABASE"]), (
        "the volume must hold the database (HPTS_DATABASE); anything else is lost on redeploy"
    )

    checks = cfg["http_service"].get("checks", [])
    paths = {c["path"] for c in checks if c.get("method", "GET").upper() == "GET"}
    assert {"/v1/health/live", "/v1/health/ready"} <= paths, f"http checks hit {paths}"

    assert _seconds(cfg["kill_timeout"]) >= 35, "hpts drains in-flight writes for up to 30 s after SIGTERM"
    # actix-web treats SIGINT (Fly's default kill_signal) as a forced, non-graceful stop.
    assert cfg.get("kill_signal") == "SIGTERM"

    secrets = {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "HPTS_WEBHOOK_SECRET"}
    assert not secrets & env.keys(), "secrets belong in `fly secrets set`, not in [env]"

    # Every HPTS_ variable in [env] is one hpts reads (a typo would be silently ignored)...
    help_text = subprocess.run(
        [hpts_bin, "serve", "--help"], capture_output=True, text=True, timeout=60, env=clean_env()
    ).stdout
    for name in env:
        if name.startswith("HPTS_"):
            assert f"env: {name}=" in help_text, f"{name} in fly.toml is not an hpts setting"
        elif name.startswith("LITESTREAM_"):
            assert name in LITESTREAM_YML.read_text() or name in START_SH.read_text(), name
    # ...and check-config accepts exactly that environment plus the auth secrets.
    subprocess.run(
        [hpts_bin, "token", "--tenant", str(uuid.uuid4()), "--data-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
        env=clean_env(),
    )
    jwks = tmp_path / "dev-jwks.json"
    assert jwks.is_file()
    result = subprocess.run(
        [hpts_bin, "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(
            **{k: str(v) for k, v in env.items()},
            HPTS_AUTH_ISSUER="https://issuer.example.com/",
            HPTS_AUTH_AUDIENCE="hpts",
            HPTS_AUTH_JWKS=str(jwks),
        ),
    )
    assert result.returncode == 0, f"hpts check-config rejected fly.toml's environment:\n{result.stderr}"
    effective = json.loads(result.stdout)
    assert effective["listen"] == listen
    assert effective["database"] == env["HPTS_DATABASE"]
    assert effective["dev"] is False


def test_litestream_yml_is_accepted_by_litestream_with_every_setting_from_the_environment(
    litestream_bin, tmp_path
):
    env = clean_env(
        HPTS_DATABASE=str(tmp_path / "hpts.db"),
        LITESTREAM_BUCKET="bucket-from-env",
        LITESTREAM_PATH="prefix/from/env",
        LITESTREAM_ENDPOINT="http://127.0.0.1:9",
        LITESTREAM_REGION="us-east-1",
        LITESTREAM_FORCE_PATH_STYLE="true",
        LITESTREAM_L0_RETENTION="5s",
    )
    listed = subprocess.run(
        [litestream_bin, "databases", "-config", str(LITESTREAM_YML)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert listed.returncode == 0, listed.stderr
    assert str(tmp_path / "hpts.db") in listed.stdout and "s3" in listed.stdout

    # Without a bucket Litestream must refuse to start rather than replicate nowhere.
    env.pop("LITESTREAM_BUCKET")
    refused = subprocess.run(
        [litestream_bin, "databases", "-config", str(LITESTREAM_YML)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert refused.returncode != 0 and "bucket" in refused.stderr


def test_start_script_refuses_to_run_without_a_replica_bucket(hpts_bin, litestream_bin, tmp_path):
    result = subprocess.run(
        [str(START_SH), "--dev"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env(HPTS_BIN=hpts_bin, LITESTREAM_BIN=litestream_bin, HPTS_DATA_DIR=str(tmp_path / "data")),
    )
    assert result.returncode != 0
    assert "LITESTREAM_BUCKET" in result.stderr
    assert not (tmp_path / "data" / "hpts.db").exists(), "nothing may start without replication"
