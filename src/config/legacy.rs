//! Upstream opentracker's `opentracker.conf`: `key value` lines, `#`
//! comments. Accepted unchanged so operators can switch with their file.
//!
//! Upstream prints a warning for lines it does not understand and carries
//! on; here such a line is an error with its line number, because a tracker
//! that silently runs without its whitelist is worse than one that refuses
//! to start. Features this tracker does not have (live sync, FIFO-fed
//! access lists) are reported the same way, by name.

use std::path::Path;

use super::{Config, ConfigError};

/// Whether `text` is in upstream's format rather than TOML: its first
/// meaningful line is `key value`, not `[section]` or `key = value`. Only
/// the key decides, as an upstream value may hold `=` (a URL's query). A
/// file with no setting at all (upstream's sample is all comments) is
/// either, and is taken as upstream's, so it may join other `-f` files.
pub fn looks_legacy(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .map_or(true, |line| {
            let after_key = line.trim_start_matches(|c: char| !c.is_whitespace() && c != '=');
            !line.starts_with('[') && !after_key.trim_start().starts_with('=')
        })
}

/// The value of a key that takes one word (an address, a network, a
/// number). Upstream reads that word and ignores what follows it, so a
/// trailing comment is fine; other trailing text gets a warning here.
fn one_word<'a>(value: &'a str, key: &str, at: &str, warnings: &mut Vec<String>) -> &'a str {
    let Some((word, rest)) = value.split_once(char::is_whitespace) else {
        return value;
    };
    let rest = rest.trim();
    if !rest.starts_with('#') {
        warnings.push(format!(
            "{at}: {key}: ignoring {rest:?} after {word:?}, as upstream does"
        ));
    }
    word
}

fn parse_value<T: std::str::FromStr<Err = String>>(
    value: &str,
    key: &str,
    error: &dyn Fn(String) -> ConfigError,
) -> Result<T, ConfigError> {
    value
        .parse()
        .map_err(|e: String| error(format!("{key}: {e}")))
}

/// Keys whose TOML name differs from upstream's.
const RENAMED: [(&str, &str); 1] = [("listen.udp_workers", "listen.udp.workers")];

/// `message`, which names keys as TOML does, with upstream's names.
pub fn in_upstream_terms(message: &str) -> String {
    RENAMED
        .iter()
        .fold(message.to_string(), |text, (toml, upstream)| {
            text.replace(toml, upstream)
        })
}

/// The last line of `text` that sets `key` (a TOML name), if one does.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let key = RENAMED
        .iter()
        .find(|(toml, _)| *toml == key)
        .map_or(key, |(_, upstream)| upstream);
    let sets = |line: &str| line.split_whitespace().next() == Some(key);
    let last = text
        .lines()
        .enumerate()
        .filter(|(_, line)| sets(line))
        .last();
    last.map(|(index, _)| index + 1)
}

/// Applies the lines of a file in upstream's format to `config`, as
/// upstream reads each `-f` file in turn: listeners and networks add up,
/// other keys take the last value.
pub fn apply(text: &str, path: &Path, config: &mut Config) -> Result<(), ConfigError> {
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message: String| ConfigError::at(path, Some(index + 1), message);
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((key, value)) => (key, value.trim()),
            None => return Err(error(format!("{line}: missing value"))),
        };
        let at = format!("{}:{}", path.display(), index + 1);
        let value = match key {
            "listen.tcp_udp" | "listen.tcp" | "listen.udp" | "listen.udp.workers"
            | "access.stats" | "access.proxy" => one_word(value, key, &at, &mut config.warnings),
            _ => value,
        };
        match key {
            "listen.tcp_udp" => config.listen.add_both(parse_value(value, key, &error)?),
            "listen.tcp" => config.listen.add_tcp(parse_value(value, key, &error)?),
            "listen.udp" => config.listen.add_udp(parse_value(value, key, &error)?),
            "listen.udp.workers" => {
                config.listen.udp_workers = value
                    .parse()
                    .map_err(|_| error(format!("{key}: {value:?} is not a number")))?;
                // Upstream applies it only to sockets listed after it.
                if config.listen.udp.is_some() || config.listen.tcp_udp.is_some() {
                    config.warnings.push(format!(
                        "{at}: listen.udp.workers applies to every UDP listener, \
                         also those listed before it"
                    ));
                }
            }
            "access.whitelist" => config.access.whitelist = Some(value.into()),
            "access.blacklist" => config.access.blacklist = Some(value.into()),
            "access.stats" => config.access.stats.push(parse_value(value, key, &error)?),
            "access.stats_path" => config.access.stats_path = value.trim_start_matches('/').into(),
            "access.proxy" => config.access.proxy.push(parse_value(value, key, &error)?),
            "tracker.rootdir" => config.tracker.rootdir = Some(value.into()),
            "tracker.user" => config.tracker.user = value.into(),
            "tracker.redirect_url" => config.tracker.redirect_url = Some(value.into()),
            "batchsync.cluster.admin_ip" => config.warnings.push(format!(
                "{at}: batchsync.cluster.admin_ip is ignored (upstream ignores it too)"
            )),
            "access.fifo_add" => config.access.fifo_add = Some(value.into()),
            "access.fifo_delete" => config.access.fifo_delete = Some(value.into()),
            _ if key.starts_with("livesync.") => {
                return Err(error(format!(
                    "{key}: upstream's multicast live sync is not supported; the [cluster] \
                     section of a TOML configuration passes announces between trackers instead"
                )))
            }
            _ => return Err(error(format!("unknown key {key:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One file in upstream's format over the defaults.
    fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        apply(text, path, &mut config)?;
        Ok(config)
    }

    const UPSTREAM: &str = "# opentracker config file\n\
        listen.tcp_udp 0.0.0.0\n\
        listen.tcp_udp 192.168.0.1:80\n\
        listen.udp [::1]:6970\n\
        access.whitelist /etc/opentracker/whitelist.txt\n\
        access.stats 127.0.0.0/8\n\
        access.stats_path stats\n\
        access.proxy 10.0.0.1\n\
        access.fifo_add ./var/run/opentracker/adder.fifo\n\
        access.fifo_delete ./var/run/opentracker/deleter.fifo\n\
        tracker.rootdir /var/lib/opentracker\n\
        tracker.user _opentracker\n\
        tracker.redirect_url https://example.org/\n";

    #[test]
    fn reads_upstream_sample_lines() {
        assert!(looks_legacy(UPSTREAM));
        assert!(!looks_legacy("# c\n[tracker]\nuser = \"x\"\n"));
        let c = parse(UPSTREAM, Path::new("ot.conf")).unwrap();
        let l = c.listen.effective();
        assert_eq!(l.tcp.len(), 2);
        assert_eq!(l.udp.len(), 3);
        assert_eq!(l.tcp[0], "0.0.0.0:6969".parse().unwrap());
        assert_eq!(c.tracker.user, "_opentracker");
        assert_eq!(c.access.stats.len(), 1);
        assert!(c.access.whitelist.is_some());
        let fifo = c.access.fifo_add.as_deref();
        assert_eq!(fifo, Some(Path::new("./var/run/opentracker/adder.fifo")));
        assert!(c.access.fifo_delete.is_some());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse(
            "listen.tcp_udp 0.0.0.0\nbogus.key 1\n",
            Path::new("ot.conf"),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "ot.conf:2: unknown key \"bogus.key\"");
        let err = parse("listen.tcp nope\n", Path::new("ot.conf")).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(parse("livesync.cluster.listen 10.0.0.1\n", Path::new("f")).is_err());
        assert!(parse("tracker.user\n", Path::new("f")).is_err());
        assert!(parse("listen.udp.workers four\n", Path::new("f")).is_err());
    }

    #[test]
    fn told_from_toml_by_the_key_alone() {
        assert!(looks_legacy(
            "tracker.redirect_url https://x.example/?a=b\n"
        ));
        assert!(looks_legacy("access.whitelist /etc/ot/white=list\n"));
        assert!(!looks_legacy("tracker.user = \"x\"\n"));
        assert!(!looks_legacy("interval=5\n"));
        assert!(!looks_legacy("[tracker]\n"));
        // Nothing set: either, and so upstream's.
        assert!(looks_legacy("# listen.tcp_udp 0.0.0.0\n\n"));
        assert!(looks_legacy(""));
    }

    #[test]
    fn one_word_values_take_a_trailing_comment_and_warn_of_other_text() {
        let text = "listen.udp.workers 4\t# cores\nlisten.tcp_udp 127.0.0.1:80 # main\n\
                    access.stats 10.0.0.0/8 office\ntracker.rootdir /srv # kept whole\n";
        let c = parse(text, Path::new("f")).unwrap();
        assert_eq!(
            c.listen.effective().tcp,
            vec!["127.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(c.access.stats.len(), 1);
        assert_eq!(c.listen.udp_workers, 4);
        assert_eq!(
            c.tracker.rootdir,
            Some("/srv # kept whole".into()),
            "as upstream"
        );
        assert_eq!(
            c.warnings,
            ["f:3: access.stats: ignoring \"office\" after \"10.0.0.0/8\", as upstream does"]
        );
    }

    #[test]
    fn several_files_add_up() {
        let mut c = parse("listen.tcp 127.0.0.1:80\ntracker.user a\n", Path::new("a")).unwrap();
        apply(
            "listen.tcp 127.0.0.1:81\ntracker.user b\n",
            Path::new("b"),
            &mut c,
        )
        .unwrap();
        assert_eq!(c.listen.effective().tcp.len(), 2);
        assert_eq!(c.tracker.user, "b");
    }

    #[test]
    fn udp_workers_apply_to_all_udp_listeners_and_say_so_when_upstream_would_not() {
        let before = parse("listen.udp.workers 4\nlisten.udp 0.0.0.0\n", Path::new("f")).unwrap();
        assert_eq!(before.listen.udp_workers, 4);
        assert!(before.warnings.is_empty());
        let after = parse("listen.udp 0.0.0.0\nlisten.udp.workers 2\n", Path::new("f")).unwrap();
        assert_eq!(after.listen.udp_workers, 2);
        assert!(after.warnings[0].starts_with("f:2: listen.udp.workers applies to every"));
    }
}
