//! ipvsadm 1.31's argv processing (popt): short options clustered (`-Lnc`),
//! a short option's value attached (`-t1.2.3.4:80`, `-srr`) or in the next
//! word, long options as `--name value` or `--name=value` (whole names
//! only, as popt), `-p`'s optional value only from a next word that does
//! not start with `-`, words that are not options kept as arguments, `--`
//! ending the options. Rules lines and ipvsctl's ipvsadm mode both split
//! their words here.

use super::options::{Arg, OPTIONS};

/// One option as given: its id (the last field of [`OPTIONS`]), the text
/// that named it (`-t`, `--tcp-service`) and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    pub id: &'static str,
    pub given: String,
    pub value: Option<String>,
}

/// Why popt stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadOptKind {
    Unknown,
    /// A value given (`--name=value`) to an option that takes none.
    NoArgument,
    /// A required value missing at the end of the words.
    MissingArgument,
}

impl BadOptKind {
    /// popt's wording (`poptStrerror`).
    pub fn popt_text(self) -> &'static str {
        match self {
            BadOptKind::Unknown => "unknown option",
            BadOptKind::NoArgument => "option does not take an argument",
            BadOptKind::MissingArgument => "missing argument",
        }
    }
}

/// A popt error: the option text as given (for an unknown long option, the
/// whole word, `=value` included, as popt reports it) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadOpt {
    pub given: String,
    pub kind: BadOptKind,
}

/// The options in order, then the arguments that are not options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub opts: Vec<Opt>,
    pub args: Vec<String>,
    /// The error popt stopped at, after `opts` (ipvsadm reports it only
    /// once it has reached it).
    pub error: Option<BadOpt>,
}

/// Split argv (without the program name) like popt.
pub fn parse(words: &[String]) -> Parsed {
    let mut p = Parsed::default();
    if let Err(e) = split(words, &mut p) {
        p.error = Some(e);
    }
    p
}

fn split(words: &[String], p: &mut Parsed) -> Result<(), BadOpt> {
    let bad = |given: String, kind| BadOpt { given, kind };
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "--" {
            p.args.extend(words[i..].iter().cloned());
            break;
        }
        if let Some(l) = w.strip_prefix("--") {
            let (name, inline) = match l.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (l, None),
            };
            let Some(&(_, _, arg, id)) = OPTIONS.iter().find(|o| o.0 == name) else {
                return Err(bad(w.clone(), BadOptKind::Unknown));
            };
            let given = format!("--{name}");
            let value = match (arg, inline) {
                (Arg::No, Some(_)) => return Err(bad(given, BadOptKind::NoArgument)),
                (Arg::No, None) => None,
                (_, Some(v)) => Some(v),
                (_, None) => match next_value(arg, words, &mut i) {
                    Ok(v) => v,
                    Err(kind) => return Err(bad(given, kind)),
                },
            };
            p.opts.push(Opt { id, given, value });
        } else if w.len() > 1 && w.starts_with('-') {
            let chars: Vec<char> = w[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let given = format!("-{c}");
                let Some(&(_, _, arg, id)) = OPTIONS.iter().find(|o| o.1 == Some(c)) else {
                    return Err(bad(given, BadOptKind::Unknown));
                };
                let value = match arg {
                    Arg::No => None,
                    _ if j < chars.len() => {
                        let rest = chars[j..].iter().collect();
                        j = chars.len();
                        Some(rest)
                    }
                    _ => match next_value(arg, words, &mut i) {
                        Ok(v) => v,
                        Err(kind) => return Err(bad(given, kind)),
                    },
                };
                p.opts.push(Opt { id, given, value });
            }
        } else {
            p.args.push(w.clone());
        }
    }
    Ok(())
}

/// The value of an option that takes one, when none is attached: the next
/// word, which for an optional value (`-p`) must not look like an option.
fn next_value(arg: Arg, words: &[String], i: &mut usize) -> Result<Option<String>, BadOptKind> {
    match (arg, words.get(*i)) {
        (Arg::Required, None) => Err(BadOptKind::MissingArgument),
        (Arg::Optional, Some(v)) if v.starts_with('-') => Ok(None),
        (_, Some(v)) => {
            *i += 1;
            Ok(Some(v.clone()))
        }
        (_, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }
    fn ids(p: &Parsed) -> Vec<(&str, Option<&str>)> {
        p.opts.iter().map(|o| (o.id, o.value.as_deref())).collect()
    }

    #[test]
    fn clusters_and_attached_values() {
        let p = parse(&w("-Lnc"));
        assert_eq!(ids(&p), vec![("L", None), ("n", None), ("c", None)]);
        let p = parse(&w("-At203.0.113.1:80 -srr"));
        assert_eq!(
            ids(&p),
            vec![
                ("A", None),
                ("t", Some("203.0.113.1:80")),
                ("s", Some("rr"))
            ]
        );
        let p = parse(&w("-At 203.0.113.1:80"));
        assert_eq!(ids(&p), vec![("A", None), ("t", Some("203.0.113.1:80"))]);
    }

    #[test]
    fn long_options() {
        let p = parse(&w("--add-service --tcp-service=1.2.3.4:80 --scheduler rr"));
        assert_eq!(
            ids(&p),
            vec![("A", None), ("t", Some("1.2.3.4:80")), ("s", Some("rr"))]
        );
        assert_eq!(p.opts[1].given, "--tcp-service");
        assert!(p.error.is_none());
    }

    #[test]
    fn optional_persistent_value() {
        let p = parse(&w("-A -t 1.2.3.4:0 -p -s rr"));
        assert_eq!(ids(&p)[2], ("p", None));
        let p = parse(&w("-A -t 1.2.3.4:0 -p 30"));
        assert_eq!(ids(&p)[2], ("p", Some("30")));
        let p = parse(&w("-A -t 1.2.3.4:0 -p20"));
        assert_eq!(ids(&p)[2], ("p", Some("20")));
    }

    #[test]
    fn errors_and_arguments() {
        let p = parse(&w("-A --bogus"));
        assert_eq!(p.error.unwrap().given, "--bogus");
        let p = parse(&w("-A -q"));
        assert_eq!(p.error.unwrap().kind, BadOptKind::Unknown);
        let p = parse(&w("-A -t"));
        assert_eq!(p.error.unwrap().kind, BadOptKind::MissingArgument);
        let p = parse(&w("-C=1"));
        assert!(p.error.is_some());
        let p = parse(&w("--clear=1"));
        assert_eq!(
            p.error.unwrap().kind.popt_text(),
            "option does not take an argument"
        );
        let p = parse(&w("--set 1 2 3"));
        assert_eq!(p.args, w("1 2 3"));
        let p = parse(&w("-L -- -n"));
        assert_eq!(p.args, w("-n"));
        // Whole long names only, as popt.
        assert!(parse(&w("--add-serv")).error.is_some());
    }
}
