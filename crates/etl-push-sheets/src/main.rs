//! The `etl-push-sheets` binary: everything lives in the library (see lib.rs).
fn main() {
    etl_core::main("etl-push-sheets", etl_push_sheets::run);
}
