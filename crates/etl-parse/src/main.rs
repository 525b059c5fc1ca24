//! The `etl-parse` binary: everything lives in the library (see lib.rs).
fn main() {
    etl_core::main("etl-parse", etl_parse::run);
}
