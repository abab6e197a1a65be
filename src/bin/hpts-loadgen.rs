//! Load generator (placeholder; see issue 7).
fn main() {}
