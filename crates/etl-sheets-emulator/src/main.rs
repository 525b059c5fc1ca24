//! The `etl-sheets-emulator` binary: everything lives in the library (see lib.rs).
fn main() {
    etl_core::main("etl-sheets-emulator", etl_sheets_emulator::run);
}
