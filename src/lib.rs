//! HPTS lending ledger: a self-hosted, single-binary HTTP ledger for loans on `SQLite`.
//!
//! Dependencies point inward: [`http`] uses [`ledger`], [`store`] and [`auth`]; [`store`] uses
//! [`ledger`]; [`ledger`] uses nothing with I/O. Only [`store`] names rusqlite and only [`http`]
//! (plus the wiring in [`app`]) names actix.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod ledger;
pub mod report;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod webhooks;
