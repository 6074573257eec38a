//! `lvs-director apply`: read the kernel, plan, apply, and on a failure
//! midway converge back to the table read before.

use serde::Serialize;

use lvs_ipvs::table::{Destination, Service};
use lvs_ipvs::{Error, Handle, Op};

use crate::config::{self, DirectorConfig, PortGroup};
use crate::kernel::nft::{self, Nft, NftError};
use crate::kernel::plan::{self, Plan, Step, plan, plan_removal, steps};

/// What `apply` should do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// Delete services that are not in the file.
    pub prune: bool,
    /// Delete the file's services and the nftables table instead.
    pub remove: bool,
}

/// What happens to ipvsctl's nftables table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum NftAction {
    /// No port groups and no table: nothing to do.
    None,
    /// The table is (re)written with one rule per group.
    Replace { rules: Vec<String> },
    /// The table already holds exactly these rules.
    Unchanged { rules: Vec<String> },
    /// No port groups remain: the table goes.
    Remove,
}

/// The outcome of a successful `apply` (or of a dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// The IPVS changes, in the order they are applied.
    pub changes: Vec<Step>,
    /// Services in the kernel that the file does not name, left alone.
    pub unmanaged: Vec<String>,
    pub nft: NftAction,
}

impl Report {
    /// The plan as text, one change per line.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for c in &self.changes {
            s.push_str(&format!("{c}\n"));
        }
        match &self.nft {
            NftAction::None => {}
            NftAction::Replace { rules } => {
                s.push_str(&format!(
                    "set nftables table {} {}:\n",
                    nft::TABLE_FAMILY,
                    nft::TABLE_NAME
                ));
                for r in rules {
                    s.push_str(&format!("  {r}\n"));
                }
            }
            NftAction::Unchanged { .. } => s.push_str(&format!(
                "nftables table {} {} already as configured\n",
                nft::TABLE_FAMILY,
                nft::TABLE_NAME
            )),
            NftAction::Remove => s.push_str(&format!(
                "delete nftables table {} {}\n",
                nft::TABLE_FAMILY,
                nft::TABLE_NAME
            )),
        }
        for u in &self.unmanaged {
            s.push_str(&format!(
                "not in the file, left alone (--prune deletes it): service {u}\n"
            ));
        }
        if self.changes.is_empty() {
            s.push_str("IPVS table already as configured\n");
        }
        if self.dry_run {
            s.push_str("dry run: nothing changed\n");
        }
        s
    }
}

/// Why `apply` failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Reading the state failed: nothing was changed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A change failed; the IPVS table from before was put back (or not:
    /// then `rollback` says why).
    #[error("{cause}; {}", match .rollback {
        Ok(()) => "the previous IPVS table was restored".to_string(),
        Err(e) => format!("restoring the previous IPVS table failed too: {e}"),
    })]
    Failed {
        #[source]
        cause: ChangeError,
        rollback: Result<(), Error>,
    },
}

/// Why `apply` could not read the state it starts from.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The kernel's IPVS table.
    #[error(transparent)]
    Ipvs(Error),
    /// The nftables table, or nft missing while the file has port groups.
    #[error(transparent)]
    Nft(NftError),
}

/// The change that failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// An IPVS change the kernel refused (or the socket failed).
    #[error(transparent)]
    Ipvs(Error),
    /// The nftables transaction.
    #[error(transparent)]
    Nft(NftError),
}

/// The services and real servers the file wants, as a table.
pub fn desired_table(config: &DirectorConfig) -> Vec<(Service, Vec<Destination>)> {
    config
        .services
        .iter()
        .map(|s| (s.service.clone(), s.servers.clone()))
        .collect()
}

/// The nft rule of a group, as text (for the printed plan).
fn group_text(g: &PortGroup) -> String {
    let l3 = if g.vip.is_ipv4() { "ip" } else { "ip6" };
    let ports: Vec<String> = g.ports.iter().map(|p| p.to_string()).collect();
    format!(
        "{l3} daddr {} {} dport {{ {} }} meta mark set {}",
        g.vip,
        config::protocol_name(g.protocol),
        ports.join(", "),
        g.mark
    )
}

/// Converge the kernel's IPVS table (through `ipvs`) and ipvsctl's nftables
/// table (through `nft`) to `config`.
///
/// IPVS changes go first (services, then real servers, then deletions),
/// then the nftables table in one transaction. If any change fails, the
/// IPVS table is converged back to what it was (again by edits, so live
/// connections of untouched services are kept) and the nftables table,
/// changed last and atomically, is left as it was.
pub fn apply(
    ipvs: &Handle,
    nft: &Nft,
    config: &DirectorConfig,
    opts: ApplyOptions,
) -> Result<Report, ApplyError> {
    let before = ipvs.table().map_err(ReadError::Ipvs)?;
    let plan = if opts.remove {
        let keys: Vec<_> = config.services.iter().map(|s| s.service.key).collect();
        plan_removal(&keys, &before)
    } else {
        plan(&desired_table(config), &before, opts.prune)
    };
    let groups: Vec<PortGroup> = if opts.remove {
        Vec::new()
    } else {
        config
            .services
            .iter()
            .filter_map(|s| s.group.clone())
            .collect()
    };
    let have_nft = nft.usable(!groups.is_empty()).map_err(ReadError::Nft)?;
    let listed = if have_nft {
        nft.list_table().map_err(ReadError::Nft)?
    } else {
        None
    };
    let rules = || groups.iter().map(group_text).collect();
    let nft_action = match listed {
        _ if groups.is_empty() && listed.is_none() => NftAction::None,
        _ if groups.is_empty() => NftAction::Remove,
        Some(l) if nft::table_matches(&l, &groups) => NftAction::Unchanged { rules: rules() },
        _ => NftAction::Replace { rules: rules() },
    };
    let report = Report {
        dry_run: opts.dry_run,
        changes: steps(&plan, &before),
        unmanaged: plan.unmanaged.iter().map(|k| k.to_string()).collect(),
        nft: nft_action,
    };
    if opts.dry_run {
        return Ok(report);
    }
    let cause = match run_plan(ipvs, &plan) {
        Err(e) => Some(ChangeError::Ipvs(e)),
        Ok(()) => match &report.nft {
            NftAction::None | NftAction::Unchanged { .. } => None,
            NftAction::Replace { .. } | NftAction::Remove => {
                nft.replace(&groups).err().map(ChangeError::Nft)
            }
        },
    };
    match cause {
        None => Ok(report),
        Some(cause) => Err(ApplyError::Failed {
            cause,
            rollback: roll_back(ipvs, &before),
        }),
    }
}

/// Run the plan's phases in order; each phase's requests go in flight
/// together. Stops after the first phase with a failure.
fn run_plan(ipvs: &Handle, plan: &Plan) -> Result<(), Error> {
    for phase in [&plan.services, &plan.destinations, &plan.deletions] {
        run_ops(ipvs, phase)?;
    }
    Ok(())
}

fn run_ops(ipvs: &Handle, ops: &[Op]) -> Result<(), Error> {
    for r in ipvs.apply_many(ops) {
        r?;
    }
    Ok(())
}

/// Converge the IPVS table back to `before`: services added since are
/// deleted, edited ones edited back, removed ones re-added.
fn roll_back(ipvs: &Handle, before: &plan::Table) -> Result<(), Error> {
    let now = ipvs.table()?;
    run_plan(ipvs, &plan(before, &now, true))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use lvs_ipvs::OpKind;

    use super::*;

    #[test]
    fn errors_keep_their_causes_typed() {
        let e = ApplyError::Failed {
            cause: ChangeError::Ipvs(Error::from_errno(
                libc::ENOENT,
                OpKind::AddService,
                "add service tcp 203.0.113.10:80".into(),
            )),
            rollback: Ok(()),
        };
        assert_eq!(
            e.to_string(),
            "add service tcp 203.0.113.10:80: scheduler or persistence engine not found; \
             the previous IPVS table was restored"
        );
        let cause = e.source().and_then(|s| s.downcast_ref::<ChangeError>());
        assert!(matches!(
            cause,
            Some(ChangeError::Ipvs(Error::SchedulerOrEngineNotFound { .. }))
        ));

        let e: ApplyError = ReadError::Nft(NftError {
            what: "list table inet ipvsctl".into(),
            message: "permission denied".into(),
        })
        .into();
        assert!(matches!(e, ApplyError::Read(ReadError::Nft(_))));
        assert_eq!(
            e.to_string(),
            "nft list table inet ipvsctl: permission denied"
        );
    }
}
