//! Upstream opentracker's command line, plus a few long options.
//!
//! `-f` loads a file; the other flags override it. As upstream, `-i` sets the
//! address for the `-p`/`-P` flags after it, listeners from flags add to
//! those of the file, and when neither binds anything, the last `-i` address
//! is served on port 6969. Several `-f` files in upstream's format add up in
//! order, as upstream's do.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use super::types::{bare_ip, unreadable_address};
use super::{Config, ConfigError, Invalid, ListenAddr, Listeners, LogTarget, DEFAULT_PORT};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    /// Validate the configuration and print it.
    CheckConfig(Box<Config>),
    /// Probe a running tracker (for container health checks).
    Healthcheck(HealthcheckAt),
    Help,
    Version,
}

/// Where `--healthcheck` is to ask a running tracker, as the command line
/// says; the server's health check picks the addresses to ask from it.
#[derive(Debug, PartialEq, Eq)]
pub enum HealthcheckAt {
    /// The address given, for both protocols.
    Address(SocketAddr),
    /// Where the configuration files and flags listen (the default
    /// listeners with neither).
    Listeners(Listeners),
}

pub const USAGE: &str = "\
Usage: opentracker [-f config] [-i ip] [-p port] [-P port] [-A ip[/bits]] [-r url]
                   [-d dir] [-u user] [-w file] [-b file] [-l file]
                   [--log stderr|syslog]
       opentracker --check-config [-f config] [flags]
       opentracker --healthcheck [ip:port | -f config [flags]]
       opentracker -v | --version | -h | --help";

pub const HELP: &str = "
An opentracker-compatible BitTorrent tracker (HTTP and UDP, IPv4 and IPv6).

  -f file   read a configuration file (TOML, or upstream's opentracker.conf;
            several of upstream's add up in order)
  -i ip     address for the -p and -P flags that follow (default ::); with
            no -p, -P or listener in the file, serve port 6969 on it
  -p port   serve HTTP on a TCP port (may repeat)
  -P port   serve UDP on a port (may repeat)
  -A ip     allow an address or network to read /stats and to act as proxy
  -r url    redirect GET / to this URL
  -d dir    chroot into dir when started as root (chdir otherwise)
  -u user   run as this user when started as root (default nobody)
  -w file   whitelist: only these info hashes are tracked
  -b file   blacklist: these info hashes are refused (with -w: the
            whitelist's, less these)
  -l file   load a state dump (/stats?mode=statedump) at start
  -v, --version        print the version
  -h, --help           this help
  --check-config       validate the configuration and read the lists it
                       names, print it, and exit
  --healthcheck [addr] exit 0 if a tracker answers UDP and HTTP at addr
                       (default 127.0.0.1:6969); with -f and no addr, ask
                       where the configuration listens instead: its first
                       UDP and first TCP listener (a wildcard on 127.0.0.1)
  --log stderr|syslog  where log lines go (default: syslog unless on a terminal)

Without -f, -p or -P it serves HTTP and UDP on [::]:6969 with every torrent tracked.
";

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, ConfigError> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| ConfigError::new(format!("argument {a:?} is not UTF-8")))
        })
        .collect::<Result<_, _>>()?;
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut files = Vec::new();
    let mut check = false;
    let mut healthcheck = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--version" => return Ok(Command::Version),
            "--check-config" => check = true,
            "--healthcheck" => {
                let addr = match args.get(i) {
                    Some(addr) if !addr.starts_with('-') => {
                        i += 1;
                        let addr = addr
                            .parse::<ListenAddr>()
                            .map_err(|e| ConfigError::new(format!("--healthcheck: {e}")))?;
                        Some(addr.0)
                    }
                    _ => None,
                };
                healthcheck = Some(addr);
            }
            "--log" => {
                let value = args
                    .get(i)
                    .ok_or_else(|| ConfigError::new("--log needs stderr or syslog"))?;
                i += 1;
                flags.push(("--log".into(), value.clone()));
            }
            live_sync if live_sync.starts_with("-s") => {
                return Err(ConfigError::new(
                    "-s: upstream's live sync is not supported; the [cluster] section of a \
                     TOML configuration passes announces between trackers instead",
                ))
            }
            _ => {
                let flag = arg
                    .get(..2)
                    .filter(|f| f.starts_with('-') && "fipPArduwbl".contains(&f[1..]));
                let Some(flag) = flag else {
                    return Err(ConfigError::new(format!("unknown argument {arg:?}")));
                };
                let value = if arg.len() > 2 {
                    arg[2..].to_string()
                } else {
                    i += 1;
                    args.get(i - 1)
                        .cloned()
                        .ok_or_else(|| ConfigError::new(format!("{flag} needs a value")))?
                };
                if flag == "-f" {
                    files.push(PathBuf::from(value));
                } else {
                    flags.push((flag.to_string(), value));
                }
            }
        }
    }
    if let Some(addr) = healthcheck {
        return healthcheck_at(addr, &files, &flags).map(Command::Healthcheck);
    }
    let (mut config, texts) = Config::read_all(&files)?;
    apply(&mut config, &flags)?;
    let located = |invalid: Invalid| match last_flag_setting(&flags, invalid.keys()) {
        Some((flag, value)) => ConfigError::new(format!("{flag} {value:?}: {}", invalid.message)),
        None => invalid.in_files(&texts),
    };
    config.validate().map_err(located)?;
    config.unbindable = config
        .listen
        .check_bindable()
        .err()
        .map(|invalid| located(invalid).to_string());
    let advice = config.advice();
    config.warnings.extend(advice);
    Ok(if check {
        Command::CheckConfig(Box::new(config))
    } else {
        Command::Run(Box::new(config))
    })
}

/// What `--healthcheck` asks: the address given, or else where the
/// configuration files and flags listen. Only the configuration files are
/// read: no list or state file, which a health check has no use for and
/// may not be allowed to read.
fn healthcheck_at(
    addr: Option<SocketAddr>,
    files: &[PathBuf],
    flags: &[(String, String)],
) -> Result<HealthcheckAt, ConfigError> {
    let listening = |flag: &str| matches!(flag, "-i" | "-p" | "-P");
    if let Some(addr) = addr {
        if !files.is_empty() || flags.iter().any(|(flag, _)| listening(flag)) {
            return Err(ConfigError::new(format!(
                "--healthcheck {addr}: give an address or the configuration (-f, -i, -p, -P), \
                 not both"
            )));
        }
        return Ok(HealthcheckAt::Address(addr));
    }
    let (mut config, _) = Config::read_all(files)?;
    apply(&mut config, flags)?;
    Ok(HealthcheckAt::Listeners(config.listen.effective()))
}

/// The settings each flag writes, for naming the flag behind an error.
fn keys_set_by(flag: &str) -> &'static [&'static str] {
    match flag {
        "-p" => &["listen.tcp"],
        "-P" => &["listen.udp"],
        "-A" => &["access.stats", "access.proxy"],
        "-r" => &["tracker.redirect_url"],
        "-d" => &["tracker.rootdir"],
        "-u" => &["tracker.user"],
        "-l" => &["tracker.state_file"],
        "-w" => &["access.whitelist"],
        "-b" => &["access.blacklist"],
        "--log" => &["log.target"],
        _ => &[],
    }
}

/// The last flag that set one of `keys`: flags apply after the files, so
/// it, not a file's line, is what the value came from.
fn last_flag_setting<'f>(
    flags: &'f [(String, String)],
    keys: &[&str],
) -> Option<&'f (String, String)> {
    flags
        .iter()
        .rev()
        .find(|(flag, _)| keys_set_by(flag).iter().any(|key| keys.contains(key)))
}

fn apply(config: &mut Config, flags: &[(String, String)]) -> Result<(), ConfigError> {
    let mut ip = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let mut ip_given = false;
    for (flag, value) in flags {
        let bad = |what: &str| ConfigError::new(format!("{flag} {value}: {what}"));
        let port = || value.parse::<u16>().map_err(|_| bad("not a port number"));
        match flag.as_str() {
            "-i" => {
                ip = listen_ip(value).map_err(|e| bad(&e))?;
                ip_given = true;
            }
            "-p" => config
                .listen
                .add_tcp(ListenAddr(SocketAddr::new(ip, port()?))),
            "-P" => config
                .listen
                .add_udp(ListenAddr(SocketAddr::new(ip, port()?))),
            "-A" => {
                let network = value.parse().map_err(|e: String| bad(&e))?;
                config.access.stats.push(network);
                config.access.proxy.push(network);
            }
            "-r" => config.tracker.redirect_url = Some(value.clone()),
            "-d" => config.tracker.rootdir = Some(value.into()),
            "-u" => config.tracker.user = value.clone(),
            "-l" => config.tracker.state_file = Some(value.into()),
            "-w" => {
                config.access.whitelist = Some(value.into());
            }
            "-b" => {
                config.access.blacklist = Some(value.into());
            }
            "--log" => {
                config.log.target = match value.as_str() {
                    "stderr" => LogTarget::Stderr,
                    "syslog" => LogTarget::Syslog,
                    _ => return Err(bad("expected stderr or syslog")),
                }
            }
            _ => unreachable!("flags are filtered when parsed"),
        }
    }
    // Upstream binds its default port on the last -i address rather than
    // on every interface, so `-i 127.0.0.1` alone stays local.
    if ip_given && config.listen.is_default() {
        let default = ListenAddr(SocketAddr::new(ip, DEFAULT_PORT));
        config.listen.add_both(default);
    }
    Ok(())
}

/// The address `-i` names. As upstream's, it takes no port: one written
/// after it would be dropped for the -p/-P ports or 6969, so it is refused.
fn listen_ip(text: &str) -> Result<IpAddr, String> {
    if let Ok(addr) = text.trim().parse::<SocketAddr>() {
        return Err(format!(
            "-i takes an address without a port ({}); ports go with -p (HTTP) and -P (UDP)",
            addr.ip()
        ));
    }
    bare_ip(text).ok_or_else(|| {
        unreadable_address(
            text,
            "an address",
            "ip or [ipv6]",
            // An IpAddr has no scope id; a SocketAddr in the file keeps one.
            "-i takes no scope id (a numeric one is taken in the configuration file's \
             listen addresses, as [fe80::1%2]:6969)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, ConfigError> {
        match parse(args.iter().map(OsString::from))? {
            Command::Run(config) | Command::CheckConfig(config) => Ok(*config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_without_arguments() {
        assert_eq!(run(&[]).unwrap(), Config::default());
    }

    #[test]
    fn ip_applies_to_later_ports() {
        let c = run(&["-p", "80", "-i", "127.0.0.1", "-P", "6969", "-p6970"]).unwrap();
        let l = c.listen.effective();
        assert_eq!(
            l.tcp,
            vec![
                "[::]:80".parse().unwrap(),
                "127.0.0.1:6970".parse().unwrap()
            ]
        );
        assert_eq!(l.udp, vec!["127.0.0.1:6969".parse().unwrap()]);
    }

    #[test]
    fn ip_alone_serves_the_default_port_on_it() {
        let l = run(&["-i", "::1", "-i", "127.0.0.1"])
            .unwrap()
            .listen
            .effective();
        let local: SocketAddr = "127.0.0.1:6969".parse().unwrap();
        assert_eq!((l.tcp, l.udp), (vec![local], vec![local]));
        let l = run(&["-i", "127.0.0.1", "-P", "7000"])
            .unwrap()
            .listen
            .effective();
        assert!(l.tcp.is_empty(), "a -P binds, so no default: {l:?}");
    }

    #[test]
    fn ip_takes_no_port() {
        for (flag, ip) in [("[::1]", "::1"), ("::1", "::1"), ("127.0.0.1", "127.0.0.1")] {
            let l = run(&["-i", flag, "-p", "7000"]).unwrap().listen.effective();
            let expected = SocketAddr::new(ip.parse().unwrap(), 7000);
            assert_eq!(l.tcp, vec![expected], "{flag}");
        }
        for (args, said) in [
            (
                &["-i", "[::1]:24021"][..],
                "-i [::1]:24021: -i takes an address without a port (::1)",
            ),
            (
                &["-i127.0.0.1:24021", "-p", "24022"],
                "-i 127.0.0.1:24021: -i takes an address without a port (127.0.0.1)",
            ),
        ] {
            let err = run(args).unwrap_err().to_string();
            assert_eq!(err, format!("{said}; ports go with -p (HTTP) and -P (UDP)"));
        }
        assert_eq!(
            run(&["-i", "host"]).unwrap_err().to_string(),
            "-i host: \"host\" is not an address (expected ip or [ipv6])"
        );
    }

    #[test]
    fn ip_takes_no_scope_id() {
        assert_eq!(
            run(&["-i", "fe80::1%1"]).unwrap_err().to_string(),
            "-i fe80::1%1: \"fe80::1%1\" is not an address: -i takes no scope id (a numeric \
             one is taken in the configuration file's listen addresses, as [fe80::1%2]:6969)"
        );
    }

    #[test]
    fn both_wildcards_from_flags_on_one_port_are_refused() {
        let config = run(&["-i", "0.0.0.0", "-P", "26001", "-i", "::", "-P26001"]).unwrap();
        assert_eq!(
            config.unbindable.unwrap(),
            "-P \"26001\": listen: [::]:26001 already serves IPv4 over UDP (it is opened dual \
             stack, or as 0.0.0.0:26001 on a host without IPv6), so drop 0.0.0.0:26001"
        );
    }

    #[test]
    fn a_peer_timeout_shorter_than_the_interval_is_warned_of() {
        let dir = std::env::temp_dir().join(format!("ot-cli-{}", std::process::id()));
        std::fs::write(&dir, "[tracker]\ninterval = 3600\npeer_timeout = 600\n").unwrap();
        let c = run(&["-f", dir.to_str().unwrap()]).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert!(
            c.warnings[0].contains("peers are dropped before"),
            "{:?}",
            c.warnings
        );
        assert!(
            run(&[]).unwrap().warnings.is_empty(),
            "not with the defaults"
        );
    }

    /// The warnings a configuration file with `text` gets.
    fn warnings(text: &str) -> Vec<String> {
        let file = std::env::temp_dir().join(format!(
            "ot-cli-warnings-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&file, text).unwrap();
        let c = run(&["-f", file.to_str().unwrap()]).unwrap();
        std::fs::remove_file(&file).unwrap();
        c.warnings
    }

    #[test]
    fn a_save_interval_without_save_state_is_warned_of() {
        let unsaved = warnings("[tracker]\nstate_file = \"s\"\nsave_interval = 60\n");
        assert!(
            unsaved[0].contains("save_interval (60) does nothing without"),
            "{unsaved:?}"
        );
        let saved = "[tracker]\nstate_file = \"s\"\nsave_state = true\nsave_interval = 60\n";
        assert!(warnings(saved).is_empty());
    }

    #[test]
    fn rate_limit_settings_without_a_rate_limit_are_warned_of() {
        for unlimited in [
            "[access]\nrate_limit_burst = 100\n",
            "[access]\nrate_limit_ipv6_prefix = 64\n",
        ] {
            let said = warnings(unlimited);
            assert!(
                said.len() == 1 && said[0].contains("do nothing without access.rate_limit"),
                "{unlimited}: {said:?}"
            );
        }
        assert!(warnings("[access]\nrate_limit = 10\nrate_limit_burst = 100\n").is_empty());
    }

    #[test]
    fn live_sync_flag_points_to_cluster() {
        for args in [&["-s", "9696"][..], &["-s9696"]] {
            let err = run(args).unwrap_err().to_string();
            assert!(err.contains("[cluster]"), "{args:?}: {err}");
        }
    }

    #[test]
    fn flags_and_errors() {
        let c = run(&[
            "-A",
            "10.0.0.0/8",
            "-u",
            "ot",
            "-d",
            "/srv",
            "-l",
            "state",
            "-w",
            "list",
            "-r",
            "http://x/",
        ])
        .unwrap();
        assert_eq!(c.access.stats.len(), 1);
        assert_eq!(c.tracker.state_file, Some("state".into()));
        assert_eq!(c.tracker.user, "ot");
        assert!(c.access.whitelist.is_some());
        assert!(run(&["-x"]).is_err());
        assert!(run(&["-p"]).is_err());
        assert!(run(&["-p", "99999"]).is_err());
        assert!(run(&["-f", "/nonexistent/file"]).is_err());
        assert!(matches!(parse([OsString::from("-h")]), Ok(Command::Help)));
    }

    fn healthcheck(args: &[&str]) -> Result<HealthcheckAt, ConfigError> {
        match parse(args.iter().map(OsString::from))? {
            Command::Healthcheck(at) => Ok(at),
            other => panic!("{other:?}"),
        }
    }

    fn address(text: &str) -> HealthcheckAt {
        HealthcheckAt::Address(text.parse().unwrap())
    }

    fn listening(tcp: &[&str], udp: &[&str]) -> HealthcheckAt {
        let parse = |list: &[&str]| list.iter().map(|a| a.parse().unwrap()).collect();
        HealthcheckAt::Listeners(Listeners {
            tcp: parse(tcp),
            udp: parse(udp),
        })
    }

    #[test]
    fn healthcheck_asks_the_address_given_or_else_the_default_port() {
        let default = listening(&["[::]:6969"], &["[::]:6969"]);
        assert_eq!(healthcheck(&["--healthcheck"]).unwrap(), default);
        let given = healthcheck(&["--healthcheck", "[::1]:7000"]).unwrap();
        assert_eq!(given, address("[::1]:7000"));
        // The flags of a run around it, as a HEALTHCHECK may copy them.
        let logged = healthcheck(&["--log", "stderr", "--healthcheck", "127.0.0.2:80"]);
        assert_eq!(logged.unwrap(), address("127.0.0.2:80"));
        let bad = healthcheck(&["--healthcheck", "nowhere"]).unwrap_err();
        assert!(bad.to_string().starts_with("--healthcheck: "), "{bad}");
    }

    #[test]
    fn healthcheck_with_a_config_asks_where_it_listens_and_reads_nothing_else() {
        let dir = std::env::temp_dir().join(format!("ot-cli-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_string()
        };
        // Lists and a state file that do not exist: not read, so no error.
        let both = file(
            "both.toml",
            "[listen]\ntcp_udp = [\"[::]:23071\"]\n[access]\nwhitelist = \"/nonexistent/list\"\n\
             [tracker]\nstate_file = \"/nonexistent/state\"\nsave_state = true\n",
        );
        let udp_only = file("udp.toml", "[listen]\nudp = [\"127.0.0.2:23072\"]\n");
        let tcp_only = file("tcp.conf", "listen.tcp 0.0.0.0:23073\n");
        let on_both = listening(&["[::]:23071"], &["[::]:23071"]);
        for args in [
            &["--healthcheck", "-f", &both][..],
            &["-f", &both, "--healthcheck"],
            &[&format!("-f{both}"), "--healthcheck"],
            &["--healthcheck", "-f", &both, "--log", "stderr"],
        ] {
            assert_eq!(healthcheck(args).unwrap(), on_both, "{args:?}");
        }
        let udp = healthcheck(&["--healthcheck", "-f", &udp_only]).unwrap();
        assert_eq!(udp, listening(&[], &["127.0.0.2:23072"]));
        let tcp = healthcheck(&["--healthcheck", "-f", &tcp_only]).unwrap();
        assert_eq!(tcp, listening(&["0.0.0.0:23073"], &[]));
        // Flags that bind count, as they would for the tracker.
        let flags = healthcheck(&["--healthcheck", "-i", "127.0.0.3", "-P", "23074"]).unwrap();
        assert_eq!(flags, listening(&[], &["127.0.0.3:23074"]));
        let both_ways = healthcheck(&["--healthcheck", "127.0.0.1:6969", "-f", &both]);
        assert!(
            both_ways.unwrap_err().to_string().contains("not both"),
            "an address and a config disagree"
        );
        let missing = healthcheck(&["--healthcheck", "-f", "/nonexistent/ot.toml"]).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/ot.toml"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_settings_blame_the_flag_that_set_them_and_flags_complete_a_file() {
        let err = run(&["-u", "ot", "-u", ""]).unwrap_err();
        assert_eq!(err.to_string(), "-u \"\": tracker.user must not be empty");
        let err = run(&["-d", ""]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "-d \"\": tracker.rootdir must not be empty: leave it out for none"
        );
        let file = std::env::temp_dir().join(format!("ot-cli-fifo-{}", std::process::id()));
        std::fs::write(
            &file,
            "[tracker]\nuser = \"ot\"\n[access]\nfifo_add = \"/run/a\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let alone = run(&["-f", path]).unwrap_err().to_string();
        let with_list = run(&["-f", path, "-w", "/etc/list"]);
        let unrelated = run(&["-f", path, "-u", "nobody"]).unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(
            alone.starts_with(&format!("{path}:4: access.fifo_add")),
            "{alone}"
        );
        assert!(
            with_list.is_ok(),
            "-w supplies the list the file's FIFO changes"
        );
        assert_eq!(unrelated, alone, "-u has no part in that error");
    }
}
