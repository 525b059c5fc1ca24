//! The `etl-merge` binary: everything lives in the library (see lib.rs).
fn main() {
    etl_core::main("etl-merge", etl_merge::run);
}
