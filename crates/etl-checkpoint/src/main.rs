//! The `etl-checkpoint` binary: everything lives in the library (see lib.rs).
fn main() {
    etl_core::main("etl-checkpoint", etl_checkpoint::run);
}
