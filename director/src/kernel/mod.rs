//! The kernel side: what the file means for the IPVS table and nftables,
//! and the thread that changes them.
//!
//! - [`view`]: the table as read from the kernel, indexed for planning.
//! - [`plan`]: the pure diff of the wanted table against the kernel's
//!   (edits in place, never delete-and-add).
//! - [`apply`]: `lvs-director apply`: read, plan, apply, and on a failure
//!   midway converge back to the table read before.
//! - [`nft`]: the firewall marks of port groups in `table inet ipvsctl`,
//!   replaced in one nftables transaction.
//! - [`conn_sync`]: which IPVS connection-sync daemons the file asks for.
//! - [`thread`]: the daemon's only door to the kernel ([`Kernel`]).

pub mod apply;
pub mod conn_sync;
pub mod nft;
pub mod plan;
mod thread;
pub mod view;

pub use thread::{Applied, Kernel, KernelError};
