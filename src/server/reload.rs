//! Re-reading the list files (all of them on SIGHUP, those whose files
//! changed with `access.reload_on_change`) on a thread of its own, as upstream's access-list thread does. Reading and parsing a
//! whitelist of a million hashes takes over half a second, which the event
//! loop would otherwise spend answering no one. Each list in force is
//! swapped for its new version as soon as that is read (a bad file keeps
//! the old one); the loop is woken when all are done, to count the reload
//! and tell the service manager.
//!
//! A changeset line (`access.fifo_add`/`fifo_delete`) applied while the
//! access list is being re-read edits the list that is about to be
//! replaced: such changes are kept here and applied again to the new list,
//! so that a reload drops only the changes written before it was asked for.

use std::io;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use mio::{Registry, Token, Waker};

use super::context::{Context, Reloadable};
use super::{load_access_list, load_blocked_networks, load_hybrids, load_passkeys, replace_list};
use crate::config::network_list::NetworkList;
use crate::config::passkey_list::PasskeyList;
use crate::config::Config;
use crate::proto::InfoHash;
use crate::stats::ListFiles;
use crate::tracker::hybrids::HybridLinks;
use crate::tracker::ShardedTracker;

/// The configured lists re-read, and whether each new version was taken.
pub type Reloaded = Vec<(ListFiles, bool)>;

/// A changeset line's edit: a hash put on the access list, or taken off.
pub type ListChange = (InfoHash, bool);

/// What a finished reload leaves to the event loop.
pub struct Finished {
    pub reloaded: Reloaded,
    /// The lists to reload next (asked for meanwhile), if any.
    pub again: Option<Lists>,
    /// Changes to apply again, in order, to the access list just put in force.
    pub reapply: Vec<ListChange>,
}

/// Which lists a reload re-reads. Reading only those whose files changed
/// keeps the FIFO changesets to the access list in force when another
/// list's file changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lists(u8);

impl Lists {
    /// What SIGHUP re-reads.
    pub const ALL: Lists = Lists(u8::MAX);

    pub fn of(lists: impl IntoIterator<Item = ListFiles>) -> Lists {
        Lists(lists.into_iter().fold(0, |set, list| set | Self::bit(list)))
    }

    fn bit(list: ListFiles) -> u8 {
        1 << list as u8
    }

    fn has(self, list: ListFiles) -> bool {
        self.0 & Self::bit(list) != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn with(self, other: Lists) -> Lists {
        Lists(self.0 | other.0)
    }
}

pub struct Reloader {
    /// Where a reload under way reports.
    under_way: Option<Receiver<Reloaded>>,
    /// Asked for while one was under way: reloaded once more after it, so
    /// that the lists end up as the files are now.
    again: Lists,
    access_edits: KeptEdits,
    waker: Arc<Waker>,
}

/// The changeset edits made to the access list in force from when a
/// reload of it is asked for until it is done, for the new list. A
/// request made while a reload is under way keeps those before it for
/// the running reload: that one reads the files before the request, so
/// all its edits go on its list, and only those from the request on on
/// the next one's.
#[derive(Debug, Default)]
struct KeptEdits {
    /// None when no reload of the access list is asked for.
    edits: Option<Vec<ListChange>>,
    /// Where the edits kept for the reload asked for meanwhile start.
    next_from: usize,
}

impl KeptEdits {
    /// A reload of the access list is asked for: it drops the edits made
    /// before (as upstream's), not those the one `under_way` keeps.
    fn asked(&mut self, under_way: bool) {
        let edits = match under_way {
            true => self.edits.get_or_insert_with(Vec::new),
            false => self.edits.insert(Vec::new()),
        };
        self.next_from = edits.len();
    }

    fn made(&mut self, change: ListChange) {
        if let Some(edits) = &mut self.edits {
            edits.push(change);
        }
    }

    /// No reload is under way, nor asked for, any more.
    fn forget(&mut self) {
        *self = KeptEdits::default();
    }

    /// The reload under way finished: the edits to apply again to its new
    /// access list if it put one in force (`taken`), keeping those for the
    /// next one if that re-reads the access list too (`again`).
    fn finished(&mut self, taken: bool, again: bool) -> Vec<ListChange> {
        let edits = self.edits.take().unwrap_or_default();
        if again {
            self.edits = Some(edits[self.next_from..].to_vec());
        }
        self.next_from = 0;
        match taken {
            true => edits,
            false => Vec::new(),
        }
    }
}

/// What a reload replaces, shared with the serving threads.
struct InForce {
    tracker: Arc<ShardedTracker>,
    blocked_networks: Arc<Reloadable<NetworkList>>,
    passkeys: Arc<Reloadable<PasskeyList>>,
    hybrids: Arc<Reloadable<HybridLinks>>,
}

impl Reloader {
    /// `token` is the event that a reload finished.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Self> {
        Ok(Reloader {
            under_way: None,
            again: Lists::default(),
            access_edits: KeptEdits::default(),
            waker: Arc::new(Waker::new(registry, token)?),
        })
    }

    /// Starts re-reading the configured files of `lists`; returns false
    /// when a reload is under way already (these are reloaded once that is
    /// done) or no thread could be started (logged; the lists in force stay).
    pub fn start(&mut self, config: &Config, ctx: &Context, lists: Lists) -> bool {
        if lists.has(ListFiles::Access) {
            self.access_edits.asked(self.under_way.is_some());
        }
        if self.under_way.is_some() {
            self.again = self.again.with(lists);
            return false;
        }
        self.spawn(config, ctx, lists)
    }

    /// Starts the reload [`Reloader::finished`] said was asked for meanwhile.
    /// It bypasses [`Reloader::start`], which would take it for a new
    /// request and drop the edits kept for it since it was asked for.
    pub fn start_again(&mut self, config: &Config, ctx: &Context, lists: Lists) -> bool {
        self.spawn(config, ctx, lists)
    }

    /// Notes a changeset edit just made to the access list in force, for
    /// the new list of a reload under way.
    pub fn access_list_changed(&mut self, change: ListChange) {
        self.access_edits.made(change);
    }

    fn spawn(&mut self, config: &Config, ctx: &Context, lists: Lists) -> bool {
        let in_force = InForce {
            tracker: ctx.tracker.clone(),
            blocked_networks: ctx.blocked_networks.clone(),
            passkeys: ctx.passkeys.clone(),
            hybrids: ctx.hybrids.clone(),
        };
        let (config, waker) = (config.clone(), self.waker.clone());
        let (report, under_way) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let _ = report.send(reload(&config, &in_force, lists));
                if let Err(e) = waker.wake() {
                    log::error!("lists reloaded, but the event loop could not be told: {e}");
                }
            });
        match started {
            Ok(_) => {
                self.under_way = Some(under_way);
                true
            }
            Err(e) => {
                log::error!("cannot start a thread to reload the lists: {e}; keeping them");
                self.access_edits.forget();
                false
            }
        }
    }

    /// After the wake-up: what the reload that finished, if one did, leaves
    /// to do.
    pub fn finished(&mut self) -> Option<Finished> {
        let reloaded = self.under_way.as_ref()?.try_recv().ok()?;
        self.under_way = None;
        let again = std::mem::take(&mut self.again);
        // A list not taken leaves the old one, edits and all, in force.
        let reapply = self.access_edits.finished(
            reloaded.contains(&(ListFiles::Access, true)),
            again.has(ListFiles::Access),
        );
        Some(Finished {
            reloaded,
            again: (!again.is_empty()).then_some(again),
            reapply,
        })
    }
}

/// Said when the whitelist in force is empty.
pub const EMPTY_WHITELIST: &str = "the whitelist is empty: every torrent is refused";

/// Said when passkeys are required and the file in force holds none.
pub const EMPTY_PASSKEYS: &str =
    "the passkeys file holds no key: every announce and scrape is refused";

/// Reads the configured files of `lists` and puts what they hold in force.
fn reload(config: &Config, in_force: &InForce, lists: Lists) -> Reloaded {
    let access = &config.access;
    if access.list_files().next().is_none() {
        log::info!("reload: no list files are configured, nothing to read");
    }
    let mut reloaded = Vec::new();
    if access.blocked_networks.is_some() && lists.has(ListFiles::BlockedNetworks) {
        let read = load_blocked_networks(config);
        let taken = replace_list(
            &in_force.blocked_networks,
            read,
            "blocked networks",
            NetworkList::len,
        );
        reloaded.push((ListFiles::BlockedNetworks, taken));
    }
    if access.passkeys.is_some() && lists.has(ListFiles::Passkeys) {
        let read = load_passkeys(config);
        let taken = replace_list(&in_force.passkeys, read, "passkeys", PasskeyList::len);
        if taken && in_force.passkeys.current().1.is_empty() {
            log::warn!("{EMPTY_PASSKEYS}");
        }
        reloaded.push((ListFiles::Passkeys, taken));
    }
    if access.hybrids.is_some() && lists.has(ListFiles::Hybrids) {
        let read = load_hybrids(config);
        let taken = replace_list(&in_force.hybrids, read, "hybrids", HybridLinks::len);
        reloaded.push((ListFiles::Hybrids, taken));
    }
    if !lists.has(ListFiles::Access) {
        return reloaded;
    }
    let access_taken = match load_access_list(config) {
        Ok(list) => {
            let sizes = list.sizes();
            in_force.tracker.set_access_list(list);
            if !sizes.is_open() {
                log::info!("access list reloaded: {sizes}");
            }
            if sizes.refuses_everything() {
                log::warn!("{EMPTY_WHITELIST}");
            }
            true
        }
        Err(e) => {
            let kept = in_force.tracker.access_list();
            log::error!("{e}; keeping the previous {kept}");
            false
        }
    };
    if access.whitelist.is_some() || access.blacklist.is_some() {
        reloaded.push((ListFiles::Access, access_taken));
    }
    reloaded
}

/// The list files `access.reload_on_change` watches, each under the lists
/// it holds.
pub fn watched_files(config: &Config) -> Vec<(ListFiles, std::path::PathBuf)> {
    let a = &config.access;
    [
        (ListFiles::Access, &a.whitelist),
        (ListFiles::Access, &a.blacklist),
        (ListFiles::BlockedNetworks, &a.blocked_networks),
        (ListFiles::Passkeys, &a.passkeys),
        (ListFiles::Hybrids, &a.hybrids),
    ]
    .into_iter()
    .filter_map(|(lists, path)| Some((lists, path.clone()?)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(byte: u8) -> ListChange {
        (InfoHash([byte; 20]), true)
    }

    #[test]
    fn a_request_during_a_reload_keeps_the_edits_made_before_it_for_that_reload() {
        let mut kept = KeptEdits::default();
        kept.made(edit(0)); // no reload asked for: not kept
        kept.asked(false);
        kept.made(edit(1));
        kept.asked(true); // a second SIGHUP while the first reload runs
        kept.made(edit(2));
        assert_eq!(kept.finished(true, true), [edit(1), edit(2)]);
        kept.made(edit(3));
        assert_eq!(kept.finished(true, false), [edit(2), edit(3)]);
        kept.made(edit(4));
        assert_eq!(kept.finished(true, false), []);
    }

    #[test]
    fn edits_are_applied_again_only_to_a_list_taken() {
        let mut kept = KeptEdits::default();
        kept.asked(false);
        kept.made(edit(1));
        kept.asked(true);
        kept.made(edit(2));
        assert_eq!(kept.finished(false, true), []);
        assert_eq!(kept.finished(true, false), [edit(2)]);
    }

    #[test]
    fn a_set_of_lists_holds_what_it_was_given() {
        let some = Lists::of([ListFiles::Passkeys, ListFiles::Hybrids]);
        assert!(some.has(ListFiles::Passkeys) && some.has(ListFiles::Hybrids));
        assert!(!some.has(ListFiles::Access) && !some.has(ListFiles::BlockedNetworks));
        let more = some.with(Lists::of([ListFiles::Access]));
        assert!(more.has(ListFiles::Access) && more.has(ListFiles::Hybrids));
        assert!(Lists::default().is_empty() && !some.is_empty());
        for list in [
            ListFiles::Access,
            ListFiles::BlockedNetworks,
            ListFiles::Passkeys,
            ListFiles::Hybrids,
        ] {
            assert!(Lists::ALL.has(list));
        }
    }
}
