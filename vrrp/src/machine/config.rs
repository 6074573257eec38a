//! What one virtual router is configured with, its validation, and the
//! RFC's timer arithmetic (Skew_Time, Master_Down_Interval).

use std::net::IpAddr;
use std::num::NonZeroU8;
use std::time::Duration;

use crate::packet::{V3_MAX_INTERVAL, Version};

/// The priority of the address owner: it takes over at once.
pub const OWNER: u8 = 255;

/// One virtual router's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The virtual router's id, 1..=255.
    pub vrid: u8,
    /// The protocol version spoken.
    pub version: Version,
    /// This node's priority at start (255: the address owner; 0 is the
    /// leaving master's and cannot be configured).
    pub priority: NonZeroU8,
    /// This node's advertisement interval (whole seconds in v2, whole
    /// centiseconds up to 40.95 s in v3).
    pub interval: Duration,
    /// Whether a higher-priority backup takes over from a live lower-priority
    /// master (keepalived's default; `nopreempt` turns it off). The owner
    /// always preempts (RFC 5798 section 6.1).
    pub preempt: bool,
    /// keepalived's `preempt_delay`: for this long after start, preemption
    /// is held back.
    pub preempt_delay: Duration,
    /// This node's primary address: the tie-break between equal priorities
    /// (the higher address wins).
    pub primary: IpAddr,
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// VRID 0 does not exist.
    #[error("virtual router id 0: ids are 1 to 255")]
    Vrid,
    /// An interval the version's field cannot carry.
    #[error("advertisement interval {interval:?} for version {version}: {why}")]
    Interval {
        /// The version.
        version: Version,
        /// The interval configured.
        interval: Duration,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl Config {
    /// Checks the VRID and that the interval fits the version's field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::Vrid);
        }
        let refuse = |why| ConfigError::Interval {
            version: self.version,
            interval: self.interval,
            why,
        };
        let unit = self.version.interval_unit();
        if self.interval.is_zero() {
            return Err(refuse("it is 0"));
        }
        if !self.interval.as_nanos().is_multiple_of(unit.as_nanos()) {
            return Err(refuse(
                "not a whole number of the version's unit (v2: seconds, v3: centiseconds)",
            ));
        }
        let max = match self.version {
            Version::V2 => u128::from(u8::MAX),
            Version::V3 => u128::from(V3_MAX_INTERVAL),
        };
        if self.interval.as_nanos() / unit.as_nanos() > max {
            return Err(refuse("over the field's maximum (v2: 255 s, v3: 40.95 s)"));
        }
        Ok(())
    }
}

/// Skew_Time for a node of `priority`: (256 - priority) / 256 s in v2;
/// (256 - priority) x Master_Adver_Interval / 256 in v3.
pub fn skew(version: Version, priority: NonZeroU8, master_interval: Duration) -> Duration {
    let base = match version {
        Version::V2 => Duration::from_secs(1),
        Version::V3 => master_interval,
    };
    base * (256 - u32::from(priority.get())) / 256
}

/// Master_Down_Interval: 3 x Master_Adver_Interval + Skew_Time.
pub fn master_down(version: Version, priority: NonZeroU8, master_interval: Duration) -> Duration {
    master_interval * 3 + skew(version, priority, master_interval)
}
