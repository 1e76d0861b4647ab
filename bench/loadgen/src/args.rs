//! A small command-line parser: `--name value` options, `--flag` switches and,
//! after `--`, a trailing command. Hand-rolled to keep the dependency list short.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
    /// Everything after a bare `--`.
    pub trailing: Vec<String>,
}

impl Args {
    /// Parses `raw`, accepting only the option names in `valued` (which take a
    /// value) and `switches` (which do not).
    pub fn parse(raw: &[String], valued: &[&str], switches: &[&str]) -> Result<Args, String> {
        let mut args = Args {
            values: HashMap::new(),
            flags: Vec::new(),
            trailing: Vec::new(),
        };
        let mut iter = raw.iter();
        while let Some(arg) = iter.next() {
            if arg == "--" {
                args.trailing = iter.cloned().collect();
                break;
            }
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            if switches.contains(&name) {
                args.flags.push(name.to_owned());
            } else if valued.contains(&name) {
                let value = iter
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                args.values.insert(name.to_owned(), value.clone());
            } else {
                return Err(format!("unknown option --{name}"));
            }
        }
        Ok(args)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// The value of `--name`, parsed, or `default` when it was not given.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|e| format!("--{name} {text:?}: {e}")),
        }
    }

    /// The value of `--name`, which must be given.
    pub fn require<T: FromStr>(&self, name: &str) -> Result<T, String>
    where
        T::Err: Display,
    {
        let text = self
            .values
            .get(name)
            .ok_or_else(|| format!("--{name} is required"))?;
        text.parse().map_err(|e| format!("--{name} {text:?}: {e}"))
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn parses_values_switches_and_trailing_command() {
        let raw = strings(&["--torrents", "5", "--gzip", "--", "cmd", "--x"]);
        let args = Args::parse(&raw, &["torrents"], &["gzip"]).unwrap();
        assert_eq!(args.get("torrents", 1u32).unwrap(), 5);
        assert_eq!(args.get("peers", 7u32).unwrap(), 7);
        assert!(args.flag("gzip"));
        assert_eq!(args.trailing, strings(&["cmd", "--x"]));
    }

    #[test]
    fn rejects_unknown_and_incomplete_options() {
        assert!(Args::parse(&strings(&["--nope"]), &[], &[]).is_err());
        assert!(Args::parse(&strings(&["--torrents"]), &["torrents"], &[]).is_err());
        let args = Args::parse(&strings(&["--torrents", "x"]), &["torrents"], &[]).unwrap();
        assert!(args.get("torrents", 1u32).is_err());
    }
}
