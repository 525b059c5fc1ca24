//! The `etl-fetch-mail` binary: everything lives in the library (see lib.rs).
fn main() {
    etl_core::main("etl-fetch-mail", etl_fetch_mail::run);
}
