//! The torrent index: a trie on info-hash nibbles whose leaves are small
//! sorted [`Leaf`]s.
//!
//! 4096 roots take the first three nibbles; a leaf that would pass
//! [`SPLIT_AT`] torrents splits 16 ways on its next nibble. Hashes are
//! attacker-chosen, so this bound is what keeps inserts cheap when many
//! share a prefix; the split costs 16 leaves per thousand torrents, and a
//! sweep merges an inner node back once its torrents have gone. Everything
//! stays in hash order, so a walk is an in-order traversal with nothing to
//! sort and a cursor that is just the last hash seen.

use super::leaf::Leaf;
use super::torrent::Torrent;

const ROOT_NIBBLES: usize = 3;
const NIBBLES: usize = 40;
/// A leaf splits rather than grow past this many torrents.
pub const SPLIT_AT: usize = 1024;
/// An inner node whose leaves hold fewer torrents than this merges back.
const MERGE_BELOW: usize = SPLIT_AT / 4;

fn nibble(hash: &[u8; 20], at: usize) -> usize {
    usize::from(hash[at / 2] >> (4 * (1 - at % 2)) & 15)
}

fn root_of(hash: &[u8; 20]) -> usize {
    usize::from(hash[0]) << 4 | usize::from(hash[1] >> 4)
}

fn set_nibble(hash: &mut [u8; 20], at: usize, value: usize) {
    let shift = 4 * (1 - at % 2);
    hash[at / 2] = hash[at / 2] & !(15 << shift) | ((value as u8) << shift);
}

#[derive(Debug)]
enum Node {
    Leaf(Leaf),
    /// 16 children, one per value of the next nibble.
    Inner(Box<[Node]>),
}

/// All torrents, by info hash, or those of one share of the hash space.
pub struct Index {
    /// The first three nibbles of the hashes under `roots[0]`.
    first_root: usize,
    roots: Vec<Node>,
    len: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index::for_share(0, 1)
    }
}

impl Index {
    /// An index for hashes whose first byte falls in share `share` of
    /// `shares` equal parts of its range (`shares` a power of two, at most
    /// 256). It holds only the roots of its share, so a tracker split into
    /// many shards costs no more at idle than a whole one.
    pub fn for_share(share: usize, shares: usize) -> Self {
        let per_share = (1 << (4 * ROOT_NIBBLES)) / shares;
        Index {
            first_root: share * per_share,
            roots: (0..per_share)
                .map(|_| Node::Leaf(Leaf::new(ROOT_NIBBLES)))
                .collect(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Where in `roots` the root of `hash` is; the hash must be in this
    /// index's share.
    fn root(&self, hash: &[u8; 20]) -> usize {
        root_of(hash) - self.first_root
    }

    /// The leaf that holds (or would hold) `hash`.
    pub fn leaf(&self, hash: &[u8; 20]) -> &Leaf {
        let mut node = &self.roots[self.root(hash)];
        let mut depth = ROOT_NIBBLES;
        loop {
            match node {
                Node::Leaf(leaf) => return leaf,
                Node::Inner(children) => node = &children[nibble(hash, depth)],
            }
            depth += 1;
        }
    }

    /// The leaf for `hash`, split first if full so that a torrent may be
    /// added to it. Call [`Index::added`] when one is.
    pub fn leaf_mut(&mut self, hash: &[u8; 20]) -> &mut Leaf {
        let at = self.root(hash);
        let mut node = &mut self.roots[at];
        let mut depth = ROOT_NIBBLES;
        loop {
            if let Node::Leaf(leaf) = node {
                // Past the last nibble all hashes in a leaf are equal, so
                // it holds one torrent and never fills.
                if leaf.len() >= SPLIT_AT && depth < NIBBLES {
                    let children = std::mem::take(leaf).split();
                    *node = Node::Inner(children.into_iter().map(Node::Leaf).collect());
                }
            }
            match node {
                Node::Leaf(leaf) => return leaf,
                Node::Inner(children) => node = &mut children[nibble(hash, depth)],
            }
            depth += 1;
        }
    }

    /// How many roots this index holds.
    #[cfg(test)]
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// How many nibbles select the leaf of `hash`.
    #[cfg(test)]
    pub fn depth(&self, hash: &[u8; 20]) -> usize {
        let mut node = &self.roots[self.root(hash)];
        let mut depth = ROOT_NIBBLES;
        while let Node::Inner(children) = node {
            node = &children[nibble(hash, depth)];
            depth += 1;
        }
        depth
    }

    pub fn added(&mut self) {
        self.len += 1;
    }

    /// Visits torrents after `after` in ascending hash order until `visit`
    /// returns false; returns true when it did.
    pub fn visit_after(
        &self,
        after: Option<&[u8; 20]>,
        visit: &mut dyn FnMut(Torrent<'_>) -> bool,
    ) -> bool {
        let first = after.map_or(0, |hash| self.root(hash));
        for (at, node) in self.roots.iter().enumerate().skip(first) {
            let on_path = after.filter(|_| at == first);
            if visit_node(node, ROOT_NIBBLES, on_path, visit) {
                return true;
            }
        }
        false
    }

    /// Calls `sweep` on whole leaves after the one holding `cursor`, until
    /// about `max` torrents were swept. Returns the cursor to resume from,
    /// or `None` when the sweep reached the end. `sweep` returns how many
    /// torrents it dropped.
    pub fn sweep(
        &mut self,
        cursor: Option<&[u8; 20]>,
        max: usize,
        sweep: &mut dyn FnMut(&mut Leaf) -> usize,
    ) -> Option<[u8; 20]> {
        let first = cursor.map_or(0, |hash| self.root(hash));
        let mut state = SweepState {
            left: max,
            dropped: 0,
            sweep,
        };
        let mut prefix = [0u8; 20];
        let mut stopped = None;
        for at in first..self.roots.len() {
            let root = self.first_root + at;
            prefix[0] = (root >> 4) as u8;
            prefix[1] = ((root & 15) << 4) as u8;
            let on_path = cursor.filter(|_| at == first);
            let node = &mut self.roots[at];
            stopped = sweep_node(node, ROOT_NIBBLES, &mut prefix, on_path, &mut state);
            if stopped.is_some() {
                break;
            }
        }
        self.len -= state.dropped;
        stopped
    }
}

fn visit_node(
    node: &Node,
    depth: usize,
    after: Option<&[u8; 20]>,
    visit: &mut dyn FnMut(Torrent<'_>) -> bool,
) -> bool {
    match node {
        Node::Leaf(leaf) => leaf.visit_after(after, visit),
        Node::Inner(children) => {
            let first = after.map_or(0, |a| nibble(a, depth));
            for (at, child) in children.iter().enumerate().skip(first) {
                let on_path = after.filter(|_| at == first);
                if visit_node(child, depth + 1, on_path, visit) {
                    return true;
                }
            }
            false
        }
    }
}

struct SweepState<'a> {
    left: usize,
    dropped: usize,
    sweep: &'a mut dyn FnMut(&mut Leaf) -> usize,
}

/// Sweeps the leaves under `node`, skipping those up to and including the
/// one on `cursor`'s path. `prefix` holds the path so far; returns the
/// cursor to stop at once the budget ran out.
fn sweep_node(
    node: &mut Node,
    depth: usize,
    prefix: &mut [u8; 20],
    cursor: Option<&[u8; 20]>,
    state: &mut SweepState,
) -> Option<[u8; 20]> {
    let children = match node {
        Node::Leaf(leaf) => {
            if cursor.is_some() {
                return None;
            }
            let before = leaf.len();
            state.dropped += (state.sweep)(leaf);
            // Empty leaves are nearly free, so only torrents count.
            state.left = state.left.saturating_sub(before);
            return (state.left == 0).then_some(*prefix);
        }
        Node::Inner(children) => children,
    };
    let first = cursor.map_or(0, |c| nibble(c, depth));
    for at in first..children.len() {
        set_nibble(prefix, depth, at);
        let on_path = cursor.filter(|_| at == first);
        if let Some(stop) = sweep_node(&mut children[at], depth + 1, prefix, on_path, state) {
            return Some(stop);
        }
    }
    set_nibble(prefix, depth, 0);
    merge_if_small(node, depth);
    None
}

/// Turns an inner node of leaves (for hashes sharing `depth` nibbles) back
/// into one leaf once it holds few.
fn merge_if_small(node: &mut Node, depth: usize) {
    let Node::Inner(children) = node else { return };
    let mut total = 0;
    for child in children.iter() {
        match child {
            Node::Leaf(leaf) => total += leaf.len(),
            Node::Inner(_) => return,
        }
    }
    if total >= MERGE_BELOW {
        return;
    }
    let mut merged = Leaf::new(depth);
    for child in std::mem::take(children).into_vec() {
        if let Node::Leaf(leaf) = child {
            merged.absorb(leaf);
        }
    }
    *node = Node::Leaf(merged);
}
