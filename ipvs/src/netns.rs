//! Entering a network namespace: the one place in this crate that does.
//!
//! A netlink socket belongs to the namespace of the thread that created
//! it, and keeps working there from any thread. So a short-lived thread
//! enters the namespace, creates what it must, and exits; the calling
//! thread never changes namespace.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// Run `f` on a new thread inside the network namespace behind `path`
/// (`/run/netns/NAME` or `/proc/PID/ns/net`) and return its result.
pub(crate) fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let ns = File::open(path)?;
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("ipvs-netns".into())
            .spawn_scoped(scope, move || -> io::Result<T> {
                // setns(2) on this thread only; the thread ends right after f.
                move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
                Ok(f())
            })?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
