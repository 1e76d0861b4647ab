//! Announces counted by client software, read from the peer id's tag, for
//! `/stats?mode=clients`, `/metrics` and `mode=json`: which clients use the
//! tracker, and which old versions are still about.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use crate::proto::peer_id::ClientTag;

/// Distinct tags counted each on its own. Announces with a tag the full
/// table lacks are counted as `other`: forged peer ids can fill the table,
/// never grow it.
pub const CLIENT_TAGS_MAX: usize = 512;

/// Announces per client tag since start.
#[derive(Clone, Debug, Default)]
pub struct ClientCounts {
    // Peer ids are chosen by clients, so the hash is seeded per process.
    counts: HashMap<ClientTag, u64, foldhash::fast::RandomState>,
    /// Announces whose tag found the table full.
    other: u64,
}

/// One line of the breakdown.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientRow {
    pub client: Cow<'static, str>,
    pub version: String,
    pub announces: u64,
}

impl ClientCounts {
    /// Counts one announce by the client `tag` names.
    pub fn count(&mut self, tag: ClientTag) {
        self.add(tag, 1);
    }

    fn add(&mut self, tag: ClientTag, announces: u64) {
        if let Some(count) = self.counts.get_mut(&tag) {
            *count += announces;
        } else if self.counts.len() < CLIENT_TAGS_MAX {
            self.counts.insert(tag, announces);
        } else {
            self.other += announces;
        }
    }

    /// Forgets every count, keeping the table's memory.
    pub fn clear(&mut self) {
        self.counts.clear();
        self.other = 0;
    }

    /// Adds `other`'s counts to these (a worker thread's, published).
    /// Tags this table has no room for go to `other`, as when counted.
    pub fn absorb(&mut self, other: &ClientCounts) {
        for (&tag, &announces) in &other.counts {
            self.add(tag, announces);
        }
        self.other += other.other;
    }

    /// These counts and `other`'s together, for reading: the
    /// [`CLIENT_TAGS_MAX`] tags with the most announces (ties by tag)
    /// each on their own, the rest in `other`. Unlike [`Self::absorb`],
    /// which keeps the tags it met first, so that a busy client of one
    /// table never goes to `other` for the forged tags filling the other,
    /// and the same counts always give the same rows.
    pub fn combined(&self, other: &ClientCounts) -> ClientCounts {
        let mut union: HashMap<ClientTag, u64> =
            HashMap::with_capacity(self.counts.len() + other.counts.len());
        for (&tag, &announces) in self.counts.iter().chain(&other.counts) {
            *union.entry(tag).or_default() += announces;
        }
        let mut busiest: Vec<(ClientTag, u64)> = union.into_iter().collect();
        busiest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let rest = busiest.split_off(busiest.len().min(CLIENT_TAGS_MAX));
        ClientCounts {
            counts: busiest.into_iter().collect(),
            other: self.other + other.other + rest.iter().map(|(_, n)| n).sum::<u64>(),
        }
    }

    /// The breakdown, most announces first (ties by name and version),
    /// with `other` last when the table overflowed. Tags that read the
    /// same (two codes of one client) share a row, so every row is a
    /// distinct label set.
    pub fn rows(&self) -> Vec<ClientRow> {
        let mut merged: HashMap<(Cow<'static, str>, String), u64> = HashMap::new();
        for (tag, &announces) in &self.counts {
            *merged.entry((tag.client(), tag.version())).or_default() += announces;
        }
        let mut rows: Vec<ClientRow> = merged
            .into_iter()
            .map(|((client, version), announces)| ClientRow {
                client,
                version,
                announces,
            })
            .collect();
        rows.sort_unstable_by(|a, b| {
            (b.announces.cmp(&a.announces))
                .then_with(|| a.client.cmp(&b.client))
                .then_with(|| a.version.cmp(&b.version))
        });
        if self.other > 0 {
            rows.push(ClientRow {
                client: Cow::Borrowed("other"),
                version: String::new(),
                announces: self.other,
            });
        }
        rows
    }
}

/// `/stats?mode=clients`: one `ANNOUNCES<TAB>CLIENT<TAB>VERSION` line per
/// row of [`ClientCounts::rows`].
pub fn render(out: &mut String, counts: &ClientCounts) {
    for row in counts.rows() {
        let _ = writeln!(out, "{}\t{}\t{}", row.announces, row.client, row.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(prefix: &[u8; 8]) -> ClientTag {
        let mut id = [b'x'; 20];
        id[..8].copy_from_slice(prefix);
        ClientTag::of(&id)
    }

    fn row(client: &'static str, version: &str, announces: u64) -> ClientRow {
        ClientRow {
            client: Cow::Borrowed(client),
            version: version.to_owned(),
            announces,
        }
    }

    #[test]
    fn counts_and_orders_by_announces() {
        let mut counts = ClientCounts::default();
        for _ in 0..3 {
            counts.count(tag(b"-TR4050-"));
        }
        counts.count(tag(b"-qB4630-"));
        counts.count(tag(b"-qB5010-"));
        counts.count(tag(b"exbc0000"));
        assert_eq!(
            counts.rows(),
            [
                row("Transmission", "4050", 3),
                row("qBittorrent", "4630", 1),
                row("qBittorrent", "5010", 1),
                row("unknown", "", 1),
            ]
        );
        let mut text = String::new();
        render(&mut text, &counts);
        assert!(text.starts_with("3\tTransmission\t4050\n1\tqBittorrent\t4630\n"));
        assert!(text.ends_with("1\tunknown\t\n"));
    }

    #[test]
    fn two_codes_of_one_client_share_a_row() {
        let mut counts = ClientCounts::default();
        counts.count(tag(b"-AG0100-"));
        counts.count(tag(b"-A~0100-"));
        assert_eq!(counts.rows(), [row("Ares", "0100", 2)]);
    }

    #[test]
    fn forged_tags_fill_the_table_but_never_grow_it() {
        let mut counts = ClientCounts::default();
        for n in 0..CLIENT_TAGS_MAX as u32 + 100 {
            let version = format!("{n:04}");
            let mut prefix = *b"-Zz0000-";
            prefix[3..7].copy_from_slice(&version.as_bytes()[version.len() - 4..]);
            counts.count(tag(&prefix));
        }
        // Known tags that arrive once the table is full are counted too.
        counts.count(tag(b"-qB4630-"));
        assert_eq!(counts.counts.len(), CLIENT_TAGS_MAX);
        let rows = counts.rows();
        assert_eq!(rows.len(), CLIENT_TAGS_MAX + 1);
        assert_eq!(rows.last(), Some(&row("other", "", 101)));
        assert_eq!(rows.iter().map(|r| r.announces).sum::<u64>(), 613);
    }

    #[test]
    fn absorbing_adds_and_keeps_the_bound() {
        let mut main = ClientCounts::default();
        main.count(tag(b"-TR4050-"));
        let mut worker = ClientCounts::default();
        worker.count(tag(b"-TR4050-"));
        worker.count(tag(b"-DE2110-"));
        main.absorb(&worker);
        assert_eq!(
            main.rows(),
            [row("Transmission", "4050", 2), row("Deluge", "2110", 1)]
        );
        let mut full = ClientCounts::default();
        for n in 0..CLIENT_TAGS_MAX {
            let mut prefix = *b"-Zz0000-";
            prefix[3..7].copy_from_slice(format!("{n:04}").as_bytes());
            full.count(tag(&prefix));
        }
        full.absorb(&main);
        assert_eq!(full.rows().last(), Some(&row("other", "", 3)));
    }

    /// A full table of `CLIENT_TAGS_MAX` forged tags, one announce each,
    /// numbered from `first`.
    fn forged(first: usize) -> ClientCounts {
        let mut counts = ClientCounts::default();
        for n in first..first + CLIENT_TAGS_MAX {
            let mut prefix = *b"-Zz0000-";
            prefix[3..7].copy_from_slice(format!("{n:04}").as_bytes());
            counts.count(tag(&prefix));
        }
        counts
    }

    #[test]
    fn combining_full_tables_keeps_the_busiest_clients() {
        // The main thread's table holds Deluge among forged tags; the UDP
        // workers' is full of others.
        let mut main = forged(0);
        main.counts.remove(&tag(b"-Zz0000-"));
        main.other += 1;
        main.add(tag(b"-DE2110-"), 3000);
        let workers = forged(CLIENT_TAGS_MAX);
        for (a, b) in [(&main, &workers), (&workers, &main)] {
            let all = a.combined(b);
            assert_eq!(all.counts.len(), CLIENT_TAGS_MAX);
            let rows = all.rows();
            assert_eq!(rows.first(), Some(&row("Deluge", "2110", 3000)));
            // The one main had no room for, and the 512 forged tags past
            // the busiest 512.
            assert_eq!(rows.last(), Some(&row("other", "", 1 + 512)));
            assert_eq!(rows.iter().map(|r| r.announces).sum::<u64>(), 3000 + 1024);
            // Ties are kept by tag, not by where the hash table put them.
            assert_eq!(rows, b.combined(a).rows());
            assert!(rows.contains(&row("Zz", "0001", 1)));
            assert!(!rows.contains(&row("Zz", "1023", 1)));
        }
    }
}
