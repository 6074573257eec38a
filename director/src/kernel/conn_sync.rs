//! `[sync]`: the kernel's connection-sync daemons the file asks for
//! (`role` master, backup or both; one multicast interface and sync id).
//! The comparison is pure; starting and stopping goes through the kernel
//! thread's IPVS handle.

use lvs_ipvs::{Daemon, DaemonState};

use crate::config::{SyncConfig, SyncRole};

/// The daemons `cfg` asks for.
pub fn desired(cfg: Option<&SyncConfig>) -> Vec<Daemon> {
    let Some(cfg) = cfg else {
        return Vec::new();
    };
    let states: &[DaemonState] = match cfg.role {
        SyncRole::Master => &[DaemonState::Master],
        SyncRole::Backup => &[DaemonState::Backup],
        SyncRole::Both => &[DaemonState::Master, DaemonState::Backup],
    };
    states
        .iter()
        .map(|&s| Daemon::new(s, cfg.interface.clone(), u32::from(cfg.syncid)))
        .collect()
}

/// What to stop and start so the kernel runs `want` (a daemon differing
/// in interface or sync id is replaced: the kernel cannot edit one).
/// `managed`: whether states not in `want` are this daemon's to stop.
pub fn diff(running: &[Daemon], want: &[Daemon], managed: bool) -> (Vec<DaemonState>, Vec<Daemon>) {
    let same = |a: &Daemon, b: &Daemon| a.mcast_ifn == b.mcast_ifn && a.sync_id == b.sync_id;
    let mut stop = Vec::new();
    let mut start = Vec::new();
    for state in [DaemonState::Master, DaemonState::Backup] {
        let r = running.iter().find(|d| d.state == state);
        let w = want.iter().find(|d| d.state == state);
        match (r, w) {
            (Some(r), Some(w)) if same(r, w) => {}
            (Some(_), Some(w)) => {
                stop.push(state);
                start.push(w.clone());
            }
            (None, Some(w)) => start.push(w.clone()),
            (Some(_), None) if managed => stop.push(state),
            _ => {}
        }
    }
    (stop, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(role: SyncRole, ifn: &str, id: u8) -> SyncConfig {
        SyncConfig {
            role,
            interface: ifn.into(),
            syncid: id,
        }
    }

    #[test]
    fn both_starts_two_and_a_change_replaces() {
        let want = desired(Some(&cfg(SyncRole::Both, "eth0", 51)));
        let (stop, start) = diff(&[], &want, true);
        assert!(stop.is_empty());
        assert_eq!(start.len(), 2);
        let (stop, start) = diff(&want, &want, true);
        assert!(stop.is_empty() && start.is_empty());
        let other = desired(Some(&cfg(SyncRole::Master, "eth1", 51)));
        let (stop, start) = diff(&want, &other, true);
        assert_eq!(stop, vec![DaemonState::Master, DaemonState::Backup]);
        assert_eq!(start, other);
    }

    #[test]
    fn daemons_of_others_are_left_alone_unless_managed() {
        let running = desired(Some(&cfg(SyncRole::Backup, "eth0", 1)));
        let (stop, start) = diff(&running, &[], false);
        assert!(stop.is_empty() && start.is_empty());
        let (stop, _) = diff(&running, &[], true);
        assert_eq!(stop, vec![DaemonState::Backup]);
    }
}
