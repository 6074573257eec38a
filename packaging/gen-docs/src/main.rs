//! `gen-docs OUT [--date YYYY-MM-DD]`: writes OUT/man/man8/*.8 and the
//! bash, zsh and fish completions under OUT (paths as below /usr/share).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out: Option<PathBuf> = None;
    // Empty by default: a build date in the page would make two builds of the
    // same source differ.
    let mut date = String::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--date" => match args.next() {
                Some(d) => date = d,
                None => return usage("--date needs a value"),
            },
            s if s.starts_with('-') => return usage(&format!("unknown option {s}")),
            s if out.is_none() => out = Some(PathBuf::from(s)),
            s => return usage(&format!("unexpected argument {s}")),
        }
    }
    let Some(out) = out else {
        return usage("missing the output directory");
    };
    match gen_docs::write_all(&out, &date) {
        Ok(files) => {
            println!("gen-docs: {} files in {}", files.len(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-docs: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("gen-docs: {why}\nusage: gen-docs OUT_DIR [--date YYYY-MM-DD]");
    ExitCode::from(2)
}
