//! Finds sysctl.d settings that would undo the agent: `sysctl --system` and
//! every boot re-apply them over the runtime values the agent wrote. Any
//! managed conf sysctl counts (systemd ships `net.ipv4.conf.*.rp_filter = 2`,
//! which matters once rp_filter is managed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::domain::{Family, SysctlSetting};

/// Directories systemd-sysctl and `sysctl --system` read, highest priority
/// first: a file name in an earlier directory hides the same name in later ones.
pub const DIRS: [&str; 5] = [
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// Read after the directories by `sysctl --system`.
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// One per-interface conf setting found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub file: PathBuf,
    pub line: usize,
    pub family: Family,
    /// The interface part of the key; may be a glob (`*`).
    pub interface: String,
    /// The sysctl's name (`arp_ignore`, `rp_filter`, ...).
    pub name: String,
    /// The value; None for an exclusion: `-KEY` without a value keeps that
    /// key out of the glob assignments (systemd's
    /// `net.ipv4.conf.*.rp_filter = 2` with `-net.ipv4.conf.all.rp_filter`).
    pub value: Option<String>,
}

/// The files in the order they are applied (later ones win).
pub fn files_in_order(dirs: &[&Path], sysctl_conf: &Path) -> Vec<PathBuf> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                by_name.entry(name).or_insert_with(|| entry.path());
            }
        }
    }
    let mut files: Vec<PathBuf> = by_name
        .into_values()
        // A link to /dev/null masks the file of that name.
        .filter(|p| std::fs::canonicalize(p).map_or(true, |c| c != Path::new("/dev/null")))
        .collect();
    let covered = files
        .iter()
        .any(|f| std::fs::canonicalize(f).ok() == std::fs::canonicalize(sysctl_conf).ok());
    if sysctl_conf.exists() && !covered {
        files.push(sysctl_conf.to_path_buf());
    }
    files
}

/// The conf settings of every file, in application order.
pub fn read_settings(files: &[PathBuf]) -> Vec<Setting> {
    files
        .iter()
        .filter_map(|f| Some((f, std::fs::read_to_string(f).ok()?)))
        .flat_map(|(f, text)| parse(f, &text))
        .collect()
}

/// The settings of the standard locations.
pub fn system_settings() -> Vec<Setting> {
    let dirs: Vec<&Path> = DIRS.iter().map(Path::new).collect();
    read_settings(&files_in_order(&dirs, Path::new(SYSCTL_CONF)))
}

/// Lines of one file that set `net.ipv{4,6}.conf.IFACE.NAME`.
pub fn parse(file: &Path, text: &str) -> Vec<Setting> {
    let mut settings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value.trim().to_string())),
            // `-KEY` alone excludes KEY from globs; other lines set nothing.
            None if line.starts_with('-') => (line, None),
            None => continue,
        };
        // A leading '-' only tells systemd-sysctl to ignore failures.
        let key = key.trim().trim_start_matches('-');
        let Some((family, interface, name)) = split_key(key) else {
            continue;
        };
        settings.push(Setting {
            file: file.to_path_buf(),
            line: index + 1,
            family,
            interface,
            name,
            value,
        });
    }
    settings
}

/// `net.ipv4.conf.IFACE.NAME` (a `/` in IFACE stands for a dot) or
/// `net/ipv4/conf/IFACE/NAME` (IFACE written as is); ipv6 alike.
fn split_key(key: &str) -> Option<(Family, String, String)> {
    for family in [Family::Ipv4, Family::Ipv6] {
        let slashed = format!("net/{}/conf/", family.name());
        let dotted = format!("net.{}.conf.", family.name());
        let (rest, separator) = if let Some(rest) = key.strip_prefix(&slashed) {
            (rest, '/')
        } else if let Some(rest) = key.strip_prefix(&dotted) {
            (rest, '.')
        } else {
            continue;
        };
        let (interface, name) = rest.rsplit_once(separator)?;
        let interface = if separator == '.' {
            interface.replace('/', ".")
        } else {
            interface.to_string()
        };
        return Some((family, interface, name.to_string()));
    }
    None
}

/// `*` and `?` glob over an interface name.
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Warnings for each sysctl the agent manages whose last setting at boot
/// differs from what the configuration wants.
pub fn conflicts(wanted: &[SysctlSetting], settings: &[Setting]) -> Vec<String> {
    let mut warnings = Vec::new();
    for setting in wanted {
        let key = &setting.key;
        let same_sysctl = |s: &&Setting| s.family == key.family && s.name == key.name;
        let excluded = settings
            .iter()
            .filter(same_sysctl)
            .any(|s| s.value.is_none() && s.interface == key.interface);
        let last = settings.iter().rev().filter(same_sysctl).find(|s| {
            let glob = s.interface.contains(['*', '?']);
            s.value.is_some() && glob_match(&s.interface, &key.interface) && !(glob && excluded)
        });
        if let Some(s) = last
            && let Some(value) = &s.value
            && value.parse::<i32>().ok() != Some(setting.value)
        {
            warnings.push(format!(
                "{}:{} sets net.{}.conf.{}.{} = {}: `sysctl --system` or the next boot undoes rs-agent's {} (wanted {})",
                s.file.display(),
                s.line,
                s.family.name(),
                s.interface.replace('.', "/"),
                s.name,
                value,
                s.name,
                setting.value,
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ArpPolicy;
    use crate::domain::SysctlKey;

    fn config(interfaces: &[&str]) -> Vec<SysctlSetting> {
        ArpPolicy {
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            ..ArpPolicy::default()
        }
        .sysctls()
    }

    #[test]
    fn parses_both_notations() {
        let text = "# comment\n\
                    net.ipv4.conf.all.arp_ignore = 0\n\
                    -net.ipv4.conf.eth0/100.arp_announce=1\n\
                    net/ipv4/conf/eth0.200/arp_ignore = 2\n\
                    net.ipv4.conf.all.rp_filter = 2\n\
                    kernel.panic = 1\n";
        let s = parse(Path::new("/x.conf"), text);
        assert_eq!(s.len(), 4);
        assert_eq!(
            (s[0].line, s[0].interface.as_str(), s[0].name.as_str()),
            (2, "all", "arp_ignore")
        );
        assert_eq!(
            (
                s[1].interface.as_str(),
                s[1].name.as_str(),
                s[1].value.as_deref().unwrap()
            ),
            ("eth0.100", "arp_announce", "1")
        );
        assert_eq!(s[2].interface, "eth0.200");
        assert_eq!(
            (s[3].family, s[3].name.as_str()),
            (Family::Ipv4, "rp_filter")
        );
        let v6 = parse(Path::new("/y.conf"), "net.ipv6.conf.eth0.accept_ra = 0\n");
        assert_eq!(
            (v6[0].family, v6[0].name.as_str()),
            (Family::Ipv6, "accept_ra")
        );
    }

    #[test]
    fn any_managed_sysctl_is_checked() {
        // rp_filter as systemd ships it, against a managed rp_filter = 0.
        let shipped = parse(
            Path::new("/usr/lib/sysctl.d/50-default.conf"),
            "net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n",
        );
        let wanted = [SysctlSetting {
            key: SysctlKey::ipv4("tunl0", "rp_filter"),
            value: 0,
        }];
        let w = conflicts(&wanted, &shipped);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "/usr/lib/sysctl.d/50-default.conf:2 sets net.ipv4.conf.*.rp_filter = 2"
            ),
            "{w:?}"
        );
        // The same name under ipv6 is another sysctl.
        let v6 = parse(Path::new("/z.conf"), "net.ipv6.conf.all.rp_filter = 2\n");
        assert!(conflicts(&wanted, &v6).is_empty());
    }

    #[test]
    fn an_exclusion_keeps_a_key_out_of_the_globs() {
        // Debian's systemd: 2 everywhere but on `all`.
        let shipped = parse(
            Path::new("/usr/lib/sysctl.d/50-default.conf"),
            "net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n",
        );
        assert_eq!(shipped[2].value, None);
        let wanted = |interface: &str| {
            [SysctlSetting {
                key: SysctlKey::ipv4(interface, "rp_filter"),
                value: 0,
            }]
        };
        assert!(conflicts(&wanted("all"), &shipped).is_empty());
        assert_eq!(conflicts(&wanted("tunl0"), &shipped).len(), 1);
        // An explicit setting of the excluded key still counts.
        let mut explicit = shipped.clone();
        explicit.extend(parse(
            Path::new("/etc/sysctl.d/99-x.conf"),
            "net.ipv4.conf.all.rp_filter = 1\n",
        ));
        assert_eq!(conflicts(&wanted("all"), &explicit).len(), 1);
    }

    #[test]
    fn the_last_setting_wins_and_globs_match() {
        let a = parse(
            Path::new("/etc/sysctl.d/10-a.conf"),
            "net.ipv4.conf.all.arp_ignore = 0\n",
        );
        let b = parse(
            Path::new("/etc/sysctl.d/20-b.conf"),
            "net.ipv4.conf.all.arp_ignore = 1\n",
        );
        let settings: Vec<Setting> = a.iter().chain(&b).cloned().collect();
        assert!(conflicts(&config(&["all"]), &settings).is_empty());
        let settings: Vec<Setting> = b.iter().chain(&a).cloned().collect();
        let w = conflicts(&config(&["all"]), &settings);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("/etc/sysctl.d/10-a.conf:1 sets net.ipv4.conf.all.arp_ignore = 0"),
            "{w:?}"
        );
        let glob = parse(Path::new("/g.conf"), "net.ipv4.conf.*.arp_announce = 0\n");
        let w = conflicts(&config(&["all", "eth0"]), &glob);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(glob_match("eth?", "eth1") && !glob_match("eth?", "eth10"));
    }

    #[test]
    fn file_order_and_masking() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        let usr = root.path().join("usr");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&usr).unwrap();
        std::fs::write(usr.join("50-x.conf"), "net.ipv4.conf.all.arp_ignore = 0\n").unwrap();
        std::fs::write(usr.join("60-y.conf"), "net.ipv4.conf.all.arp_ignore = 0\n").unwrap();
        std::fs::write(etc.join("50-x.conf"), "# overrides usr\n").unwrap();
        std::os::unix::fs::symlink("/dev/null", etc.join("60-y.conf")).unwrap();
        std::fs::write(
            usr.join("70-z.conf"),
            "net.ipv4.conf.all.arp_announce = 0\n",
        )
        .unwrap();
        let conf = root.path().join("sysctl.conf");
        std::fs::write(&conf, "net.ipv4.conf.all.arp_announce = 2\n").unwrap();
        let files = files_in_order(&[&etc, &usr], &conf);
        assert_eq!(
            files,
            vec![etc.join("50-x.conf"), usr.join("70-z.conf"), conf.clone()]
        );
        let settings = read_settings(&files);
        assert!(conflicts(&config(&["all"]), &settings).is_empty());
    }
}
