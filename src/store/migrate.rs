//! Schema migrations (refinery, `migrations/V{n}__{name}.sql`, append-only). They run on the
//! writer connection at start, before the writer thread accepts jobs.

use rusqlite::Connection;

use crate::store::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies every pending migration; returns how many ran.
pub fn run(conn: &mut Connection) -> Result<usize, StoreError> {
    let report = embedded::migrations::runner()
        .run(conn)
        .map_err(|e| StoreError::failed("migration failed", e))?;
    Ok(report.applied_migrations().len())
}
