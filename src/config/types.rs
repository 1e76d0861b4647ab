//! Value types of the configuration, each parsed with a message that names
//! what was expected (the TOML reader adds file and line).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DEFAULT_PORT;

/// A listen address: `ip`, `ip:port` or `[v6]:port`; the port defaults to
/// 6969 as upstream's does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl Default for ListenAddr {
    fn default() -> Self {
        ListenAddr(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            DEFAULT_PORT,
        ))
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(ListenAddr(addr));
        }
        bare_ip(text)
            .map(|ip| ListenAddr(SocketAddr::new(ip, DEFAULT_PORT)))
            .ok_or_else(|| {
                unreadable_address(
                    text,
                    "an address",
                    "ip, ip:port or [ipv6]:port",
                    SCOPE_ID_FORM,
                )
            })
    }
}

/// The one form a scoped IPv6 address is read in, for the error of any
/// other (an interface name, or no brackets and port).
const SCOPE_ID_FORM: &str =
    "a scope id is taken only as a number, in the bracketed form with a port \
     ([fe80::1%2]:6969)";

/// The error for `text`, which does not read as `what`: when it has a scope
/// id (a `%`), which few forms take, `scope_id` says where one goes; else
/// the forms `expected`.
pub fn unreadable_address(text: &str, what: &str, expected: &str, scope_id: &str) -> String {
    match text.contains('%') {
        true => format!("{text:?} is not {what}: {scope_id}"),
        false => format!("{text:?} is not {what} (expected {expected})"),
    }
}

/// An address without a port: `ip`, or an IPv6 one in brackets.
pub fn bare_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    unbracketed.unwrap_or(text).parse().ok()
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An address or a CIDR network, for the stats and proxy permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` (IPv4-mapped addresses count as IPv4) is inside. An
    /// IPv6 network holds IPv4 addresses in their mapped form, as upstream
    /// compares them, so `::/0` and `::ffff:0:0/96` hold every IPv4 client.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip.to_canonical()) {
            (IpAddr::V6(_), IpAddr::V4(ip)) => IpAddr::V6(ip.to_ipv6_mapped()),
            (_, ip) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an address or network (expected ip or ip/bits)");
        let (ip_text, bits) = match text.trim().split_once('/') {
            Some((ip, bits)) => (ip, Some(bits.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let written = ip_text.parse::<IpAddr>().map_err(|_| bad())?;
        // A mapped network is the IPv4 network it maps, when it is one.
        let (addr, bits) = match (written, written.to_canonical(), bits) {
            (IpAddr::V6(_), IpAddr::V4(_), Some(bits)) if bits < 96 => (written, Some(bits)),
            (IpAddr::V6(_), v4 @ IpAddr::V4(_), Some(bits)) => (v4, Some(bits - 96)),
            (_, canonical, bits) => (canonical, bits),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = bits.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        // Kept as the network's own address, so it is shown as one
        // (`::1/64` as `::/64`); the host bits never counted in matching.
        let host_bits = |width: u32| {
            (u128::MAX >> (128 - width))
                .checked_shr(u32::from(prefix))
                .unwrap_or(0)
        };
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & !(host_bits(32) as u32)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !host_bits(128)).into()),
        };
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

macro_rules! string_serde {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(Parsed(std::marker::PhantomData))
            }
        }
    };
}

/// Reads a value from its text inside the deserializer's call, so that a
/// parse error carries the span of the value itself (an element's line in
/// a multi-line array), not of whatever holds it.
struct Parsed<T>(std::marker::PhantomData<T>);

impl<T: FromStr<Err = String>> serde::de::Visitor<'_> for Parsed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

string_serde!(ListenAddr);
string_serde!(Network);
string_serde!(PeerAddr);

/// A cluster address: `ip:port` or `[v6]:port`, both parts given. Host
/// names are not looked up: the trackers of a cluster are fixed machines,
/// and a lookup at start would make it wait on DNS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl FromStr for PeerAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.trim().parse().map(PeerAddr).map_err(|_| {
            unreadable_address(
                text,
                "an address and port",
                "ip:port or [ipv6]:port; host names are not looked up",
                SCOPE_ID_FORM,
            )
        })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `cluster.listen`, read as a [`PeerAddr`].
pub fn peer_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    Ok(Option::<PeerAddr>::deserialize(d)?.map(|a| a.0))
}

/// `cluster.peers`, read as [`PeerAddr`]s.
pub fn peer_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    Ok(Vec::<PeerAddr>::deserialize(d)?
        .into_iter()
        .map(|a| a.0)
        .collect())
}

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// syslog unless stderr is a terminal.
    Auto,
    Syslog,
    Stderr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// How client addresses are written in request log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientIp {
    Full,
    /// IPv4 to its /24, IPv6 to its /48.
    Truncated,
    /// A keyed hash, stable until restart, that cannot be reversed.
    Hashed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            "1.2.3.4".parse::<ListenAddr>().unwrap().0,
            "1.2.3.4:6969".parse().unwrap()
        );
        assert_eq!(
            "[::1]:80".parse::<ListenAddr>().unwrap().0,
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            "::1".parse::<ListenAddr>().unwrap().0,
            "[::1]:6969".parse().unwrap()
        );
        assert!("host:80".parse::<ListenAddr>().is_err());
    }

    #[test]
    fn scope_ids_are_numbers_with_brackets_and_port() {
        let scoped = "[fe80::1%2]:80".parse::<ListenAddr>().unwrap().0;
        assert!(matches!(scoped, SocketAddr::V6(a) if a.scope_id() == 2));
        for other in ["[fe80::1%lo]:80", "fe80::1%2", "[fe80::1%2]"] {
            assert_eq!(
                other.parse::<ListenAddr>().unwrap_err(),
                format!(
                    "{other:?} is not an address: a scope id is taken only as a number, in \
                     the bracketed form with a port ([fe80::1%2]:6969)"
                )
            );
        }
        let err = "[fe80::1%eth0]:80".parse::<PeerAddr>().unwrap_err();
        assert!(err.ends_with(SCOPE_ID_FORM), "{err}");
    }

    #[test]
    fn networks() {
        let net: Network = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        // IPv6 networks hold IPv4 addresses mapped, as upstream's do.
        let everyone: Network = "::/0".parse().unwrap();
        assert!(everyone.contains("8.8.8.8".parse().unwrap()));
        assert!(everyone.contains("::1".parse().unwrap()));
        let mapped: Network = "::ffff:0:0/96".parse().unwrap();
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("::1".parse().unwrap()));
        let ten: Network = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(ten.to_string(), "10.0.0.0/8");
        assert!(ten.contains("10.1.2.3".parse().unwrap()));
        let wider: Network = "::/80".parse().unwrap();
        assert!(
            wider.contains("10.1.2.3".parse().unwrap()),
            "mapped, as upstream"
        );
        assert!("::ffff:10.0.0.0/129".parse::<Network>().is_err());
        assert!(!v6.contains("10.1.2.3".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
    }

    #[test]
    fn networks_are_shown_without_host_bits() {
        for (written, shown) in [
            ("::ffff:127.0.0.1/104", "127.0.0.0/8"),
            ("::1/64", "::/64"),
            ("2001:db8::1/0", "::/0"),
            ("10.1.2.3/0", "0.0.0.0/0"),
            ("10.1.2.3/31", "10.1.2.2/31"),
            ("10.1.2.3", "10.1.2.3/32"),
            ("2001:db8::1", "2001:db8::1/128"),
        ] {
            let network: Network = written.parse().unwrap();
            assert_eq!(network.to_string(), shown, "{written}");
        }
    }
}
