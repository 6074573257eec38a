//! Man pages (section 8) and shell completions of the workspace's three
//! commands, made from their clap definitions so that they cannot drift from
//! what the binaries accept. `scripts/build-deb.sh` runs the binary of this
//! crate; the tests below hold the pages to the definitions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// The commands, by the name of their binary: (name, clap command).
pub fn commands() -> Vec<clap::Command> {
    vec![
        rs_agent::cli::command(),
        ipvsctl::command(),
        lvs_director::cli::command(),
    ]
}

/// Every page of `cmd`: the command's own and one per visible subcommand,
/// recursively, named as man(1) looks them up (`rs-agent-start.8`).
/// Returns (file name, roff text).
pub fn man_pages(cmd: clap::Command, date: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
    // Built once at the top so subcommands carry their display name
    // ("rs-agent-start") and inherit the global options.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, date, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: &clap::Command, date: &str, pages: &mut Vec<(String, Vec<u8>)>) -> io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .date(date);
    let mut text = Vec::new();
    man.render(&mut text)?;
    pages.push((man.get_filename(), text));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, date, pages)?;
    }
    Ok(())
}

/// Where each shell's completion for `name` goes, relative to /usr/share, as
/// Debian's bash-completion, zsh and fish packages look them up.
pub fn completion_path(shell: Shell, name: &str) -> PathBuf {
    match shell {
        Shell::Bash => PathBuf::from(format!("bash-completion/completions/{name}")),
        Shell::Zsh => PathBuf::from(format!("zsh/vendor-completions/_{name}")),
        Shell::Fish => PathBuf::from(format!("fish/vendor_completions.d/{name}.fish")),
        other => PathBuf::from(format!("{other}/{name}")),
    }
}

/// The shells the packages ship completions for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Writes `OUT/man/man8/*.8` and `OUT/<completion_path>` for every command;
/// returns the files written.
pub fn write_all(out: &Path, date: &str) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man_dir = out.join("man/man8");
    fs::create_dir_all(&man_dir)?;
    for cmd in commands() {
        let name = cmd.get_name().to_string();
        for (file, text) in man_pages(cmd.clone(), date)? {
            let path = man_dir.join(file);
            fs::write(&path, text)?;
            written.push(path);
        }
        for shell in SHELLS {
            let path = out.join(completion_path(shell, &name));
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut text);
            fs::write(&path, text)?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_names(cmd: clap::Command) -> Vec<String> {
        man_pages(cmd, "2026-01-01")
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    /// Every subcommand (and the command itself) has a page of its own.
    #[test]
    fn every_subcommand_gets_a_page() {
        for cmd in commands() {
            let name = cmd.get_name().to_string();
            let names = page_names(cmd.clone());
            assert!(names.contains(&format!("{name}.8")), "{names:?}");
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let want = format!("{name}-{}.8", sub.get_name());
                assert!(names.contains(&want), "{want} missing from {names:?}");
            }
            assert_eq!(names.len(), 1 + cmd.get_subcommands().count(), "{names:?}");
        }
    }

    #[test]
    fn the_pages_cover_what_the_readme_documents() {
        let names: Vec<String> = commands().into_iter().flat_map(page_names).collect();
        for want in [
            "rs-agent.8",
            "rs-agent-start.8",
            "rs-agent-stop.8",
            "rs-agent-status.8",
            "rs-agent-check.8",
            "rs-agent-watch.8",
            "rs-agent-drain.8",
            "rs-agent-undrain.8",
            "ipvsctl.8",
            "ipvsctl-list.8",
            "ipvsctl-save.8",
            "ipvsctl-restore.8",
            "lvs-director.8",
            "lvs-director-apply.8",
            "lvs-director-run.8",
            "lvs-director-drain.8",
            "lvs-director-undrain.8",
            "lvs-director-status.8",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
    }

    /// Each page lists every long option its command accepts (global ones
    /// included), in roff's escaped form (`\-\-dry\-run`).
    #[test]
    fn every_option_is_on_its_page() {
        for cmd in commands() {
            let mut built = cmd.clone().disable_help_subcommand(true);
            built.build();
            let pages = man_pages(cmd, "2026-01-01").unwrap();
            let mut subs: Vec<&clap::Command> = vec![&built];
            subs.extend(built.get_subcommands());
            for sub in subs {
                let file = format!(
                    "{}.8",
                    sub.get_display_name().unwrap_or_else(|| sub.get_name())
                );
                let (_, text) = pages.iter().find(|(n, _)| *n == file).unwrap();
                let text = String::from_utf8_lossy(text);
                for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                    if let Some(long) = arg.get_long() {
                        let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                        assert!(text.contains(&roff), "{file} lacks --{long}");
                    }
                }
            }
        }
    }

    #[test]
    fn pages_are_section_8_with_the_given_date() {
        let pages = man_pages(rs_agent::cli::command(), "2026-01-01").unwrap();
        let text = String::from_utf8_lossy(&pages[0].1);
        assert!(
            text.contains(".TH rs-agent 8 2026-01-01"),
            "{}",
            text.lines().next().unwrap_or("")
        );
    }

    #[test]
    fn write_all_writes_pages_and_completions() {
        let dir = std::env::temp_dir().join(format!("gen-docs-test-{}", std::process::id()));
        let files = write_all(&dir, "2026-01-01").unwrap();
        for want in [
            "man/man8/ipvsctl-restore.8",
            "bash-completion/completions/rs-agent",
            "zsh/vendor-completions/_lvs-director",
            "fish/vendor_completions.d/ipvsctl.fish",
        ] {
            let path = dir.join(want);
            assert!(files.contains(&path), "{want} not written");
            assert!(fs::metadata(&path).unwrap().len() > 100, "{want} empty");
        }
        let bash = fs::read_to_string(dir.join("bash-completion/completions/rs-agent")).unwrap();
        assert!(
            bash.contains("--rollback-on-exit"),
            "bash completion lacks watch's options"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The man pages and the READMEs describe the same command line: every
    /// option and subcommand of a command is named in its README.
    #[test]
    fn the_readmes_name_every_option_and_subcommand() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let readme = |name: &str| match name {
            "rs-agent" => "README.md",
            "ipvsctl" => "ipvsctl/README.md",
            _ => "director/README.md",
        };
        let mut missing = Vec::new();
        for cmd in commands() {
            let name = cmd.get_name().to_string();
            let text = fs::read_to_string(root.join(readme(&name))).unwrap();
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            let mut all: Vec<&clap::Command> = vec![&cmd];
            all.extend(cmd.get_subcommands());
            for sub in all {
                if sub.get_name() != name && !text.contains(sub.get_name()) {
                    missing.push(format!("{name} {}", sub.get_name()));
                }
                // By its long form, or its short one where it has one (the
                // synopses say `-v|-q`, `-t|-u`, as ipvsadm's page does).
                for arg in sub.get_arguments() {
                    let Some(long) = arg.get_long() else { continue };
                    let named = text.contains(&format!("--{long}"))
                        || arg
                            .get_short()
                            .is_some_and(|c| text.contains(&format!("-{c}")));
                    if long != "help" && long != "version" && !named {
                        missing.push(format!("{name} {} --{long}", sub.get_name()));
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "not in the README: {missing:?}");
    }
}
