//! Executes a plan. Consecutive address changes go out as one pipelined batch;
//! every change that took effect is journaled, and if a later one fails the
//! journal is undone in reverse, so a failed run leaves the system as it was.

use tracing::{info, warn};

use crate::error::Error;
use crate::model::AddressSpec;
use crate::netlink::{AddOutcome, Netlink};
use crate::plan::Change;
use crate::sysctl;

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Applied {
    pub done: Vec<Change>,
    /// Addresses that appeared on their own between observation and the add
    /// request: present, but not the agent's.
    pub found_present: Vec<AddressSpec>,
}

/// Makes the changes, each on the interface it names; on failure undoes what
/// was done and returns [`Error::RolledBack`] or [`Error::RollbackFailed`].
pub async fn apply(netlink: &Netlink, changes: &[Change]) -> Result<Applied, Error> {
    let mut applied = Applied::default();
    let Some(cause) = execute(netlink, changes, &mut applied, false)
        .await
        .into_iter()
        .next()
    else {
        return Ok(applied);
    };
    warn!(
        "{cause}; undoing {} change(s) of this run",
        applied.done.len()
    );
    let undo: Vec<Change> = applied.done.iter().rev().map(Change::inverse).collect();
    let failures = execute(netlink, &undo, &mut Applied::default(), true).await;
    if failures.is_empty() {
        Err(Error::RolledBack {
            cause: Box::new(cause),
        })
    } else {
        Err(Error::RollbackFailed {
            cause: Box::new(cause),
            failures: failures.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Runs the changes in order, batching consecutive address changes of one
/// kind on one interface. Stops at the first failing step unless
/// `keep_going` (used when undoing, where every step that can be undone
/// should be). Returns the errors met.
async fn execute(
    netlink: &Netlink,
    changes: &[Change],
    applied: &mut Applied,
    keep_going: bool,
) -> Vec<Error> {
    let mut errors = Vec::new();
    let mut rest = changes;
    while let Some(first) = rest.first() {
        let step_len = match batch_key(first) {
            Some(key) => rest
                .iter()
                .take_while(|c| batch_key(c) == Some(key))
                .count(),
            None => 1,
        };
        let (step, tail) = rest.split_at(step_len);
        rest = tail;
        let result = match first {
            Change::AddAddress { interface, .. } => {
                address_batch(netlink, interface.index, step, true, applied).await
            }
            Change::RemoveAddress { interface, .. } => {
                address_batch(netlink, interface.index, step, false, applied).await
            }
            Change::SetSysctl { key, to, .. } => sysctl::write(key, *to),
            Change::SetLinkUp { interface } => netlink.set_link_up(interface.index, true).await,
            Change::SetLinkDown { interface } => netlink.set_link_up(interface.index, false).await,
        };
        match result {
            Ok(()) if !is_address(first) => {
                info!("{first}");
                applied.done.push(first.clone());
            }
            Ok(()) => {}
            Err(e) => {
                errors.push(e);
                if !keep_going {
                    break;
                }
            }
        }
    }
    errors
}

fn is_address(change: &Change) -> bool {
    batch_key(change).is_some()
}

/// Address changes go out in pipelined batches: one batch per run of
/// changes of the same kind (add or remove) on the same interface.
fn batch_key(change: &Change) -> Option<(bool, u32)> {
    match change {
        Change::AddAddress { interface, .. } => Some((true, interface.index)),
        Change::RemoveAddress { interface, .. } => Some((false, interface.index)),
        _ => None,
    }
}

fn spec_of(change: &Change) -> &AddressSpec {
    match change {
        Change::AddAddress { spec, .. } | Change::RemoveAddress { spec, .. } => spec,
        _ => unreachable!("only address changes are batched"),
    }
}

async fn address_batch(
    netlink: &Netlink,
    index: u32,
    batch: &[Change],
    adding: bool,
    applied: &mut Applied,
) -> Result<(), Error> {
    let specs: Vec<AddressSpec> = batch.iter().map(|c| spec_of(c).clone()).collect();
    let mut first_error = None;
    if adding {
        let results = netlink.add_addresses(index, &specs).await;
        for (change, result) in batch.iter().zip(results) {
            match result {
                Ok(AddOutcome::Added) => {
                    info!("{change}");
                    applied.done.push(change.clone());
                }
                Ok(AddOutcome::AlreadyPresent) => {
                    info!("{change}: the address appeared meanwhile; not recorded as rs-agent's");
                    applied.found_present.push(spec_of(change).clone());
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| address_error(change, e));
                }
            }
        }
    } else {
        let results = netlink.delete_addresses(index, &specs).await;
        for (change, result) in batch.iter().zip(results) {
            match result {
                Ok(()) => {
                    info!("{change}");
                    applied.done.push(change.clone());
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| address_error(change, e));
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn address_error(change: &Change, error: std::io::Error) -> Error {
    let hint = match (change, error.raw_os_error()) {
        (Change::AddAddress { spec, interface }, Some(libc::EACCES)) if spec.address.is_ipv6() => {
            format!(
                " (is IPv6 disabled on {interface}? net.ipv6.conf.{}.disable_ipv6)",
                interface.name.replace('.', "/")
            )
        }
        _ => String::new(),
    };
    Error::netlink(format!("cannot {change}{hint}"), error)
}
