//! A file of networks, one address or CIDR network a line, for
//! `access.blocked_networks`: parsed once per (re)load into sorted ranges,
//! so each request costs one binary search in its family's list.

use std::net::IpAddr;

use super::Network;
use crate::tracker::access_list::{self, LineError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkList {
    /// Disjoint, sorted, inclusive address ranges.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    /// Entries as written, before overlapping ones were merged.
    entries: usize,
}

/// Sorts `ranges` and merges the ones that overlap or touch.
fn merged<T: Copy + Ord>(mut ranges: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match out.last_mut() {
            Some(open) if next(open.1).map_or(true, |after| first <= after) => {
                open.1 = open.1.max(last);
            }
            _ => out.push((first, last)),
        }
    }
    out
}

/// The IPv4-mapped block, `::ffff:0:0/96`.
const MAPPED_FIRST: u128 = 0xffff << 32;
const MAPPED_LAST: u128 = MAPPED_FIRST | u32::MAX as u128;

fn covers<T: Copy + Ord>(ranges: &[(T, T)], value: T) -> bool {
    let after = ranges.partition_point(|&(first, _)| first <= value);
    after > 0 && ranges[after - 1].1 >= value
}

impl NetworkList {
    /// Parses a file: `#` starts a comment, blank lines are skipped.
    pub fn parse(file: &[u8]) -> Result<NetworkList, LineError> {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let mut entries = 0;
        for line in access_list::lines(file) {
            let entry = line.entry()?;
            if entry.is_empty() {
                continue;
            }
            let network: Network = entry.parse().map_err(|_| {
                line.error("an address or a network (such as 192.0.2.0/24 or 2001:db8::/32)")
            })?;
            match network.addr() {
                IpAddr::V4(addr) => {
                    let size = u32::MAX
                        .checked_shr(u32::from(network.prefix()))
                        .unwrap_or(0);
                    let first = u32::from(addr) & !size;
                    v4.push((first, first | size));
                }
                IpAddr::V6(addr) => {
                    let size = u128::MAX
                        .checked_shr(u32::from(network.prefix()))
                        .unwrap_or(0);
                    let first = u128::from(addr) & !size;
                    let last = first | size;
                    v6.push((first, last));
                    // Clients are matched as IPv4 when mapped, so the part of
                    // the range that maps IPv4 (as in `::/0`) blocks them too.
                    let (lo, hi) = (first.max(MAPPED_FIRST), last.min(MAPPED_LAST));
                    if lo <= hi {
                        v4.push((lo as u32, hi as u32));
                    }
                }
            }
            entries += 1;
        }
        Ok(NetworkList {
            v4: merged(v4, |last| last.checked_add(1)),
            v6: merged(v6, |last| last.checked_add(1)),
            entries,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Entries in the file.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether `ip` (IPv4-mapped addresses count as IPv4) is in a listed
    /// network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => covers(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => covers(&self.v6, u128::from(ip)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn matches_addresses_and_networks_of_both_families() {
        let list = NetworkList::parse(
            "# abusers\n192.0.2.0/24\n\n198.51.100.7 # one host\n2001:db8:5::/48\n::ffff:203.0.113.1\n".as_bytes())
        .unwrap();
        assert_eq!(list.len(), 4);
        for inside in [
            "192.0.2.0",
            "192.0.2.255",
            "198.51.100.7",
            "2001:db8:5:ffff::1",
        ] {
            assert!(list.contains(ip(inside)), "{inside}");
        }
        // A mapped entry is an IPv4 one, and mapped clients are matched as IPv4.
        assert!(list.contains(ip("203.0.113.1")));
        assert!(list.contains(ip("::ffff:192.0.2.9")));
        for outside in [
            "192.0.1.255",
            "192.0.3.0",
            "198.51.100.8",
            "2001:db8:6::1",
            "::1",
        ] {
            assert!(!list.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn overlapping_and_adjacent_networks_merge() {
        let list =
            NetworkList::parse(b"10.0.0.0/9\n10.128.0.0/9\n10.1.2.3\n0.0.0.0/0\n::/0\n").unwrap();
        assert_eq!(list.v4, [(0, u32::MAX)]);
        assert_eq!(list.v6, [(0, u128::MAX)]);
        assert_eq!(list.len(), 5);
        // An IPv6 network blocks the IPv4 clients it holds mapped.
        let everyone = NetworkList::parse(b"::/0\n").unwrap();
        assert!(everyone.contains(ip("192.0.2.1")));
        let partly = NetworkList::parse(b"::ffff:0:0/95\n").unwrap();
        assert!(partly.contains(ip("10.0.0.1")) && partly.contains(ip("::fffe:0:1")));
        assert!(!NetworkList::parse(b"2001:db8::/32\n")
            .unwrap()
            .contains(ip("10.0.0.1")));
        let split =
            NetworkList::parse(b"10.0.0.0/16\n10.0.0.5\n10.2.0.0/16\n10.1.0.0/16\n").unwrap();
        assert_eq!(
            split.v4,
            [(
                u32::from_be_bytes([10, 0, 0, 0]),
                u32::from_be_bytes([10, 2, 255, 255])
            )]
        );
    }

    #[test]
    fn empty_files_block_nothing() {
        let list = NetworkList::parse(b"# nothing yet\n\n").unwrap();
        assert!(list.is_empty());
        assert!(!list.contains(ip("127.0.0.1")));
    }

    #[test]
    fn a_bad_line_is_named() {
        for bad in ["10.0.0.0/33", "example.org", "10.0.0.0/8 extra", "1.2.3"] {
            let error = NetworkList::parse(format!("10.0.0.0/8\n{bad}\n").as_bytes()).unwrap_err();
            assert_eq!(error.line, 2);
            assert_eq!(error.text, bad);
            assert!(error.to_string().starts_with("line 2: expected an address"));
        }
    }

    #[test]
    fn latin1_comments_bom_and_crs_are_read() {
        let list = NetworkList::parse(b"\xEF\xBB\xBF10.0.0.0/8 # Caf\xe9\r192.0.2.1\r\n").unwrap();
        assert_eq!(list.len(), 2);
        let error = NetworkList::parse(b"# ok\n10.0.0.1\n10.0.0.\xe9\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(
            error.to_string().starts_with("line 3: expected UTF-8"),
            "{error}"
        );
    }
}
