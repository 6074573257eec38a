//! Scrapes served from a snapshot: taking one costs a read of the whole
//! IPVS table on the kernel's reading thread (seconds at tens of thousands
//! of servers), so scrapers polling fast, or several at once, must not each
//! cause one.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::render;
use crate::status::Status;

/// How old a snapshot a scrape may be served.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// The latest snapshot's text, and how new snapshots are taken.
pub struct Scrapes<F> {
    take: F,
    max_age: Duration,
    /// Held while a snapshot is taken: scrapes arriving meanwhile wait for
    /// it and are served it, rather than each taking their own.
    latest: Mutex<Option<Rendered>>,
}

struct Rendered {
    at: Instant,
    text: Arc<str>,
}

impl<F, Fut> Scrapes<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Status> + Send,
{
    /// `take` makes a new [`Status`] (with the kernel's counters).
    pub fn new(take: F) -> Self {
        Self::with_max_age(take, MAX_AGE)
    }

    pub fn with_max_age(take: F, max_age: Duration) -> Self {
        Self {
            take,
            max_age,
            latest: Mutex::new(None),
        }
    }

    /// The Prometheus text of a snapshot at most `max_age` old, taking a
    /// new one when the latest is older; `None` if rendering failed.
    pub async fn text(&self) -> Option<Arc<str>> {
        let mut latest = self.latest.lock().await;
        if let Some(r) = latest.as_ref()
            && r.at.elapsed() <= self.max_age
        {
            return Some(r.text.clone());
        }
        let status = (self.take)().await;
        // Its age counts from when it was taken, not asked for: a read that
        // took longer than max_age still serves the scrapes that waited.
        let at = Instant::now();
        // On a blocking thread: a large table's text must not stall the
        // runtime's checks.
        let text: Arc<str> = tokio::task::spawn_blocking(move || render(&status))
            .await
            .ok()?
            .into();
        *latest = Some(Rendered {
            at,
            text: text.clone(),
        });
        Some(text)
    }
}
