//! Executes a plan. Consecutive address changes go out as one pipelined batch;
//! every change that took effect is journaled, and if a later one fails the
//! journal is undone in reverse, so a failed run leaves the system as it was.

use tracing::{info, warn};

use crate::domain::{AddressSpec, FouPort};
use crate::error::Error;
use crate::fou::Fou;
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
    /// Devices a CreateLink found in place: the kernel's fallback device,
    /// made as the module loaded. Not the agent's.
    pub links_found: Vec<String>,
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
            Change::SetLinkUp { interface } => netlink.set_link_up(interface, true).await,
            Change::SetLinkDown { interface } => netlink.set_link_up(interface, false).await,
            Change::CreateLink { interface, kind } => {
                match netlink.create_link(&interface.name, *kind).await {
                    Ok(AddOutcome::Added) => Ok(()),
                    Ok(AddOutcome::AlreadyPresent) => {
                        info!(
                            "{interface} is there (the kernel's fallback device of module {}): used, not created",
                            kind.module()
                        );
                        applied.links_found.push(interface.name.clone());
                        continue;
                    }
                    Err(e) => Err(link_error(first, e)),
                }
            }
            Change::DeleteLink { interface } => netlink
                .delete_link(interface)
                .await
                .map_err(|e| Error::netlink(format!("cannot {first}"), e)),
            Change::AddFouPort { port } => fou_change(port, true),
            Change::RemoveFouPort { port } => fou_change(port, false),
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

/// A FOU port added or removed (a fresh socket each: a run changes one or two).
fn fou_change(port: &FouPort, add: bool) -> Result<(), Error> {
    let verb = if add { "add" } else { "remove" };
    let context = || format!("cannot {verb} {port}");
    let mut fou = Fou::open()
        .map_err(|e| Error::netlink(context(), e))?
        .ok_or_else(|| {
            Error::netlink(
                context(),
                std::io::Error::other("the kernel has no FOU support (module fou)"),
            )
        })?;
    let result = if add {
        fou.add(*port)
    } else {
        fou.remove(*port)
    };
    result.map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EADDRINUSE) => " (the UDP port is in use by another socket)",
            Some(libc::EALREADY) => " (a FOU port with these settings exists)",
            _ => "",
        };
        Error::netlink(format!("{}{hint}", context()), e)
    })
}

fn link_error(change: &Change, error: std::io::Error) -> Error {
    let hint = match (change, error.raw_os_error()) {
        (Change::CreateLink { kind, .. }, Some(libc::EOPNOTSUPP)) => format!(
            " (this kernel has no {} support: module {} could not be loaded)",
            kind.name(),
            kind.module()
        ),
        _ => String::new(),
    };
    Error::netlink(format!("cannot {change}{hint}"), error)
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
