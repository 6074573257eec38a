//! The few C library calls that std does not wrap, each behind a safe
//! function with its `SAFETY:` argument. With the raw-socket reads of
//! `check::syn`, this is the only `unsafe` code of the crate: the
//! workspace denies `unsafe_code` everywhere else.
#![allow(unsafe_code)]

/// Sets the process's file mode creation mask, returning the old one.
pub fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask(2) only swaps the process's mask; it cannot fail.
    unsafe { libc::umask(mask) }
}

/// The effective user id.
pub fn euid() -> libc::uid_t {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// The soft and hard limits on open files.
pub fn nofile_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills the struct we own and pass by pointer.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0)
        .then_some((lim.rlim_cur, lim.rlim_max))
}

/// Sets the limits on open files; whether the kernel took them.
pub fn set_nofile_limit(soft: u64, hard: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit(2) reads the struct we own.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

/// SIGKILL to a process group; a group already gone (ESRCH) is no error
/// worth reporting.
pub fn kill_group(pgid: libc::pid_t) {
    // SAFETY: killpg(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// glibc's allocator: one arena, and blocks of `mmap_threshold` bytes
/// and more mapped on their own. Must run before any other thread exists.
pub fn malloc_tunables(mmap_threshold: i32) {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt(3) only sets tunables; the caller runs it before any
    // other thread could allocate concurrently.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_threshold);
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = mmap_threshold;
}

/// Gives the allocator's free memory back to the kernel (glibc).
pub fn malloc_trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim(3) only works on the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
