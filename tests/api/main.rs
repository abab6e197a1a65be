//! Black-box API tests: the real application wiring (`Application::build`) on a temp-file
//! database, real HTTP on a free port, real Ed25519-signed JWTs. One test binary, one module
//! per area; shared set-up in `helpers`.

#[path = "../support/accounting_tools.rs"]
mod accounting_tools;
mod helpers;

mod accruals;
mod auth;
mod disbursements;
mod durability;
mod edge_rules;
mod edges;
mod exports;
mod fees;
mod idempotency;
mod lifecycle;
mod money_integrity;
mod month_end;
mod openapi;
mod payments;
mod reads;
mod reversals;
mod validation;
