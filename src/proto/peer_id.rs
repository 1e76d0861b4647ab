//! What a peer id says about the client software that sent it.
//!
//! Nearly every client begins its peer id with an Azureus-style tag: `-`,
//! two characters naming the client, four of version, `-` (`-qB4630-` is
//! qBittorrent 4.6.3). BitTorrent's original client writes `M`, then its
//! version in digits and dashes (`M7-4-3--`). Only those eight bytes are
//! read; the rest of the id is random.

use std::borrow::Cow;

/// The client part of a peer id: its first eight bytes when they are a tag
/// of a known style, zeros when not. Comparing and hashing it is one word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientTag([u8; 8]);

impl std::hash::Hash for ClientTag {
    // One word, where the derived hash would write a length and a slice:
    // this runs for every announce.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_ne_bytes(self.0));
    }
}

/// Characters a client code or version may have. Anything else is junk or
/// another style, and the tag is counted as unknown; it also keeps every tag
/// safe to print in a Prometheus label or a text line as it is.
fn tag_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'~' | b'_')
}

impl ClientTag {
    /// The tag of `peer_id`, or the unknown tag.
    pub fn of(peer_id: &[u8; 20]) -> ClientTag {
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&peer_id[..8]);
        let azureus = tag[0] == b'-' && tag[7] == b'-' && tag[1..7].iter().all(|&c| tag_char(c));
        let mainline = tag[0] == b'M'
            && tag[1].is_ascii_digit()
            && tag[1..].iter().all(|&c| c.is_ascii_digit() || c == b'-');
        if azureus || mainline {
            ClientTag(tag)
        } else {
            ClientTag::default()
        }
    }

    pub fn is_unknown(&self) -> bool {
        self.0[0] == 0
    }

    /// The client's name: from the table of known codes, else the code as
    /// sent (`Zz`); `Mainline`, or `unknown` for ids in no known style.
    pub fn client(&self) -> Cow<'static, str> {
        match self.0[0] {
            b'-' => {
                let code = [self.0[1], self.0[2]];
                match CLIENTS.binary_search_by(|(known, _)| known.cmp(&&code)) {
                    Ok(at) => Cow::Borrowed(CLIENTS[at].1),
                    Err(_) => Cow::Owned(String::from_utf8_lossy(&code).into_owned()),
                }
            }
            b'M' => Cow::Borrowed("Mainline"),
            _ => Cow::Borrowed("unknown"),
        }
    }

    /// The version as the client wrote it: the four characters of an
    /// Azureus-style tag (their meaning differs between clients), the
    /// dotted numbers of a Mainline one, nothing for an unknown id.
    pub fn version(&self) -> String {
        match self.0[0] {
            b'-' => String::from_utf8_lossy(&self.0[3..7]).into_owned(),
            b'M' => {
                let text = String::from_utf8_lossy(&self.0[1..]);
                let parts: Vec<&str> = text.split('-').filter(|p| !p.is_empty()).collect();
                parts.join(".")
            }
            _ => String::new(),
        }
    }
}

/// Azureus-style client codes and the software that uses them, sorted by
/// code (byte order: digits, upper case, lower case).
const CLIENTS: &[(&[u8; 2], &str)] = &[
    (b"7T", "aTorrent"),
    (b"AG", "Ares"),
    (b"AR", "Arctic"),
    (b"AT", "Artemis"),
    (b"AX", "BitPump"),
    (b"AZ", "Vuze"),
    (b"A~", "Ares"),
    (b"BB", "BitBuddy"),
    (b"BC", "BitComet"),
    (b"BE", "baretorrent"),
    (b"BF", "Bitflu"),
    (b"BG", "BTG"),
    (b"BI", "BiglyBT"),
    (b"BN", "Baidu Netdisk"),
    (b"BP", "BitTorrent Pro"),
    (b"BR", "BitRocket"),
    (b"BT", "BitTorrent"),
    (b"BW", "BitWombat"),
    (b"CD", "Enhanced CTorrent"),
    (b"CT", "CTorrent"),
    (b"DE", "Deluge"),
    (b"EB", "EBit"),
    (b"ES", "Electric Sheep"),
    (b"FD", "Free Download Manager"),
    (b"FG", "FlashGet"),
    (b"FT", "FoxTorrent"),
    (b"FW", "FrostWire"),
    (b"FX", "Freebox"),
    (b"GR", "GetRight"),
    (b"GS", "GSTorrent"),
    (b"HL", "Halite"),
    (b"HN", "Hydranode"),
    (b"IL", "iLivid"),
    (b"KG", "KGet"),
    (b"KT", "KTorrent"),
    (b"LC", "LeechCraft"),
    (b"LH", "LH-ABC"),
    (b"LL", "lftp"),
    (b"LP", "Lphant"),
    (b"LT", "libtorrent (Rasterbar)"),
    (b"LW", "LimeWire"),
    (b"MG", "MediaGet"),
    (b"ML", "MLDonkey"),
    (b"MO", "MonoTorrent"),
    (b"MR", "Miro"),
    (b"MT", "MoonlightTorrent"),
    (b"NX", "Net Transport"),
    (b"OS", "OneSwarm"),
    (b"OT", "OmegaTorrent"),
    (b"PD", "Pando"),
    (b"PI", "PicoTorrent"),
    (b"QD", "QQDownload"),
    (b"QT", "Qt 4 Torrent example"),
    (b"RT", "Retriever"),
    (b"RZ", "RezTorrent"),
    (b"SD", "Thunder"),
    (b"SS", "SwarmScope"),
    (b"ST", "SymTorrent"),
    (b"SZ", "Shareaza"),
    (b"S~", "Shareaza"),
    (b"TB", "Torch"),
    (b"TL", "Tribler"),
    (b"TN", "TorrentDotNET"),
    (b"TR", "Transmission"),
    (b"TS", "Torrentstorm"),
    (b"TT", "TuoTu"),
    (b"UE", "µTorrent Embedded"),
    (b"UM", "µTorrent Mac"),
    (b"UT", "µTorrent"),
    (b"UW", "µTorrent Web"),
    (b"VG", "Vagaa"),
    (b"WD", "WebTorrent Desktop"),
    (b"WW", "WebTorrent"),
    (b"WY", "FireTorrent"),
    (b"XF", "Xfplay"),
    (b"XL", "Xunlei"),
    (b"XT", "XanTorrent"),
    (b"XX", "Xtorrent"),
    (b"ZO", "Zona"),
    (b"ZT", "ZipTorrent"),
    (b"lt", "libTorrent (rakshasa)"),
    (b"qB", "qBittorrent"),
    (b"st", "SharkTorrent"),
    (b"tT", "tTorrent"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn id(prefix: &[u8]) -> [u8; 20] {
        let mut id = [0x5au8; 20];
        id[..prefix.len()].copy_from_slice(prefix);
        id
    }

    fn read(prefix: &[u8]) -> (String, String) {
        let tag = ClientTag::of(&id(prefix));
        (tag.client().into_owned(), tag.version())
    }

    #[test]
    fn names_clients_by_their_tags() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(read(b"-qB4630-"), pair("qBittorrent", "4630"));
        assert_eq!(read(b"-TR4050-"), pair("Transmission", "4050"));
        assert_eq!(read(b"-lt0D80-"), pair("libTorrent (rakshasa)", "0D80"));
        assert_eq!(read(b"-UT355W-"), pair("µTorrent", "355W"));
        assert_eq!(read(b"-A~0100-"), pair("Ares", "0100"));
        // A code no one is known to use is shown as sent.
        assert_eq!(read(b"-Zz1000-"), pair("Zz", "1000"));
        assert_eq!(read(b"M7-4-3--"), pair("Mainline", "7.4.3"));
        assert_eq!(read(b"M4-20-8-"), pair("Mainline", "4.20.8"));
    }

    #[test]
    fn other_styles_and_junk_are_unknown() {
        for prefix in [
            &b"exbc\x01\x02\x03\x04"[..],
            b"S58B-----",
            b"-qB46\"0-",
            b"-qB4630x",
            b"-q\n4630-",
            b"M-4-3---",
            b"M7-4-3-a",
            b"\0\0\0\0\0\0\0\0",
        ] {
            let tag = ClientTag::of(&id(prefix));
            assert!(tag.is_unknown(), "{prefix:?}");
            assert_eq!(
                (tag.client().as_ref(), tag.version().as_str()),
                ("unknown", "")
            );
        }
    }

    /// Whatever a client sends, names and versions are safe to print in a
    /// Prometheus label or a tab-separated line.
    #[test]
    fn any_peer_id_reads_as_printable_text() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = b"-M0123456789qBTR~._\"\\\t\n\xb5";
        for _ in 0..20_000 {
            let mut id = [0u8; 20];
            id.iter_mut()
                .for_each(|b| *b = alphabet[rng.usize(..alphabet.len())]);
            // Mostly the shapes of the two styles, so most ids get read.
            match rng.u8(..4) {
                0 | 1 => (id[0], id[7]) = (b'-', b'-'),
                2 => id[0] = b'M',
                _ => {}
            }
            let tag = ClientTag::of(&id);
            for text in [tag.client().into_owned(), tag.version()] {
                assert!(
                    text.chars()
                        .all(|c| !c.is_control() && c != '"' && c != '\\'),
                    "{id:?}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        assert!(CLIENTS.windows(2).all(|w| w[0].0 < w[1].0));
        for (code, name) in CLIENTS {
            let tag = ClientTag::of(&id(&[b"-", &code[..], b"0000-"].concat()));
            assert_eq!(tag.client(), *name);
        }
    }
}
