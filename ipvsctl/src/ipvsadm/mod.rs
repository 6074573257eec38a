//! ipvsadm mode: ipvsctl invoked as `ipvsadm`, `ipvsadm-save`,
//! `ipvsadm-restore`, or with an ipvsadm option first. argv is split the
//! way ipvsadm 1.31 (popt) splits it ([`argv`]), checked with ipvsadm's
//! command/option table, and then runs the same library calls as the
//! subcommands. Numeric only: names are never resolved (as if `-n`).

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set where ipvsadm itself would exit (a command-line error, try-help):
/// -R stops there.
static EXIT: AtomicBool = AtomicBool::new(false);

use lvs_ipvs::listing::{self, Columns, ListFormat};
use lvs_ipvs::rules::options::{self, option_name};
use lvs_ipvs::rules::{self, argv};
use lvs_ipvs::{Daemon, DaemonState, Error, Handle, LockError, LockGuard, Op};

/// The namespace's table lock, taken before the first change and held to
/// the end of the process (-R's lines run under one hold).
static TABLE_LOCK: Mutex<Option<LockGuard>> = Mutex::new(None);

/// Take the table lock ipvsctl and lvs-director take, so a change made by
/// a script through `ipvsadm` never lands inside lvs-director's batch (or
/// its undo). Without permission to lock (not root) the run goes on
/// unlocked: the kernel then refuses the change with ipvsadm's own error.
fn hold_table_lock(prog: &str) -> Result<(), u8> {
    let mut held = TABLE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if held.is_some() {
        return Ok(());
    }
    match lvs_ipvs::lock_table(None, None, lvs_ipvs::netns::LOCK_TIMEOUT) {
        Ok(guard) => {
            *held = Some(guard);
            Ok(())
        }
        Err(LockError::CreateDir { source, .. } | LockError::Open { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(fail(255, format!("{prog}: {e}"))),
    }
}

mod check;
mod conn;

/// ipvsadm's version line (`-v`).
pub const VERSION_LINE: &str = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)";

/// Run in ipvsadm mode; returns the exit code.
pub fn main(prog: &str, args: &[String]) -> u8 {
    match prog {
        "ipvsadm-save" => save_script(args),
        "ipvsadm-restore" => restore_script(args),
        _ => match process(prog, args, false) {
            Ok(()) => 0,
            Err(code) => code,
        },
    }
}

/// Debian's ipvsadm-save: `-n` or nothing, any other option prints help.
fn save_script(args: &[String]) -> u8 {
    for a in args {
        if a != "-n" && a.starts_with('-') {
            eprintln!("ipvsadm-save: Script to save the IPVS table to stdout.");
            eprintln!("   With the -n option, prints out the table in numeric format.");
            return 1;
        }
    }
    main("ipvsadm", &["-S".to_string(), "-n".to_string()])
}

/// Debian's ipvsadm-restore: drop `#` lines, flush, then `ipvsadm -R`.
fn restore_script(_args: &[String]) -> u8 {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let kept: String = input
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let _ = main("ipvsadm", &["-C".to_string()]);
    match restore_lines("ipvsadm", &kept) {
        Ok(()) => 0,
        Err(c) => c,
    }
}

/// -R's input, line by line.
fn restore_lines(prog: &str, text: &str) -> Result<(), u8> {
    let mut rc = Ok(());
    for line in text.lines() {
        let Ok(words) = rules::split_words(line) else {
            continue;
        };
        if words.is_empty() {
            continue;
        }
        rc = process(prog, &words, true);
        if EXIT.load(Ordering::Relaxed) {
            return rc;
        }
    }
    rc
}

fn fail(code: u8, msg: impl std::fmt::Display) -> u8 {
    eprintln!("{msg}");
    if code != 255 {
        EXIT.store(true, Ordering::Relaxed);
    }
    code
}

fn tryhelp(prog: &str) -> u8 {
    eprintln!("Try `{prog} -h' or '{prog} --help' for more information.");
    EXIT.store(true, Ordering::Relaxed);
    255
}

/// ipvsadm's `process_options` for one command line (`in_restore`: a
/// line of -R's input).
fn process(prog: &str, args: &[String], in_restore: bool) -> Result<(), u8> {
    if args.is_empty() {
        return list(&[], None);
    }
    let p = argv::parse(args);
    let Some(first) = p.opts.first() else {
        return Err(tryhelp(prog));
    };
    match first.id {
        "h" => {
            print!("{}", usage(prog));
            return Ok(());
        }
        "v" => {
            println!("{VERSION_LINE}");
            return Ok(());
        }
        _ => {}
    }
    let Some(cmd) = options::command_name(first.id) else {
        return Err(tryhelp(prog));
    };
    for o in &p.opts[1..] {
        if options::command_name(o.id).is_some() {
            return Err(fail(2, format!("invalid option `{}'", o.given)));
        }
        // ipvsadm takes marks 1..2^32-1 only (its -S prints the upper
        // half as negative numbers, which it then refuses).
        if o.id == "f" {
            let v = o.value.as_deref().unwrap_or("");
            if v.parse::<u32>().map_or(true, |m| m == 0) {
                return Err(fail(2, format!("invalid fwmark value `{v}' specified")));
            }
        }
    }
    if let Some(e) = &p.error {
        return Err(fail(255, format!("{}: {}", e.given, e.kind.popt_text())));
    }
    check::check(cmd, &p.opts[1..]).map_err(|m| fail(2, m))?;
    match first.id {
        "L" => list(&p.opts[1..], Some(&p.args)),
        "S" => {
            check_only(&p, &["n"], "save")?;
            let h = connect()?;
            let table = h.table().map_err(kernel)?;
            print!("{}", rules::render_save(&table));
            Ok(())
        }
        "R" => {
            // ipvsadm's restore_table: a -R inside -R is refused; each line
            // runs as its own command line; a command-line error ends the
            // run (ipvsadm exits), a kernel error is reported and the run
            // carries on; the exit code is the last line's.
            if in_restore {
                return Err(tryhelp(prog));
            }
            check_only(&p, &[], "restore")?;
            hold_table_lock(prog)?;
            let mut text = String::new();
            let _ = std::io::stdin().read_to_string(&mut text);
            restore_lines(prog, &text)
        }
        "start-daemon" | "stop-daemon" => daemon(&p),
        _ => {
            let op = rules::parse_words(args).map_err(|e| fail(2, e.message))?;
            hold_table_lock(prog)?;
            let h = connect()?;
            h.apply(&op).map_err(|e| fail(255, e.ipvsadm_message()))
        }
    }
}

fn check_only(p: &argv::Parsed, allowed: &[&str], cmd: &str) -> Result<(), u8> {
    for o in &p.opts[1..] {
        if !allowed.contains(&o.id) {
            return Err(fail(
                2,
                format!(
                    "Illegal '{}' option with the '{cmd}' command",
                    option_name(o.id)
                ),
            ));
        }
    }
    if let Some(a) = p.args.first() {
        return Err(fail(2, format!("unexpected argument {a}")));
    }
    Ok(())
}

fn connect() -> Result<Handle, u8> {
    Handle::connect(None).map_err(kernel)
}

fn kernel(e: Error) -> u8 {
    fail(255, e.ipvsadm_message())
}

fn daemon(p: &argv::Parsed) -> Result<(), u8> {
    let first = &p.opts[0];
    let state = match first.value.as_deref() {
        Some("master") => DaemonState::Master,
        Some("backup") => DaemonState::Backup,
        _ if first.id == "start-daemon" => {
            return Err(fail(2, "illegal start-daemon parameter specified"));
        }
        _ => return Err(fail(2, "illegal start_daemon specified")),
    };
    let mut ifn = "eth0".to_string();
    let mut syncid = 0u32;
    for o in &p.opts[1..] {
        match o.id {
            "mcast-interface" => ifn = o.value.clone().unwrap_or_default(),
            "syncid" => {
                syncid = o
                    .value
                    .as_deref()
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|v| *v <= 255)
                    .ok_or_else(|| fail(2, "illegal syncid specified"))?
            }
            other => {
                return Err(fail(
                    2,
                    format!(
                        "Illegal '{}' option with the '{}' command",
                        option_name(other),
                        first.id
                    ),
                ));
            }
        }
    }
    let h = connect()?;
    if first.id == "start-daemon" {
        h.start_daemon(&Daemon::new(state, ifn, syncid))
            .map_err(kernel)
    } else {
        h.stop_daemon(state).map_err(kernel)
    }
}

fn list(opts: &[argv::Opt], args: Option<&Vec<String>>) -> Result<(), u8> {
    let mut formats: Vec<&str> = Vec::new();
    let (mut exact, mut nosort, mut conn, mut timeout, mut daemons) =
        (false, false, false, false, false);
    let mut persistent = false;
    let mut selector: Vec<String> = vec!["-D".into()];
    for o in opts {
        match o.id {
            "n" | "sort" => {}
            "c" => conn = true,
            "X" => exact = true,
            "nosort" => nosort = true,
            "timeout" => timeout = true,
            "daemon" => daemons = true,
            "stats" | "rate" | "thresholds" | "persistent-conn" | "tun-info" => {
                persistent |= o.id == "persistent-conn";
                formats.push(o.id);
            }
            "t" | "u" | "sctp" | "f" | "6" => {
                selector.push(o.given.clone());
                if let Some(v) = &o.value {
                    selector.push(v.clone());
                }
            }
            other => {
                return Err(fail(
                    2,
                    format!(
                        "Illegal '{}' option with the 'list' command",
                        option_name(other)
                    ),
                ));
            }
        }
    }
    if let Some(a) = args.and_then(|a| a.first()) {
        return Err(fail(2, format!("unexpected argument {a}")));
    }
    // Several column sets: ipvsadm's precedence.
    let columns = [
        ("stats", Columns::Stats),
        ("rate", Columns::Rate),
        ("thresholds", Columns::Thresholds),
        ("persistent-conn", Columns::PersistentConn),
        ("tun-info", Columns::TunInfo),
    ]
    .into_iter()
    .find(|(id, _)| formats.contains(id))
    .map_or(Columns::Plain, |(_, c)| c);
    let fmt = ListFormat {
        columns,
        exact,
        nosort,
    };
    let h = connect()?;
    if conn {
        print!("{}", conn::render(persistent).map_err(|e| fail(255, e))?);
        return Ok(());
    }
    if selector.len() > 1 {
        let k = match rules::parse_words(&selector) {
            Ok(Op::DeleteService(k)) => k,
            Ok(_) => unreachable!(),
            Err(e) => return Err(fail(2, e.message)),
        };
        let svc = match h.service(&k) {
            Ok(s) => s,
            Err(Error::NoSuchService { .. }) => return Err(fail(1, "No such service")),
            Err(e) => return Err(kernel(e)),
        };
        let dests = h.destinations(&k).map_err(kernel)?;
        print!("{}", listing::render_services(&[(svc, dests)], &fmt));
        return Ok(());
    }
    if timeout {
        print!(
            "{}",
            listing::render_timeouts(&h.timeouts().map_err(kernel)?)
        );
        return Ok(());
    }
    if daemons {
        print!("{}", listing::render_daemons(&h.daemons().map_err(kernel)?));
        return Ok(());
    }
    let info = h.info().map_err(kernel)?;
    let table = h.table().map_err(kernel)?;
    print!("{}", listing::render_list(&info, &table, &fmt));
    Ok(())
}

/// ipvsadm's usage text (`-h`).
fn usage(prog: &str) -> String {
    include_str!("usage.txt").replace("ipvsadm", prog)
}
