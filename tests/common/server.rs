//! The real `hpts` executable: a `Command` that inherits no `HPTS_*` variable, the `serve`
//! flags of a test instance, a running server (ready-checked, stopped with SIGTERM or SIGKILL,
//! killed when dropped) and a `Site` (a directory with a database and a trusted key) that
//! successive server processes share.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use hpts::auth::dev::generate_signing_key;
use tempfile::TempDir;
use uuid::Uuid;

use super::http::blocking_client;
use super::tokens::{AUDIENCE, ISSUER, KID, token, write_jwks};

/// The compiled `hpts` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_hpts");

/// Removes every `HPTS_*` variable of the test environment from what `cmd` inherits.
pub fn without_hpts_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HPTS_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// `hpts` with no `HPTS_*` variable inherited from the test environment and no stdin.
pub fn hpts_command() -> Command {
    let mut cmd = Command::new(BIN);
    without_hpts_env(&mut cmd).stdin(Stdio::null());
    cmd
}

/// `hpts <args>` run to completion (no `HPTS_*` variable inherited), with its output.
pub fn run_hpts(args: &[&str]) -> Output {
    hpts_command().args(args).output().expect("run hpts")
}

/// `hpts <args>` with `env` as its only `HPTS_*` variables, waited for at most a minute (its
/// output must fit the pipes).
pub fn run_hpts_bounded(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = hpts_command()
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hpts");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_mins(1) {
            let _ = child.kill();
            panic!("hpts {args:?} did not exit within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Auth flags naming the test issuer and a JWKS file that need not exist (enough for
/// `check-config`, or for a `serve` that must fail before it reads the keys).
pub const AUTH_FLAGS: &[&str] = &[
    "--auth-issuer",
    ISSUER,
    "--auth-audience",
    AUDIENCE,
    "--auth-jwks",
    "/nonexistent/jwks.json",
];

/// `hpts check-config` with [`AUTH_FLAGS`], then `flags`, with `env` as its only `HPTS_*`
/// variables.
pub fn check_config(flags: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["check-config"];
    args.extend_from_slice(AUTH_FLAGS);
    args.extend_from_slice(flags);
    run_hpts_bounded(&args, env)
}

/// Stdout then stderr of a finished command, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `hpts verify --database <db>` (read-only, beside a running service or not).
pub fn run_verify(db: &Path) -> Output {
    hpts_command()
        .args(["verify", "--database"])
        .arg(db)
        .output()
        .expect("run hpts verify")
}

/// `hpts verify --database <db>` exits 0.
pub fn assert_verify_passes(db: &Path, step: &str) {
    let out = run_verify(db);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{step}: hpts verify failed:\n{}",
        output_text(&out)
    );
}

/// Finds a free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `serve` arguments (after the program name) of a test instance on `listen`, logging at `log`
/// (flags only, so the environment cannot interfere).
pub fn serve_flags(listen: &str, db: &Path, jwks: &Path, log: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        listen,
        "--database",
        &db.display().to_string(),
        "--auth-issuer",
        ISSUER,
        "--auth-audience",
        AUDIENCE,
        "--auth-jwks",
        &jwks.display().to_string(),
        "--workers",
        "2",
        "--log",
        log,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// The log filter of a test instance: `$TEST_LOG`, else off.
pub fn test_log() -> String {
    std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into())
}

/// A running `hpts serve`, killed with SIGKILL when dropped so a failing test leaves nothing
/// behind.
pub struct Server {
    pub child: Child,
    pub address: String,
    log: Option<PathBuf>,
}

impl Server {
    /// Starts the binary on `db` on a free port and waits (bounded) until `/v1/health/ready`
    /// answers 200. With `log`, its stderr goes there at `--log warn`; otherwise it is dropped.
    pub fn start(db: &Path, jwks: &Path, log: Option<&Path>) -> Server {
        Server::start_with(db, jwks, log, &[])
    }

    /// [`Server::start`] with extra `serve` flags.
    pub fn start_with(db: &Path, jwks: &Path, log: Option<&Path>, extra: &[&str]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let (level, stderr) = match log {
            Some(path) => (
                "warn".to_owned(),
                File::create(path).expect("log file").into(),
            ),
            None => (test_log(), Stdio::null()),
        };
        let child = hpts_command()
            .args(serve_flags(&listen, db, jwks, &level, extra))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn hpts");
        let mut server = Server {
            child,
            address: format!("http://{listen}"),
            log: log.map(Path::to_path_buf),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let probe = blocking_client(Duration::from_secs(2));
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("hpts exited during start ({status}): {}", self.log_text());
            }
            if probe
                .get(self.url("/v1/health/ready"))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200)
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "hpts did not become ready within 30 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// What the server logged (empty without a log file).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// SIGTERM, then waits (bounded) for a graceful exit with status 0.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "hpts did not stop within 30 s of SIGTERM: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "graceful stop exits 0, got {status}: {}",
            self.log_text()
        );
    }

    /// SIGKILL (no graceful shutdown, nothing flushed), then reap.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database directory with a trusted key, shared by successive server processes.
pub struct Site {
    pub dir: TempDir,
    pub db: PathBuf,
    pub jwks: PathBuf,
    pub signing: SigningKey,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("ledger.db");
        let jwks = dir.path().join("jwks.json");
        let signing = generate_signing_key().expect("key");
        write_jwks(&jwks, &[(KID, &signing)]);
        Site {
            dir,
            db,
            jwks,
            signing,
        }
    }

    /// A file beside the database.
    pub fn path(&self, name: &str) -> PathBuf {
        self.db.with_file_name(name)
    }

    /// `hpts serve` on the site's database (its log discarded).
    pub fn start(&self) -> Server {
        Server::start(&self.db, &self.jwks, None)
    }

    /// A token for `tenant` with every scope, signed by the site's trusted key.
    pub fn token(&self, tenant: Uuid) -> String {
        token(&self.signing, tenant)
    }
}
