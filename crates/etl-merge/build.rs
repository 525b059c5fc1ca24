//! Link flags for the etl-merge binary. It carries DuckDB (60 MB of C++);
//! as a position-independent executable its start-up is mostly the dynamic
//! loader applying ~60,000 relative relocations and the copy-on-write page
//! faults they cause (`--version` in 2.2 ms, against 1.2 ms for the other
//! commands). Linked at a fixed address (-no-pie) there are none: 1.8 ms.
//! The cost is address-space randomisation of etl-merge's own code;
//! `ETL_MERGE_PIE=1` at build time keeps a PIE for packagers who require it.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ETL_MERGE_PIE");
    let pie = std::env::var("ETL_MERGE_PIE").is_ok_and(|v| v == "1");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
