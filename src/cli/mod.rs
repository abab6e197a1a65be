//! Subcommands of the `hpts` binary that are more than a call into the library, one module each
//! (`main.rs` parses and dispatches).

pub mod export;
