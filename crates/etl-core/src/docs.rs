//! A command's man page and shell completions, from its clap definition.
//!
//! One renderer for both ways they are made: `cargo xtask man` writes the
//! committed pages of `man/` with it, and every command prints its own
//! (`etl-parse --generate man`, `--generate complete-bash|zsh|fish`), so
//! packagers and users get them without building xtask, as ripgrep does.
//! The drift check of `scripts/test` therefore also holds what the
//! binaries print to the committed pages.

use std::fmt::Write as _;

/// `--generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    /// The man page (roff), e.g. `etl-parse --generate man > etl-parse.1`.
    Man,
    /// bash completions.
    CompleteBash,
    /// zsh completions.
    CompleteZsh,
    /// fish completions.
    CompleteFish,
}

impl Generate {
    /// Reads `--generate KIND` / `--generate=KIND` from raw arguments, before
    /// clap checks the command's required flags (a man page needs none).
    pub fn from_args(args: &[std::ffi::OsString]) -> Option<Option<Self>> {
        use clap::ValueEnum;
        let mut it = args.iter().skip(1).filter_map(|a| a.to_str());
        while let Some(a) = it.next() {
            if a == "--" {
                return None;
            }
            let value = if a == "--generate" {
                it.next()
            } else if let Some(v) = a.strip_prefix("--generate=") {
                Some(v)
            } else {
                continue;
            };
            return Some(value.and_then(|v| Self::from_str(v, false).ok()));
        }
        None
    }

    /// What `--generate KIND` prints for `cmd`.
    pub fn render(self, cmd: &clap::Command) -> Vec<u8> {
        use clap_complete::Shell;
        let shell = match self {
            Generate::Man => return man_page(cmd, None),
            Generate::CompleteBash => Shell::Bash,
            Generate::CompleteZsh => Shell::Zsh,
            Generate::CompleteFish => Shell::Fish,
        };
        let mut cmd = cmd.clone();
        let name = cmd.get_name().to_owned();
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut out);
        out
    }
}

/// The man page of `cmd` (a subcommand names its `parent` in SEE ALSO).
pub fn man_page(cmd: &clap::Command, parent: Option<&str>) -> Vec<u8> {
    let mut cmd = cmd.clone();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("etlkit manual")
        .source(format!(
            "etlkit {}",
            cmd.get_version().unwrap_or(env!("CARGO_PKG_VERSION"))
        ));
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    if cmd.has_subcommands() {
        let _ = man.render_subcommands_section(&mut out);
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
    out
}

/// Turns help text ("Heading:" lines followed by indented lines) into roff
/// sections whose bodies are not refilled (examples keep their layout).
pub fn sections(text: &str) -> String {
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
pub fn escape(line: &str) -> String {
    let s = line.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
        args.iter().map(Into::into).collect()
    }

    #[test]
    fn generate_is_found_before_clap_parses() {
        assert_eq!(
            Generate::from_args(&os(&["x", "--generate", "man"])),
            Some(Some(Generate::Man))
        );
        assert_eq!(
            Generate::from_args(&os(&["x", "sub", "--generate=complete-zsh"])),
            Some(Some(Generate::CompleteZsh))
        );
        assert_eq!(
            Generate::from_args(&os(&["x", "--generate", "pdf"])),
            Some(None)
        );
        assert_eq!(
            Generate::from_args(&os(&["x", "--", "--generate", "man"])),
            None
        );
        assert_eq!(Generate::from_args(&os(&["x", "a.csv"])), None);
    }
}
