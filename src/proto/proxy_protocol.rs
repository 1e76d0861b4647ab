//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer puts in front of a TCP connection's bytes, or of each UDP
//! datagram (version 2 only), to say whom it is relaying. Without it, every
//! client behind the balancer would look like the balancer itself, and the
//! tracker would hand out the balancer's address as the peer's.
//!
//! Version 1 is one text line, `PROXY TCP4 SRC DST SRCPORT DSTPORT\r\n`
//! (or `TCP6`, or `UNKNOWN`); version 2 is a 16-byte binary preamble with
//! the addresses and optional TLVs after it. A header that names no address
//! (v1 `UNKNOWN`, v2 `LOCAL` such as a balancer's health check, or an
//! address family other than IPv4 and IPv6) leaves the connection's own.
//! One that names an address no peer could be reached at (unspecified,
//! multicast, broadcast) is invalid, as one naming no readable address:
//! served as the balancer instead, the balancer would be stored and handed
//! out as a peer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The first 12 bytes of every version 2 header.
pub const SIGNATURE_V2: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1 lines are at most this long, CRLF included.
const MAX_V1: usize = 107;

/// A header read from the front of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes the header took.
    pub len: usize,
    /// The client the balancer relays, or `None` when it names none.
    pub source: Option<SocketAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The buffer holds the start of a header, not all of it yet.
    Incomplete,
    /// Not a PROXY protocol header.
    Invalid,
}

/// Reads the header at the front of `buf` (a stream's first bytes).
pub fn parse(buf: &[u8]) -> Result<Header, Error> {
    if buf.starts_with(b"PROXY ") {
        return parse_v1(buf);
    }
    if buf.starts_with(&SIGNATURE_V2) {
        return parse_v2(buf);
    }
    if b"PROXY ".starts_with(buf) || SIGNATURE_V2.starts_with(buf) {
        return Err(Error::Incomplete);
    }
    Err(Error::Invalid)
}

/// Reads the version 2 header that must start `datagram`; the payload is
/// what follows it.
pub fn parse_datagram(datagram: &[u8]) -> Result<Header, Error> {
    if !datagram.starts_with(&SIGNATURE_V2) {
        return Err(Error::Invalid);
    }
    // A datagram comes whole: what is missing will not arrive.
    parse_v2(datagram).map_err(|_| Error::Invalid)
}

fn parse_v1(buf: &[u8]) -> Result<Header, Error> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Err(if buf.len() < MAX_V1 {
            Error::Incomplete
        } else {
            Error::Invalid
        });
    };
    let len = end + 2;
    if len > MAX_V1 {
        return Err(Error::Invalid);
    }
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| Error::Invalid)?;
    let fields: Vec<&str> = line.split(' ').collect();
    let source = match fields[..] {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", family @ ("TCP4" | "TCP6"), source, destination, source_port, _] => {
            let ip: IpAddr = source.parse().map_err(|_| Error::Invalid)?;
            let _: IpAddr = destination.parse().map_err(|_| Error::Invalid)?;
            if ip.is_ipv4() != (family == "TCP4") {
                return Err(Error::Invalid);
            }
            let port: u16 = source_port.parse().map_err(|_| Error::Invalid)?;
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(Error::Invalid),
    };
    reachable(Header { len, source })
}

/// `header`, unless the source it names is no address a peer has.
fn reachable(header: Header) -> Result<Header, Error> {
    match header.source {
        Some(source) if !super::is_peer_address(source.ip()) => Err(Error::Invalid),
        _ => Ok(header),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Header, Error> {
    if buf.len() < 16 {
        return Err(Error::Incomplete);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(Error::Invalid);
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let Some(block) = buf.get(16..len) else {
        return Err(Error::Incomplete);
    };
    let local = command == 0;
    // The high nibble is the family, the low one TCP or UDP: either is
    // fine, the tracker serves both.
    let source = match buf[13] >> 4 {
        _ if local => None,
        1 => {
            let a = block.get(..12).ok_or(Error::Invalid)?;
            let ip = Ipv4Addr::from(<[u8; 4]>::try_from(&a[..4]).unwrap());
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        2 => {
            let a = block.get(..36).ok_or(Error::Invalid)?;
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&a[..16]).unwrap());
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        // UNSPEC and UNIX sockets name no address the tracker could use.
        _ => None,
    };
    reachable(Header { len, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 2 PROXY header for a relayed `source`, as a balancer
    /// writes it.
    fn v2_header(out: &mut Vec<u8>, source: SocketAddr, destination: SocketAddr, udp: bool) {
        out.extend_from_slice(&SIGNATURE_V2);
        out.push(0x21);
        let protocol = if udp { 2 } else { 1 };
        match (source.ip(), destination.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                out.extend_from_slice(&[0x10 | protocol, 0, 12]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
            (s, d) => {
                let v6 = |ip: IpAddr| match ip {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                out.extend_from_slice(&[0x20 | protocol, 0, 36]);
                out.extend_from_slice(&v6(s).octets());
                out.extend_from_slice(&v6(d).octets());
            }
        }
        out.extend_from_slice(&source.port().to_be_bytes());
        out.extend_from_slice(&destination.port().to_be_bytes());
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn version_1_lines() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 6969\r\nGET /";
        assert_eq!(
            parse(line),
            Ok(Header {
                len: line.len() - 5,
                source: Some(addr("192.0.2.1:51000")),
            })
        );
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert_eq!(parse(v6).unwrap().source, Some(addr("[2001:db8::1]:1")));
        let unknown = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(parse(unknown).unwrap().source, None);
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().len, 15);
        assert_eq!(parse(b"PROXY TCP4 192.0.2.1 198.5"), Err(Error::Incomplete));
        assert_eq!(parse(b"PRO"), Err(Error::Incomplete));
        assert_eq!(parse(b""), Err(Error::Incomplete));
        for bad in [
            &b"PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n"[..],
            b"PROXY TCP4 192.0.2.1 198.51.100.2 70000 1\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
            b"GET / HTTP/1.1\r\n",
            &[b'P'; 200],
        ] {
            assert_eq!(parse(bad), Err(Error::Invalid), "{bad:?}");
        }
        for unreachable in [
            &b"PROXY TCP6 :: ::1 1 2\r\n"[..],
            b"PROXY TCP6 ff02::1 ::1 1 2\r\n",
            b"PROXY TCP6 ::ffff:224.0.0.1 ::1 1 2\r\n",
            b"PROXY TCP4 0.0.0.0 127.0.0.1 1 2\r\n",
            b"PROXY TCP4 255.255.255.255 127.0.0.1 1 2\r\n",
        ] {
            assert_eq!(parse(unreachable), Err(Error::Invalid), "{unreachable:?}");
        }
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(120, b'x');
        assert_eq!(parse(&long), Err(Error::Invalid));
    }

    #[test]
    fn version_2_headers_round_trip() {
        for (source, destination) in [
            ("192.0.2.1:51000", "198.51.100.2:6969"),
            ("[2001:db8::1]:7", "[2001:db8::2]:6969"),
        ] {
            for udp in [false, true] {
                let mut buf = Vec::new();
                v2_header(&mut buf, addr(source), addr(destination), udp);
                let header_len = buf.len();
                buf.extend_from_slice(b"payload");
                let expected = Header {
                    len: header_len,
                    source: Some(addr(source)),
                };
                assert_eq!(parse(&buf), Ok(expected));
                assert_eq!(parse_datagram(&buf), Ok(expected));
                assert_eq!(parse(&buf[..header_len - 1]), Err(Error::Incomplete));
                assert_eq!(parse_datagram(&buf[..header_len - 1]), Err(Error::Invalid));
            }
        }
    }

    #[test]
    fn version_2_local_tlvs_and_bad_ones() {
        let mut local = SIGNATURE_V2.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse_datagram(&local),
            Ok(Header {
                len: 16,
                source: None
            })
        );
        // TLVs after the addresses are skipped with the length.
        let mut tlvs = Vec::new();
        v2_header(&mut tlvs, addr("192.0.2.9:1"), addr("192.0.2.10:2"), true);
        tlvs[15] += 7;
        tlvs.extend_from_slice(&[0x04, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse_datagram(&tlvs).unwrap().len, 16 + 12 + 7);
        // An address block too short for its family.
        let mut short = SIGNATURE_V2.to_vec();
        short.extend_from_slice(&[0x21, 0x12, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse(&short), Err(Error::Invalid));
        // Version 1 in the binary form, or a command past PROXY.
        for byte in [0x11, 0x23] {
            let mut bad = SIGNATURE_V2.to_vec();
            bad.extend_from_slice(&[byte, 0x11, 0, 0]);
            assert_eq!(parse(&bad), Err(Error::Invalid));
        }
        assert_eq!(parse_datagram(b"\0\0\0\0"), Err(Error::Invalid));
    }

    #[test]
    fn version_2_sources_no_peer_has_are_invalid() {
        for source in [
            "0.0.0.0:1",
            "224.0.0.1:1",
            "255.255.255.255:1",
            "[::]:1",
            "[ff02::1]:1",
            "[::ffff:0.0.0.0]:1",
        ] {
            let source = addr(source);
            let destination = match source {
                SocketAddr::V4(_) => addr("127.0.0.1:6969"),
                SocketAddr::V6(_) => addr("[::1]:6969"),
            };
            for udp in [false, true] {
                let mut buf = Vec::new();
                v2_header(&mut buf, source, destination, udp);
                assert_eq!(parse(&buf), Err(Error::Invalid), "{source}");
                assert_eq!(parse_datagram(&buf), Err(Error::Invalid), "{source}");
            }
        }
    }
}
