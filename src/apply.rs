//! Executes a plan. Consecutive address changes go out as one pipelined batch;
//! every change that took effect is journaled, and if a later one fails the
//! journal is undone in reverse, so a failed run leaves the system as it was.

use tracing::{info, warn};

use crate::error::Error;
use crate::netlink::{AddOutcome, AddressSpec, Netlink};
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

/// Makes the changes on the loopback interface `lo_index`; on failure undoes
/// what was done and returns [`Error::RolledBack`] or [`Error::RollbackFailed`].
pub async fn apply(netlink: &Netlink, lo_index: u32, changes: &[Change]) -> Result<Applied, Error> {
    let mut applied = Applied::default();
    let Some(cause) = execute(netlink, lo_index, changes, &mut applied, false)
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
    let failures = execute(netlink, lo_index, &undo, &mut Applied::default(), true).await;
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

/// Runs the changes in order, batching consecutive address changes. Stops at
/// the first failing step unless `keep_going` (used when undoing, where every
/// step that can be undone should be). Returns the errors met.
async fn execute(
    netlink: &Netlink,
    lo_index: u32,
    changes: &[Change],
    applied: &mut Applied,
    keep_going: bool,
) -> Vec<Error> {
    let mut errors = Vec::new();
    let mut rest = changes;
    while let Some(first) = rest.first() {
        let step_len = if is_address(first) {
            let adding = matches!(first, Change::AddAddress { .. });
            rest.iter()
                .take_while(|c| is_address(c) && matches!(c, Change::AddAddress { .. }) == adding)
                .count()
        } else {
            1
        };
        let (step, tail) = rest.split_at(step_len);
        rest = tail;
        let result = match first {
            Change::AddAddress { .. } => {
                address_batch(netlink, lo_index, step, true, applied).await
            }
            Change::RemoveAddress { .. } => {
                address_batch(netlink, lo_index, step, false, applied).await
            }
            Change::SetSysctl { key, to, .. } => sysctl::write(key, *to),
            Change::SetLinkUp { index, .. } => netlink.set_link_up(*index, true).await,
            Change::SetLinkDown { index, .. } => netlink.set_link_up(*index, false).await,
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
    matches!(
        change,
        Change::AddAddress { .. } | Change::RemoveAddress { .. }
    )
}

fn spec_of(change: &Change) -> &AddressSpec {
    match change {
        Change::AddAddress { spec, .. } | Change::RemoveAddress { spec, .. } => spec,
        _ => unreachable!("only address changes are batched"),
    }
}

async fn address_batch(
    netlink: &Netlink,
    lo_index: u32,
    batch: &[Change],
    adding: bool,
    applied: &mut Applied,
) -> Result<(), Error> {
    let specs: Vec<AddressSpec> = batch.iter().map(|c| spec_of(c).clone()).collect();
    let mut first_error = None;
    if adding {
        let results = netlink.add_addresses(lo_index, &specs).await;
        for (change, result) in batch.iter().zip(results) {
            match result {
                Ok(AddOutcome::Added) => {
                    info!("{change}");
                    applied.done.push(change.clone());
                }
                Ok(AddOutcome::AlreadyPresent) => {
                    info!(
                        "{} appeared on lo meanwhile; not recorded as rs-agent's",
                        spec_of(change)
                    );
                    applied.found_present.push(spec_of(change).clone());
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| address_error(change, e));
                }
            }
        }
    } else {
        let results = netlink.delete_addresses(lo_index, &specs).await;
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
        (Change::AddAddress { spec, .. }, Some(libc::EACCES)) if spec.address.is_ipv6() => {
            " (is IPv6 disabled on lo? net.ipv6.conf.lo.disable_ipv6)"
        }
        _ => "",
    };
    Error::netlink(format!("cannot {change}{hint}"), error)
}
