//! The daemon's side of `--metrics`: the exporter ([`crate::metrics`])
//! asks for a new snapshot when its latest is over a second old; the
//! daemon's loop answers with its [`Status`] at once and a task adds the
//! kernel's counters (one table read, on the kernel's reading thread), so
//! a scrape never stalls the checks.

use std::net::SocketAddr;

use tokio::sync::{mpsc, oneshot};

use super::{Daemon, DaemonError};
use crate::metrics::MetricsServer;
use crate::status::Status;

/// A snapshot asked for, waiting for its status.
pub(super) type Ask = oneshot::Sender<Status>;

/// Binds `addr` (so a taken port fails the start) and serves in the
/// background; the exporter's requests for snapshots arrive on the
/// returned receiver.
pub(super) async fn start(addr: SocketAddr) -> Result<mpsc::Receiver<Ask>, DaemonError> {
    let server = MetricsServer::bind(addr).await?;
    let (tx, rx) = mpsc::channel::<Ask>(4);
    tokio::spawn(server.run(move || {
        let tx = tx.clone();
        async move {
            let (ask, answer) = oneshot::channel();
            if tx.send(ask).await.is_err() {
                return Status::default();
            }
            answer.await.unwrap_or_default()
        }
    }));
    tracing::info!("metrics on http://{addr}/metrics");
    Ok(rx)
}

impl Daemon {
    /// The status now; a task adds the kernel's counters.
    pub(super) fn answer_scrape(&self, ask: Ask) {
        let mut status = self.status();
        let kernel = self.kernel.clone();
        tokio::spawn(async move {
            // A failed read leaves every destination without counters or
            // weight, as absent from the table.
            let table = kernel.table().await.unwrap_or_default();
            status.add_ipvs_counters(&table);
            let _ = ask.send(status);
        });
    }
}
