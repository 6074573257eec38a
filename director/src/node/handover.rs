//! A stop for a restart (a package upgrade): the marker the postinst
//! writes, and what the stopping daemon leaves to the next start beyond
//! what that start finds in the system.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::health_file::write_atomic;
use tracing::{error, info, warn};

/// A restart marker younger than this counts (the postinst writes it just
/// before the restart); an older one was left by a restart that did not
/// happen, and a stop that finds it is a full stop.
const RESTART_MARKER_FRESH: Duration = Duration::from_secs(60);

/// What a stop for a restart leaves to the next start, beyond what it finds
/// in the system (VIPs on the interface, the sysctl record, the table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Handover {
    /// The announce interface this daemon created.
    pub(super) created_interface: Option<String>,
    /// `[sync]` was in force: the running sync daemons are the daemon's.
    pub(super) sync_managed: bool,
    /// `lvs-director withdraw` was in force: a restart does not end it.
    pub(super) withdrawn_by_hand: bool,
}

pub(super) fn handover_path(control: &Path) -> PathBuf {
    control.with_extension("handover.json")
}

/// Whether `marker` asks this stop to hand over: it exists and is at most
/// [`RESTART_MARKER_FRESH`] old at `now`. Removed either way (a marker
/// serves one stop).
pub(super) fn take_restart_marker(marker: &Path, now: SystemTime) -> bool {
    let Ok(meta) = std::fs::metadata(marker) else {
        return false;
    };
    if let Err(e) = std::fs::remove_file(marker) {
        error!("restart marker {}: {e}", marker.display());
    }
    let age = meta
        .modified()
        .ok()
        .map(|m| now.duration_since(m).unwrap_or(Duration::ZERO));
    match age {
        Some(age) if age <= RESTART_MARKER_FRESH => true,
        _ => {
            warn!(
                "restart marker {}: older than {}s (a restart that did not happen): a full stop",
                marker.display(),
                RESTART_MARKER_FRESH.as_secs()
            );
            false
        }
    }
}

/// The handover left by a stop for a restart, if any (removed: it serves
/// one start).
pub(super) fn take_handover(path: &Path) -> Option<Handover> {
    let text = std::fs::read_to_string(path).ok()?;
    if let Err(e) = std::fs::remove_file(path) {
        error!("{}: {e}", path.display());
    }
    match serde_json::from_str(&text) {
        Ok(h) => {
            info!(
                "{}: taking over from the instance before the restart",
                path.display()
            );
            Some(h)
        }
        Err(e) => {
            warn!("{}: unreadable handover ({e}): ignored", path.display());
            None
        }
    }
}

impl super::Node {
    /// The stop for a restart: VIPs, health file, sysctls and sync daemons
    /// stay as they are; the rest of the state goes to the handover file.
    pub(super) fn hand_over(&mut self) {
        let h = Handover {
            created_interface: self
                .announcing
                .as_ref()
                .filter(|a| a.iface.created)
                .map(|a| a.iface.name.clone()),
            sync_managed: self.sync_managed,
            withdrawn_by_hand: self.withdrawn_by_hand,
        };
        let path = handover_path(&self.control);
        let text = serde_json::to_string_pretty(&h).unwrap_or_default();
        if let Err(e) = write_atomic(&path, &text) {
            error!("{}: {e}", path.display());
        }
        info!(
            "stopping for a restart: VIPs, health file, sysctls and sync daemons stay for the next start"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_marker_hands_over_once_a_stale_one_not() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("control.restart");
        assert!(!take_restart_marker(&marker, SystemTime::now()));
        std::fs::write(&marker, "").unwrap();
        assert!(take_restart_marker(&marker, SystemTime::now()));
        assert!(!marker.exists(), "a marker serves one stop");
        assert!(!take_restart_marker(&marker, SystemTime::now()));
        std::fs::write(&marker, "").unwrap();
        let later = SystemTime::now() + RESTART_MARKER_FRESH + Duration::from_secs(5);
        assert!(!take_restart_marker(&marker, later));
        assert!(!marker.exists(), "a stale marker is removed too");
    }

    #[test]
    fn the_handover_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = handover_path(&dir.path().join("control.sock"));
        assert_eq!(take_handover(&path), None);
        let h = Handover {
            created_interface: Some("lvs0".into()),
            sync_managed: true,
            withdrawn_by_hand: true,
        };
        write_atomic(&path, &serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(take_handover(&path), Some(h));
        assert_eq!(take_handover(&path), None);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(take_handover(&path), None);
        assert!(!path.exists());
    }
}
