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
/// worth reporting. An exec check's group runs as another user: killing
/// it takes CAP_KILL, held permitted but not effective (see
/// [`lower_effective`]), raised on this thread for the one call.
pub fn kill_group(pgid: libc::pid_t) {
    // SAFETY: killpg(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::killpg(pgid, libc::SIGKILL) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        let raised = set_effective(&[CAP_KILL], true).is_ok();
        // SAFETY: as above.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
        if raised {
            let _ = set_effective(&[CAP_KILL], false);
        }
    }
}

/// Capabilities the daemon holds only to run exec checks as `script_user`
/// (set the child's groups and ids, empty its bounding set) and to kill
/// them: permitted, never effective in the daemon itself.
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const FOR_EXEC_CHECKS: [u32; 4] = [CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP];

/// capget/capset's header and data (linux/capability.h, version 3: two
/// 32-bit words per set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

fn cap_sets() -> std::io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) reads the header and writes two CapData, the size
    // version 3 defines, into the array we own.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(data)
}

fn set_cap_sets(data: &[CapData; 2]) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset(2) reads the header and the two CapData we own; pid 0
    // is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Adds `caps` to (or takes them out of) the calling thread's effective
/// set; only what is permitted can be added. Threads started afterwards
/// inherit the result.
pub fn set_effective(caps: &[u32], on: bool) -> std::io::Result<()> {
    let mut data = cap_sets()?;
    for &cap in caps {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        if on {
            data[word].effective |= bit & data[word].permitted;
        } else {
            data[word].effective &= !bit;
        }
    }
    set_cap_sets(&data)
}

/// The daemon's effective capabilities without [`FOR_EXEC_CHECKS`] (kept
/// permitted for the exec checks' children and [`kill_group`]). Call on
/// the main thread before any other starts: capabilities are per thread.
pub fn lower_effective() -> std::io::Result<()> {
    set_effective(&FOR_EXEC_CHECKS, false)
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

/// The only `PATH` an exec check's child gets (a check is run without the
/// daemon's environment).
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user exec checks run as when the file names none, if it exists
/// (the Debian package creates it); otherwise [`FALLBACK_SCRIPT_USER`].
pub const DEFAULT_SCRIPT_USER: &str = "lvs-check";
pub const FALLBACK_SCRIPT_USER: &str = "nobody";

/// A user of the passwd database, with every group it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Its primary group and its supplementary groups.
    pub groups: Vec<libc::gid_t>,
}

/// The user named `name`, `None` when there is no such user.
pub fn user_by_name(name: &str) -> std::io::Result<Option<User>> {
    let Ok(cname) = std::ffi::CString::new(name) else {
        return Ok(None);
    };
    let mut buf = vec![0 as libc::c_char; 1024];
    // SAFETY: passwd is plain old data; getpwnam_r fills it.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    loop {
        // SAFETY: every pointer is to memory we own, `buf.len()` is its
        // size; the strings it leaves in `pw` point into `buf`, which
        // outlives their one use below.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 => break,
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            e => return Err(std::io::Error::from_raw_os_error(e)),
        }
    }
    if found.is_null() {
        return Ok(None);
    }
    let (uid, gid) = (pw.pw_uid, pw.pw_gid);
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut n = groups.len() as libc::c_int;
        // SAFETY: `groups` holds `n` entries; getgrouplist writes at most
        // `n` and sets `n` to how many there are.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        let n = usize::try_from(n).unwrap_or(0);
        if rc >= 0 {
            groups.truncate(n);
            break;
        }
        if n <= groups.len() || n > 65536 {
            return Err(std::io::Error::other("getgrouplist failed"));
        }
        groups.resize(n, 0);
    }
    Ok(Some(User {
        name: name.to_string(),
        uid,
        gid,
        groups,
    }))
}

/// Who an exec check's child becomes: everything its `pre_exec` hook needs,
/// gathered before the fork (the hook may not allocate or read files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user switched to; `None` when the daemon is not root and cannot
    /// switch (the child stays the daemon's user, confined otherwise).
    pub user: Option<User>,
    /// The highest capability the kernel knows (`cap_last_cap`).
    cap_last_cap: libc::c_ulong,
}

impl Identity {
    /// `user` for a root daemon; a daemon that is not root keeps its own.
    pub fn new(user: Option<User>) -> Identity {
        let cap_last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            // Past the real last one the kernel answers EINVAL, which the
            // hook takes as the end.
            .unwrap_or(63);
        Identity {
            user: if euid() == 0 { user } else { None },
            cap_last_cap,
        }
    }

    /// The default: `lvs-check` if it exists, else `nobody` (only looked up
    /// as root: a daemon that is not root cannot switch anyway).
    pub fn default_user() -> std::io::Result<Identity> {
        if euid() != 0 {
            return Ok(Identity::new(None));
        }
        for name in [DEFAULT_SCRIPT_USER, FALLBACK_SCRIPT_USER] {
            if let Some(user) = user_by_name(name)? {
                return Ok(Identity::new(Some(user)));
            }
        }
        Err(std::io::Error::other(format!(
            "neither {DEFAULT_SCRIPT_USER} nor {FALLBACK_SCRIPT_USER} exists to run exec checks as"
        )))
    }
}

/// The exec checks' identity, one per process: set by the daemon at start
/// and at each reload, read by every exec check's spawn.
static SCRIPT_IDENTITY: std::sync::RwLock<Option<std::sync::Arc<Identity>>> =
    std::sync::RwLock::new(None);

/// Sets who exec checks run as from now on.
pub fn set_script_identity(who: Identity) {
    let mut slot = SCRIPT_IDENTITY.write().unwrap_or_else(|e| e.into_inner());
    *slot = Some(std::sync::Arc::new(who));
}

/// Who exec checks run as: what the daemon set, else the default, looked up
/// once (a failure is not kept: the next check looks again).
pub fn script_identity() -> std::io::Result<std::sync::Arc<Identity>> {
    if let Some(who) = SCRIPT_IDENTITY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        return Ok(who.clone());
    }
    let who = Identity::default_user()?;
    let mut slot = SCRIPT_IDENTITY.write().unwrap_or_else(|e| e.into_inner());
    Ok(slot.get_or_insert_with(|| std::sync::Arc::new(who)).clone())
}

/// Soft limit on open files an exec check's child starts with (the
/// daemon's raised one would be inherited).
const SCRIPT_NOFILE: libc::rlim_t = 1024;

/// Makes `cmd`'s child `who` before it runs the program: supplementary
/// groups, an empty capability bounding set (as root: it needs
/// CAP_SETPCAP), gid and uid, then for every child: no ambient
/// capabilities, `no_new_privs` (setuid programs and file capabilities
/// give nothing), at most [`SCRIPT_NOFILE`] open files. A step that fails
/// fails the spawn: a check never runs with more than this.
pub fn drop_privileges(cmd: &mut tokio::process::Command, who: &std::sync::Arc<Identity>) {
    let who = who.clone();
    let hook = move || -> std::io::Result<()> {
        // SAFETY: plain system calls taking integers or pointers into
        // `who` (owned by the closure, alive until exec) or to a local
        // struct; none allocates or locks, all are async-signal-safe.
        unsafe { confine_child(&who) }
    };
    // SAFETY: the hook runs in the forked child before exec and only makes
    // async-signal-safe system calls on data prepared beforehand (see
    // above); it allocates nothing (an `io::Error` from errno does not).
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// [`drop_privileges`]'s hook, in the child between fork and exec. Only
/// system calls from here on: the child of a multithreaded parent may not
/// allocate or take locks.
///
/// # Safety
/// Only between fork and exec, in the child.
unsafe fn confine_child(who: &Identity) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let errno = || std::io::Error::last_os_error().raw_os_error();
    // prctl is variadic and the kernel reads unsigned longs: the unused
    // arguments must be zero in all their bits (PR_SET_NO_NEW_PRIVS checks).
    const Z: libc::c_ulong = 0;
    // SAFETY: see the hook's comment in `drop_privileges`.
    unsafe {
        if let Some(user) = &who.user {
            // The daemon holds what follows needs permitted, not effective
            // (`lower_effective`): raise it in the child alone. capget and
            // capset are plain system calls on local data.
            let mut header = CapHeader {
                version: CAP_VERSION_3,
                pid: 0,
            };
            let mut data = [CapData::default(); 2];
            if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for d in &mut data {
                d.effective = d.permitted;
            }
            if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            check(libc::setgroups(user.groups.len(), user.groups.as_ptr()))?;
            // Before setuid: dropping from the bounding set takes
            // CAP_SETPCAP, which setuid takes away.
            for cap in 0..=who.cap_last_cap {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, Z, Z, Z) != 0 {
                    if errno() == Some(libc::EINVAL) {
                        break;
                    }
                    return Err(std::io::Error::last_os_error());
                }
            }
            check(libc::setresgid(user.gid, user.gid, user.gid))?;
            check(libc::setresuid(user.uid, user.uid, user.uid))?;
        }
        let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
        // EINVAL: a kernel before 4.3, without ambient capabilities.
        if libc::prctl(libc::PR_CAP_AMBIENT, clear, Z, Z, Z) != 0 && errno() != Some(libc::EINVAL) {
            return Err(std::io::Error::last_os_error());
        }
        check(libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            Z,
            Z,
            Z,
        ))?;
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
        lim.rlim_cur = lim.rlim_max.min(SCRIPT_NOFILE);
        check(libc::setrlimit(libc::RLIMIT_NOFILE, &lim))
    }
}
