//! The README works as written: the curl example between `<!-- curl-example:begin -->` and
//! `<!-- curl-example:end -->` is extracted, pointed at the built binary instead of
//! `cargo run`, and run with bash against `hpts serve --dev` started in an empty directory on
//! 127.0.0.1:8080 (the README's address). Also: without `--dev` and without auth settings the
//! service refuses to start and names the missing variable; `check-config` never prints secrets.

mod common;

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::server::{BIN, without_hpts_env};

const README_LOAN: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a51";
const README_BORROWER: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a52";

/// The shell code of the README's curl example, with `cargo run` replaced by the built binary.
fn curl_example() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let (begin, end) = ("<!-- curl-example:begin -->", "<!-- curl-example:end -->");
    let start = readme
        .find(begin)
        .expect("README has <!-- curl-example:begin -->")
        + begin.len();
    let stop = start
        + readme[start..]
            .find(end)
            .expect("README has <!-- curl-example:end -->");
    let section = &readme[start..stop];
    let fence = section
        .find("```sh\n")
        .expect("the curl example is in a ```sh fence")
        + "```sh\n".len();
    let code = &section[fence..fence + section[fence..].find("```").expect("closing fence")];
    let binary = format!("'{BIN}'");
    let script = code
        .replace("cargo run --release -q --", &binary)
        .replace("cargo run --release --", &binary);
    assert!(
        !script.contains("cargo "),
        "every cargo invocation is replaced:\n{script}"
    );
    assert!(
        script.contains(&binary),
        "the example runs the binary:\n{script}"
    );
    script
}

/// `Command` for the binary with no `HPTS_*` variable inherited from the test environment.
fn hpts(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    without_hpts_env(&mut cmd).current_dir(dir);
    cmd
}

/// Exit status, stdout and stderr of a command that must finish within `limit`.
fn run(mut cmd: Command, logs: &Path, limit: Duration) -> (ExitStatus, String, String) {
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let mut child = cmd.spawn().expect("spawn");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {limit:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).expect("output");
    (status, read(&out_path), read(&err_path))
}

/// The `hpts serve --dev` process; killed when dropped, even when the test fails.
struct ServerGuard {
    child: Child,
    log: std::path::PathBuf,
}

impl ServerGuard {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_port_8080_is_free() {
    let busy = "port 8080 on 127.0.0.1 is in use; the README quickstart serves there, so this test needs it free. \
                Stop whatever listens on 8080 and run the test again";
    assert!(
        TcpStream::connect_timeout(
            &"127.0.0.1:8080".parse().expect("addr"),
            Duration::from_millis(300)
        )
        .is_err(),
        "{busy}"
    );
    drop(TcpListener::bind("127.0.0.1:8080").unwrap_or_else(|e| panic!("{busy} ({e})")));
}

/// Starts `hpts serve --dev` in `dir` and waits until it is ready on 8080.
fn serve_dev(dir: &Path, logs: &Path) -> ServerGuard {
    assert_port_8080_is_free();
    let log = logs.join("server.log");
    let out = File::create(&log).expect("log");
    let mut cmd = hpts(dir);
    cmd.args(["serve", "--dev"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out);
    let child = cmd.spawn().expect("spawn hpts serve --dev");
    let mut server = ServerGuard { child, log };
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            panic!(
                "hpts serve --dev exited ({status}) before becoming ready:\n{}",
                server.log()
            );
        }
        if client
            .get("http://127.0.0.1:8080/v1/health/ready")
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)
        {
            return server;
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "hpts serve --dev not ready after 60 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every JSON value printed one after another (curl prints the bodies without separators).
fn json_values(stdout: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("curl output is not a sequence of JSON bodies ({e}):\n{stdout}"))
}

fn run_example(script: &str, dir: &Path, logs: &Path, server: &ServerGuard) -> Vec<Value> {
    let mut bash = Command::new("bash");
    without_hpts_env(&mut bash)
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir);
    let (status, stdout, stderr) = run(bash, logs, Duration::from_mins(1));
    assert!(
        status.success(),
        "the README example failed ({status}):\n{stderr}\nserver log:\n{}",
        server.log()
    );
    json_values(&stdout)
}

#[test]
fn the_readme_curl_example_works_against_serve_dev() {
    let script = curl_example();
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let server = serve_dev(dir.path(), logs.path());

    let outputs = run_example(&script, dir.path(), logs.path(), &server);

    assert_eq!(outputs.len(), 2, "one body per curl: {outputs:?}");
    let receipt = &outputs[0];
    let mut fields: Vec<&str> = receipt
        .as_object()
        .expect("receipt object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["disbursement_event_id", "journal_entry_id", "posted_at"],
        "{receipt}"
    );
    assert!(
        receipt["posted_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{receipt}"
    );
    let balance = &outputs[1];
    assert_eq!(balance["loan_id"], README_LOAN, "{balance}");
    assert_eq!(balance["borrower_id"], README_BORROWER, "{balance}");
    assert_eq!(balance["currency"], "USD", "{balance}");
    assert_eq!(
        balance["principal_outstanding_minor"], "250000",
        "{balance}"
    );

    let data = dir.path().join("data");
    for file in ["hpts.db", "dev-signing-key.pem", "dev-jwks.json"] {
        assert!(data.join(file).is_file(), "./data/{file} was not created");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("dev-signing-key.pem"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the dev signing key is private to its owner: {mode:o}"
        );
    }

    // Running the example again replays the disbursement instead of posting it twice.
    let again = run_example(&script, dir.path(), logs.path(), &server);
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(
        &again[0], receipt,
        "the same Idempotency-Key replays the same receipt"
    );
    assert_eq!(again[1]["principal_outstanding_minor"], "250000");
}

#[test]
fn serve_without_dev_or_auth_settings_refuses_to_start_and_names_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    // A free port, so a wrongly starting server could not collide with anything.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    cmd.env("HPTS_LISTEN", format!("127.0.0.1:{port}"));

    let (status, _, stderr) = run(cmd, logs.path(), Duration::from_secs(20));

    assert!(
        !status.success(),
        "serve must not start without auth settings"
    );
    assert!(
        stderr.contains("HPTS_AUTH_ISSUER"),
        "stderr names the missing variable:\n{stderr}"
    );
}

#[test]
fn check_config_dev_prints_the_effective_configuration_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let mut cmd = hpts(dir.path());
    cmd.args(["check-config", "--dev"]);

    let (status, stdout, stderr) = run(cmd, logs.path(), Duration::from_secs(20));

    assert!(status.success(), "{stderr}");
    let config: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"));
    assert_eq!(config["dev"], true, "{config}");
    assert_eq!(config["listen"], "127.0.0.1:8080", "{config}");
    assert_eq!(config["auth"]["issuer"], "hpts-dev", "{config}");
    assert_eq!(config["auth"]["audience"], "hpts", "{config}");
    assert!(
        !dir.path().join("data").join("hpts.db").exists(),
        "check-config opens no database"
    );
}

/// (what, extra `check-config` arguments, extra environment variables).
type SecretCase<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);

#[test]
fn check_config_never_prints_the_webhook_secret() {
    let secret = "s3cr3t-value-that-must-never-print-7d1f";
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let url = ("HPTS_WEBHOOK_URL", "https://hooks.example.test/hpts");
    let cases: [SecretCase<'_>; 3] = [
        (
            "secret in the environment",
            vec![],
            vec![("HPTS_WEBHOOK_SECRET", secret)],
        ),
        (
            "secret and URL in the environment",
            vec![],
            vec![("HPTS_WEBHOOK_SECRET", secret), url],
        ),
        ("secret as a flag", vec!["--webhook-secret", secret], vec![]),
    ];
    for (what, args, envs) in cases {
        let mut cmd = hpts(dir.path());
        cmd.args(["check-config", "--dev"]).args(&args).envs(envs);

        let (status, stdout, stderr) = run(cmd, logs.path(), Duration::from_secs(20));

        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{what}: the secret was printed:\n{stdout}\n{stderr}"
        );
        if status.success() {
            let config: Result<Value, _> = serde_json::from_str(&stdout);
            assert!(config.is_ok(), "{what}: not JSON:\n{stdout}");
        } else {
            assert!(
                stderr.contains("HPTS_WEBHOOK"),
                "{what}: the error names the variable:\n{stderr}"
            );
        }
    }
}

#[test]
fn help_output_never_prints_the_secret() {
    let secret = "s3cr3t-value-that-must-never-print-c0de";
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    for sub in ["serve", "check-config"] {
        let mut help = hpts(dir.path());
        help.args([sub, "--help"])
            .env("HPTS_WEBHOOK_SECRET", secret);
        let (status, stdout, stderr) = run(help, logs.path(), Duration::from_secs(20));
        assert!(status.success(), "{stderr}");
        assert!(
            stdout.contains("HPTS_WEBHOOK_SECRET"),
            "help documents the variable:\n{stdout}"
        );
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{sub} --help printed the secret:\n{stdout}"
        );
    }
}

#[test]
fn check_config_shows_replicated_durability_with_the_socket_beside_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger").join("hpts.db");
    let mut cmd = hpts(dir.path());
    cmd.args(["check-config", "--dev"])
        .env("HPTS_DURABILITY", "replicated")
        .env("HPTS_DATABASE", &db)
        .env("HPTS_REPLICATION_TIMEOUT_MS", "2500");

    let (status, stdout, stderr) = run(cmd, logs.path(), Duration::from_secs(20));

    assert!(status.success(), "{stderr}");
    let config: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"));
    assert_eq!(config["durability"], "replicated", "{config}");
    assert_eq!(
        config["replication"]["litestream_socket"],
        db.with_file_name("litestream.sock").display().to_string(),
        "{config}"
    );
    assert_eq!(config["replication"]["timeout_ms"], 2500, "{config}");
}

#[test]
fn check_config_refuses_each_bad_replication_setting_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let long = format!("/{}/litestream.sock", "s".repeat(120));
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("HPTS_DURABILITY", vec![("HPTS_DURABILITY", "eventual")]),
        (
            "HPTS_LITESTREAM_SOCKET",
            vec![
                ("HPTS_DURABILITY", "replicated"),
                ("HPTS_LITESTREAM_SOCKET", "relative/litestream.sock"),
            ],
        ),
        (
            "HPTS_LITESTREAM_SOCKET",
            vec![
                ("HPTS_DURABILITY", "replicated"),
                ("HPTS_LITESTREAM_SOCKET", long.as_str()),
            ],
        ),
        (
            "HPTS_REPLICATION_TIMEOUT_MS",
            vec![
                ("HPTS_DURABILITY", "replicated"),
                ("HPTS_REPLICATION_TIMEOUT_MS", "5"),
            ],
        ),
    ];
    for (name, envs) in cases {
        let mut cmd = hpts(dir.path());
        cmd.args(["check-config", "--dev"]).envs(envs.clone());

        let (status, _, stderr) = run(cmd, logs.path(), Duration::from_secs(20));

        assert_eq!(status.code(), Some(2), "{envs:?}: {stderr}");
        assert!(
            stderr.contains(name),
            "{envs:?}: the error names {name}:\n{stderr}"
        );
    }
}
