//! The harness every test binary shares (`mod common;`; `tests/api` names it with `#[path]`):
//!
//! - `tokens`: issuer, audience, key id, scopes, ids, claims, JWKS files, signed tokens;
//! - `inprocess`: the production wiring started in the test's runtime (`spawn_app`), a caller
//!   per tenant with one method per endpoint, answers and assertions;
//! - `server`: the real `hpts` executable (commands, `serve` flags, a running `Server`, a
//!   `Site` shared by successive processes);
//! - `http`: a blocking client, JSON requests and raw HTTP/1.1 over a socket;
//! - `db`: the database file read directly;
//! - `metrics`: `/metrics` series;
//! - `bulk`, `store_history`, `accounting_tools`: the set-up of the fairness tests, the
//!   store-level property tests and the export checks against hledger and Beancount.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the shared harness"
)]

pub mod accounting_tools;
pub mod bulk;
pub mod db;
pub mod http;
pub mod inprocess;
pub mod metrics;
pub mod server;
pub mod store_history;
pub mod tokens;
