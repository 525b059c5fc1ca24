//! Project chores, run as `cargo xtask <task>` (cargo's xtask pattern).
//!
//! - `man`: renders `man/man1/<command>.1` (and one page per subcommand)
//!   from each command's clap definition, and `man/man7/etl.7`, the contract
//!   overview. The pages are committed; `scripts/test` re-renders them and
//!   fails when they drift from the code (cargo's `xtask-build-man` habit).
//! - `completions DIR`: bash, zsh and fish completions for every command.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

mod etl7;

/// Every command whose documentation is generated. Each command's issue adds its line.
fn commands() -> Vec<clap::Command> {
    vec![
        etl_checkpoint::command(),
        etl_parse::command(),
        etl_transform::command(),
        etl_merge::command(),
        etl_sheets_emulator::command(),
        etl_push_sheets::command(),
        etl_fetch_mail::command(),
        etl_run::command(),
    ]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let result = match args.first().map(String::as_str) {
        Some("man") => man(&root),
        Some("completions") => match args.get(1) {
            Some(dir) => completions(Path::new(dir)),
            None => Err("usage: cargo xtask completions DIR".into()),
        },
        _ => Err("usage: cargo xtask man | cargo xtask completions DIR".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn man(root: &Path) -> Result {
    let man1 = root.join("man/man1");
    let man7 = root.join("man/man7");
    fs::create_dir_all(&man1)?;
    fs::create_dir_all(&man7)?;
    // Remove stale pages (a renamed subcommand must not leave its old page).
    for e in fs::read_dir(&man1)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "1") {
            fs::remove_file(p)?;
        }
    }
    let mut written = Vec::new();
    for cmd in commands() {
        let mut cmd = cmd;
        cmd.build();
        render_tree(&cmd, None, &man1, &mut written)?;
    }
    let page = etl7::render(&commands());
    fs::write(man7.join("etl.7"), page)?;
    written.push(man7.join("etl.7"));
    for p in &written {
        println!("{}", p.strip_prefix(root).unwrap_or(p).display());
    }
    Ok(())
}

fn render_tree(
    cmd: &clap::Command,
    parent: Option<&str>,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let path = dir.join(format!("{name}.1"));
    // The same renderer as every command's `--generate man`.
    fs::write(&path, etl_core::docs::man_page(cmd, parent))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_tree(sub, Some(&name), dir, written)?;
    }
    Ok(())
}

pub(crate) use etl_core::docs::escape;

fn completions(dir: &Path) -> Result {
    fs::create_dir_all(dir)?;
    for mut cmd in commands() {
        let name = cmd.get_name().to_owned();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let path = clap_complete::generate_to(shell, &mut cmd, &name, dir)?;
            println!("{}", path.display());
        }
    }
    Ok(())
}
