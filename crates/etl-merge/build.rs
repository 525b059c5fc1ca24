//! Link flags for the etl-merge binary. It carries DuckDB (60 MB of C++);
//! as a position-independent executable its start-up is mostly the dynamic
//! loader applying ~60,000 relative relocations and the copy-on-write page
//! faults they cause (`--version` in 2.2 ms, against 1.2 ms for the other
//! commands). Linked at a fixed address (-no-pie) there are none: 1.8 ms.
//! The cost is address-space randomisation of etl-merge's own code;
//! `ETL_MERGE_PIE=1` at build time keeps a PIE for packagers who require it.
//!
//! What remained was the loader's work for the C++ runtime: loading
//! libstdc++.so and binding ~2,200 symbols to it (`LD_DEBUG=statistics`:
//! 79% of the loader's time in relocation). With -no-pie, libstdc++ is
//! linked statically instead (allowed by GCC's runtime library exception):
//! a directory holding only `libstdc++.a`, searched before the compiler's
//! own, makes the `-lstdc++` DuckDB's build asks for resolve to the archive.
//! `ETL_MERGE_DYNAMIC_CXX=1` at build time keeps the shared library.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ETL_MERGE_PIE");
    println!("cargo:rerun-if-env-changed=ETL_MERGE_DYNAMIC_CXX");
    let on = |var: &str| std::env::var(var).is_ok_and(|v| v == "1");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") || on("ETL_MERGE_PIE") {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");
    if on("ETL_MERGE_DYNAMIC_CXX") || std::env::var_os("CARGO_FEATURE_ENGINE").is_none() {
        return;
    }
    // The archive the C++ compiler itself would link (`c++
    // -print-file-name` prints the bare name when it has none: then the
    // shared library stays).
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let Ok(out) = Command::new(&cxx)
        .arg("-print-file-name=libstdc++.a")
        .output()
    else {
        return;
    };
    let archive = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !archive.is_absolute() || !archive.is_file() {
        println!("cargo:warning=no libstdc++.a beside {cxx}: etl-merge links libstdc++.so");
        return;
    }
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("cxx");
    let link = dir.join("libstdc++.a");
    let _ = std::fs::remove_file(&link);
    std::fs::create_dir_all(&dir).expect("creating OUT_DIR/cxx");
    std::os::unix::fs::symlink(&archive, &link).expect("linking libstdc++.a into OUT_DIR/cxx");
    println!("cargo:rerun-if-changed={}", archive.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
}
