//! Project chores, run as `cargo xtask <task>` (cargo's xtask pattern).
//!
//! - `man`: renders `man/man1/<command>.1` (and one page per subcommand)
//!   from each command's clap definition, and `man/man7/etl.7`, the contract
//!   overview. The pages are committed; `scripts/test` re-renders them and
//!   fails when they drift from the code (cargo's `xtask-build-man` habit).
//! - `completions DIR`: bash, zsh and fish completions for every command.

use std::fmt::Write as _;
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
    fs::write(&path, render_page(cmd, parent)?)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_tree(sub, Some(&name), dir, written)?;
    }
    Ok(())
}

fn render_page(cmd: &clap::Command, parent: Option<&str>) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("etlkit manual")
        .source(format!(
            "etlkit {}",
            cmd.get_version().unwrap_or(env!("CARGO_PKG_VERSION"))
        ));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    if let Some(text) = cmd.get_after_long_help() {
        out.extend_from_slice(sections(&text.to_string()).as_bytes());
    }
    let mut see_also = String::from(".SH \"SEE ALSO\"\n");
    if let Some(parent) = parent {
        let _ = write!(see_also, "{parent}(1), ");
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let _ = write!(
            see_also,
            "{}(1), ",
            sub.get_display_name().unwrap_or_else(|| sub.get_name())
        );
    }
    see_also.push_str("etl(7)\n");
    out.extend_from_slice(see_also.as_bytes());
    Ok(out)
}

/// Turns help text ("Heading:" lines followed by indented lines) into roff
/// sections whose bodies are not refilled (examples keep their layout).
pub(crate) fn sections(text: &str) -> String {
    let mut out = String::new();
    let mut open = false;
    for line in text.lines() {
        let heading = !line.starts_with(' ') && line.ends_with(':') && !line.is_empty();
        if heading {
            if open {
                out.push_str(".fi\n");
            }
            let _ = writeln!(
                out,
                ".SH \"{}\"\n.nf",
                line.trim_end_matches(':').to_uppercase()
            );
            open = true;
        } else {
            if !open {
                out.push_str(".SH NOTES\n.nf\n");
                open = true;
            }
            let _ = writeln!(out, "{}", escape(line));
        }
    }
    if open {
        out.push_str(".fi\n");
    }
    out
}

/// Escapes a text line for roff.
pub(crate) fn escape(line: &str) -> String {
    let s = line.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

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
