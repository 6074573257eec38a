//! What the running kernel offers, read from files without changing
//! anything: whether a module is loaded, built in or installed (so a plan
//! can refuse a tunnel type the kernel lacks before touching the system),
//! and which UDP ports are bound in this namespace (so a FOU port in use by
//! another socket is refused the same way).
//!
//! Loading itself is the kernel's: creating a link of kind `ipip` or
//! resolving the `fou` family makes it load the module, which needs
//! CAP_NET_ADMIN only, not modprobe and CAP_SYS_MODULE.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::domain::{Family, KernelSupport};

/// Whether `module` (as /sys/module names it: `ip_gre`, not `ip-gre`) is
/// loaded, built in, installed, or none of them.
pub fn support(module: &str) -> KernelSupport {
    support_in(Path::new("/"), module)
}

/// [`support`] with every path under `root` (tests).
pub fn support_in(root: &Path, module: &str) -> KernelSupport {
    if root.join("sys/module").join(module).exists() {
        return KernelSupport::Loaded;
    }
    let Some(dir) = modules_dir(root) else {
        // No module list for this kernel. Without module support at all
        // (no /proc/modules) nothing can be loaded: what is not loaded is
        // absent. Otherwise, as in a container without /lib/modules, the
        // kernel may still load it: the first use says.
        return if root.join("proc/modules").exists() {
            KernelSupport::Unknown
        } else {
            KernelSupport::Absent
        };
    };
    let listed = |file: &str| {
        std::fs::read_to_string(dir.join(file)).is_ok_and(|text| {
            text.lines()
                .filter_map(|line| line.split(':').next())
                .any(|path| module_name(path) == Some(module.to_string()))
        })
    };
    if listed("modules.builtin") {
        KernelSupport::Loaded
    } else if listed("modules.dep") {
        KernelSupport::Loadable
    } else {
        KernelSupport::Absent
    }
}

/// /lib/modules/RELEASE (or /usr/lib/modules/RELEASE) of the running kernel.
fn modules_dir(root: &Path) -> Option<PathBuf> {
    let release = std::fs::read_to_string(root.join("proc/sys/kernel/osrelease")).ok()?;
    let release = release.trim();
    if release.is_empty() || release.contains('/') {
        return None;
    }
    ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| root.join(d).join(release))
        .find(|d| d.is_dir())
}

/// `kernel/net/ipv4/ip_gre.ko.xz` -> `ip_gre` (dashes read as underscores,
/// as the kernel does).
fn module_name(path: &str) -> Option<String> {
    let file = path.trim().rsplit('/').next()?;
    let (name, _) = file.split_once(".ko")?;
    Some(name.replace('-', "_"))
}

/// The UDP ports bound in this namespace, per family, from
/// /proc/net/udp and /proc/net/udp6 (kernel sockets such as FOU's included).
pub fn udp_ports() -> std::io::Result<BTreeSet<(Family, u16)>> {
    let mut ports = BTreeSet::new();
    for (family, file) in [
        (Family::Ipv4, "/proc/net/udp"),
        (Family::Ipv6, "/proc/net/udp6"),
    ] {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            // No IPv6 in this kernel.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        ports.extend(parse_udp_table(&text).into_iter().map(|p| (family, p)));
    }
    Ok(ports)
}

/// Local ports of a /proc/net/udp{,6} table.
fn parse_udp_table(text: &str) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(|local| local.rsplit_once(':'))
        .filter_map(|(_, port)| u16::from_str_radix(port, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_from_paths() {
        assert_eq!(
            module_name("kernel/net/ipv4/ip_gre.ko.xz"),
            Some("ip_gre".into())
        );
        assert_eq!(module_name("kernel/net/ipv4/ipip.ko"), Some("ipip".into()));
        assert_eq!(module_name("kernel/x/ip-gre.ko"), Some("ip_gre".into()));
        assert_eq!(module_name("modules.order"), None);
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn support_from_sysfs_and_module_lists() {
        let root = tree(&[
            ("proc/sys/kernel/osrelease", "6.1.0-test\n"),
            ("proc/modules", ""),
            ("sys/module/fou/refcnt", "0\n"),
            (
                "lib/modules/6.1.0-test/modules.dep",
                "kernel/net/ipv4/ipip.ko.xz: kernel/net/ipv4/tunnel4.ko.xz\n",
            ),
            (
                "lib/modules/6.1.0-test/modules.builtin",
                "kernel/net/ipv4/gre.ko\n",
            ),
        ]);
        assert_eq!(support_in(root.path(), "fou"), KernelSupport::Loaded);
        assert_eq!(support_in(root.path(), "gre"), KernelSupport::Loaded);
        assert_eq!(support_in(root.path(), "ipip"), KernelSupport::Loadable);
        assert_eq!(support_in(root.path(), "ip_gre"), KernelSupport::Absent);
    }

    #[test]
    fn support_without_module_lists() {
        // Module support but no list (a container): unknown.
        let root = tree(&[
            ("proc/sys/kernel/osrelease", "6.1.0\n"),
            ("proc/modules", ""),
        ]);
        assert_eq!(support_in(root.path(), "ipip"), KernelSupport::Unknown);
        // No module support at all: what is not there is absent.
        let root = tree(&[("proc/sys/kernel/osrelease", "6.18.0\n")]);
        assert_eq!(support_in(root.path(), "ipip"), KernelSupport::Absent);
    }

    #[test]
    fn udp_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                  \x20 12: 00000000:17C0 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 0 2 0000000000000000 0\n\
                  \x20 40: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1234 2 0000000000000000 0\n";
        assert_eq!(parse_udp_table(v4), vec![6080, 53]);
        let v6 = "  sl  local_address                         remote_address                        st\n\
                  \x20  3: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 07\n";
        assert_eq!(parse_udp_table(v6), vec![8080]);
    }
}
