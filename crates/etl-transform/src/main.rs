//! The `etl-transform` binary: everything lives in the library (see lib.rs).
fn main() {
    etl_core::main("etl-transform", etl_transform::run);
}
