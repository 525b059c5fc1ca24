//! The `etl-sheets-emulator` binary: everything lives in the library (see lib.rs).

/// mimalloc: a spreadsheet of millions of cells is millions of small
/// allocations, made and freed a request at a time, where glibc's malloc
/// spent half the emulator's time (consolidating and unlinking free chunks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    etl_core::main("etl-sheets-emulator", etl_sheets_emulator::run);
}
