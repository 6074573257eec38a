//! What exec checks need of this machine, settled at start and at each
//! reload (a failure refuses the file, with the position of its key): the
//! user they run as, looked up once, and their programs, each refused when
//! anyone but root could change it (keepalived's `enable_script_security`,
//! always on). Here and not in `lvs-director-config`: rs-agent reads the
//! same file on real servers, which have no scripts.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::config::{ConfigError, DirectorConfig};
use crate::sys::{self, Identity};

/// The exec checks' identity for `config` (read from `file`), once each of
/// their programs is found safe.
pub(super) fn prepare(file: &Path, config: &DirectorConfig) -> Result<Identity, ConfigError> {
    let who = match &config.node.script_user {
        Some(u) => match sys::user_by_name(&u.name) {
            Ok(Some(user)) => Identity::new(Some(user)),
            Ok(None) => {
                return Err(u.at.error(
                    file,
                    format!("script_user {:?} is not a user of this machine", u.name),
                ));
            }
            Err(e) => {
                return Err(u.at.error(file, format!("script_user {:?}: {e}", u.name)));
            }
        },
        None => Identity::default_user()
            .map_err(|e| ConfigError::whole_file(file, format!("exec checks: {e}")))?,
    };
    for service in &config.services {
        for p in &service.exec_programs {
            if let Err(why) = refusal(Path::new(&p.program), &Trust::ROOT) {
                return Err(p.position(service.line).error(
                    file,
                    format!(
                        "refusing the exec check {}: {why} (a script and every directory above it must be root's and writable by root alone)",
                        p.program
                    ),
                ));
            }
        }
    }
    Ok(who)
}

/// Whom the chain of a program must belong to.
pub(crate) struct Trust<'a> {
    /// The owner of every file and directory.
    pub(crate) uid: libc::uid_t,
    /// Directories at or above this one are not looked at (tests build
    /// their chains below a temporary directory).
    pub(crate) above: Option<&'a Path>,
}

impl Trust<'static> {
    const ROOT: Trust<'static> = Trust {
        uid: 0,
        above: None,
    };
}

/// Symbolic links followed before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Why `program` is unsafe to run: the program as exec finds it (through
/// [`sys::SCRIPT_PATH`] when not absolute), every directory on the way to
/// it, and every link's target and the directories on the way to that,
/// must be owned by `trust.uid` and writable by no group or other user (a
/// sticky directory such as /tmp included: its files may be created by
/// anyone). A program that does not exist is fine when the directories
/// that would hold it are (the check fails when run).
pub(crate) fn refusal(program: &Path, trust: &Trust) -> Result<(), String> {
    let program = if program.is_absolute() {
        program.to_path_buf()
    } else {
        sys::SCRIPT_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(program))
            .find(|p| p.exists())
            .ok_or_else(|| format!("{} is not in {}", program.display(), sys::SCRIPT_PATH))?
    };
    // Owned: a link's target is pushed here as the walk goes on.
    let mut todo: Vec<OsString> = parts(&program);
    let mut at = PathBuf::from("/");
    let mut links = 0;
    check(&at, trust)?;
    while let Some(part) = todo.pop() {
        match Path::new(&part).components().next() {
            Some(Component::RootDir) => at = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                at.pop();
            }
            Some(Component::Normal(name)) => {
                let next = at.join(name);
                let meta = match std::fs::symlink_metadata(&next) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(format!("{}: {e}", next.display())),
                };
                if meta.file_type().is_symlink() {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(format!("{}: too many symbolic links", program.display()));
                    }
                    let target = std::fs::read_link(&next)
                        .map_err(|e| format!("{}: {e}", next.display()))?;
                    // The link is replaced through its directory (checked):
                    // its own mode means nothing. Its target is walked from
                    // here (or from / when absolute).
                    todo.extend(parts(&target));
                    continue;
                }
                check_meta(&next, &meta, trust)?;
                at = next;
            }
            Some(Component::CurDir | Component::Prefix(_)) | None => {}
        }
    }
    Ok(())
}

/// The components of `path`, last first (to be popped in order).
fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .rev()
        .map(|c| c.as_os_str().to_os_string())
        .collect()
}

fn check(path: &Path, trust: &Trust) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_meta(path, &meta, trust)
}

fn check_meta(path: &Path, meta: &std::fs::Metadata, trust: &Trust) -> Result<(), String> {
    if trust.above.is_some_and(|top| top.starts_with(path)) {
        return Ok(());
    }
    let mode = meta.mode() & 0o7777;
    if meta.uid() != trust.uid {
        return Err(format!(
            "{}: owned by uid {}, not {}",
            path.display(),
            meta.uid(),
            if trust.uid == 0 {
                "root".to_string()
            } else {
                format!("uid {}", trust.uid)
            }
        ));
    }
    if mode & 0o002 != 0 {
        return Err(format!(
            "{}: writable by others (mode {mode:04o})",
            path.display()
        ));
    }
    if mode & 0o020 != 0 {
        return Err(format!(
            "{}: writable by group (mode {mode:04o})",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A temporary directory (0755) whose parents are not looked at; the
    /// chains below it must be the test's user's.
    struct Lab {
        dir: tempfile::TempDir,
        parent: PathBuf,
    }

    impl Lab {
        fn new() -> Lab {
            let dir = tempfile::tempdir().unwrap();
            chmod(dir.path(), 0o755);
            let parent = dir.path().parent().unwrap().to_path_buf();
            Lab { dir, parent }
        }

        fn trust(&self) -> Trust<'_> {
            Trust {
                uid: sys::euid(),
                above: Some(&self.parent),
            }
        }

        /// `rel` as an executable 0755 script, its directories 0755.
        fn script(&self, rel: &str) -> PathBuf {
            let p = self.dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
            chmod(&p, 0o755);
            p
        }
    }

    #[test]
    fn a_chain_writable_by_its_owner_alone_is_safe() {
        let lab = Lab::new();
        let p = lab.script("libexec/check.sh");
        assert_eq!(refusal(&p, &lab.trust()), Ok(()));
        // Missing, under safe directories: nothing to replace it with.
        let missing = lab.dir.path().join("libexec/none.sh");
        assert_eq!(refusal(&missing, &lab.trust()), Ok(()));
    }

    #[test]
    fn group_or_other_writable_files_and_directories_are_refused() {
        let lab = Lab::new();
        let p = lab.script("opt/x/check.sh");
        let x = lab.dir.path().join("opt/x");
        chmod(&x, 0o775);
        assert_eq!(
            refusal(&p, &lab.trust()),
            Err(format!("{}: writable by group (mode 0775)", x.display()))
        );
        // Sticky and world-writable, as /tmp: still refused.
        chmod(&x, 0o1777);
        assert_eq!(
            refusal(&p, &lab.trust()),
            Err(format!("{}: writable by others (mode 1777)", x.display()))
        );
        chmod(&x, 0o755);
        chmod(&p, 0o757);
        assert_eq!(
            refusal(&p, &lab.trust()),
            Err(format!("{}: writable by others (mode 0757)", p.display()))
        );
        // A missing script under an unsafe directory: anyone could add it.
        chmod(&p, 0o755);
        chmod(&x, 0o777);
        let missing = x.join("none.sh");
        assert!(
            refusal(&missing, &lab.trust())
                .unwrap_err()
                .contains("writable by others")
        );
    }

    #[test]
    fn another_owner_is_refused() {
        let lab = Lab::new();
        let p = lab.script("check.sh");
        let other = Trust {
            uid: sys::euid() + 1,
            above: Some(&lab.parent),
        };
        let e = refusal(&p, &other).unwrap_err();
        assert!(e.contains(&format!("owned by uid {}", sys::euid())), "{e}");
    }

    #[test]
    fn links_are_followed_and_their_targets_chains_checked() {
        let lab = Lab::new();
        let target = lab.script("unsafe/real.sh");
        let unsafe_dir = lab.dir.path().join("unsafe");
        let link = lab.dir.path().join("safe/check.sh");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink("../unsafe/real.sh", &link).unwrap();
        assert_eq!(refusal(&link, &lab.trust()), Ok(()));
        chmod(&unsafe_dir, 0o777);
        assert_eq!(
            refusal(&link, &lab.trust()),
            Err(format!(
                "{}: writable by others (mode 0777)",
                unsafe_dir.display()
            ))
        );
        // An absolute link, and a link to a directory on the way.
        chmod(&unsafe_dir, 0o755);
        std::fs::remove_file(&link).unwrap();
        symlink(&target, &link).unwrap();
        assert_eq!(refusal(&link, &lab.trust()), Ok(()));
        chmod(&target, 0o775);
        assert!(
            refusal(&link, &lab.trust())
                .unwrap_err()
                .contains("writable by group")
        );
        chmod(&target, 0o755);
        let dir_link = lab.dir.path().join("via");
        symlink(&unsafe_dir, &dir_link).unwrap();
        chmod(&unsafe_dir, 0o1777);
        let e = refusal(&dir_link.join("real.sh"), &lab.trust()).unwrap_err();
        assert!(e.contains("mode 1777"), "{e}");
    }

    /// The refusal names the file, the line and column of the program,
    /// and why; an unknown user the position of `script_user`.
    #[test]
    fn refusals_at_start_and_reload_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        // Writable by all (as /tmp above it, where it usually is).
        chmod(dir.path(), 0o777);
        let script = dir.path().join("check.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let file = Path::new("/etc/lvs-director/director.toml");
        let text = format!(
            "[[service]]\nvip = \"192.0.2.1\"\nport = 80\n[service.check]\ntype = \"exec\"\ncommand = [\"{}\"]\n[[service.server]]\naddress = \"192.0.2.2\"\n",
            script.display()
        );
        let config = crate::config::parse(file, &text).unwrap();
        let e = prepare(file, &config).unwrap_err().to_string();
        let want = format!(
            "/etc/lvs-director/director.toml:6:12: refusing the exec check {}: ",
            script.display()
        );
        assert!(e.starts_with(&want), "{e}");
        assert!(e.contains(": writable by others (mode "), "{e}");

        let text = "script_user = \"no-such-user-lvs\"\n";
        let config = crate::config::parse(file, text).unwrap();
        assert_eq!(
            prepare(file, &config).unwrap_err().to_string(),
            "/etc/lvs-director/director.toml:1:15: script_user \"no-such-user-lvs\" is not a user of this machine"
        );
        let text = "script_user = \"root\"\n";
        let config = crate::config::parse(file, text).unwrap();
        let who = prepare(file, &config).unwrap();
        assert_eq!(who.user.map(|u| u.uid), (sys::euid() == 0).then_some(0));
    }

    #[test]
    fn programs_on_the_path_and_system_ones() {
        // Root's own tools pass as they are installed.
        let root = Trust {
            uid: 0,
            above: None,
        };
        assert_eq!(refusal(Path::new("/bin/sh"), &root), Ok(()));
        assert_eq!(refusal(Path::new("sh"), &root), Ok(()));
        let e = refusal(Path::new("no-such-program-here"), &root).unwrap_err();
        assert!(e.contains("is not in /usr/local/sbin:"), "{e}");
    }
}
