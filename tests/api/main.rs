//! Black-box API tests: the real application wiring (`Application::build`) on a temp-file
//! database, real HTTP on a free port, real Ed25519-signed JWTs. One test binary, one module
//! per area; shared set-up in `tests/common` (the in-process harness is `helpers` here).

#[path = "../common/mod.rs"]
mod common;
use common::accounting_tools;

/// The shared in-process harness and test identities, under the name the API tests use.
mod helpers {
    pub use crate::common::inprocess::*;
    pub use crate::common::tokens::*;
}

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
