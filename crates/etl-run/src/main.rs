//! The `etl-run` binary: everything lives in the library (see lib.rs).
fn main() {
    std::process::exit(etl_core::cli::main_status(
        "etl-run",
        std::env::args_os().collect(),
        etl_run::run,
    ));
}
