//! lvs-director's exit codes, in one place: every subcommand maps its
//! failures here, and director/README.md documents the same table.

use std::process::ExitCode;

/// How a command of lvs-director ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done (`run`: stopped by SIGTERM or SIGINT).
    Ok,
    /// The daemon refused a control request (an unknown service or server:
    /// the message says which).
    Refused,
    /// A bad command line or file (`run`: the admin drains file too, which
    /// it will not start without): nothing was changed.
    Usage,
    /// The control socket is taken (another daemon answers there, or its
    /// path holds something that is not a socket) or no daemon answers on
    /// it; `apply` while a daemon answers on it (without `--force`); the
    /// metrics address cannot be bound; `--netns` cannot be entered.
    Unavailable,
    /// The kernel or nft refused, or IPVS cannot be opened or read (`apply`
    /// put the previous table back).
    Kernel,
}

impl Exit {
    /// The process's exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Refused => 1,
            Exit::Usage => 2,
            Exit::Unavailable => 4,
            Exit::Kernel => 255,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
