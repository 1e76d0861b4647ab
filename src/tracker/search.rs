//! Finding an info hash in a leaf's sorted vector.
//!
//! Binary search over a few hundred 30-byte entries costs a cache miss per
//! step. Honest info hashes are evenly spread, so the place a hash would
//! take if they were exactly even (after the prefix all of the leaf shares)
//! is usually a few entries off; the search starts there and gallops
//! outwards, touching a few neighbouring cache lines. Attacker-chosen hashes
//! can spoil the guess, but galloping still needs at most about twice the
//! probes of a binary search.

use std::cmp::Ordering;

use super::crowd::Crowd;
use super::small::Small;

/// An info hash as a tuple that compares in the same order as its bytes,
/// but in three integer comparisons instead of a `memcmp` call.
pub fn key(hash: &[u8; 20]) -> (u64, u64, u32) {
    let word = |at: usize| u64::from_be_bytes(hash[at..at + 8].try_into().unwrap_or_default());
    let tail = u32::from_be_bytes(hash[16..20].try_into().unwrap_or_default());
    (word(0), word(8), tail)
}

/// An entry stored by info hash.
pub trait Keyed {
    fn hash(&self) -> &[u8; 20];
}

impl<const N: usize, const W: usize> Keyed for Small<N, W> {
    fn hash(&self) -> &[u8; 20] {
        &self.hash
    }
}

impl Keyed for Crowd {
    fn hash(&self) -> &[u8; 20] {
        &self.hash
    }
}

/// Below this length a plain binary search touches few enough lines.
const GUESS_FROM: usize = 8;

/// Whether the search starts from a guess rather than bisecting: past 16
/// nibbles the leading word is all prefix, and only attacks get there.
fn guesses(len: usize, prefix: usize) -> bool {
    len >= GUESS_FROM && prefix < 16
}

/// The index a guessing search probes first.
fn first_guess(len: usize, hash: &[u8; 20], prefix: usize) -> usize {
    let spread = key(hash).0 << (4 * prefix);
    ((u128::from(spread) * len as u128) >> 64) as usize
}

/// Starts loading the entry a search for `hash` probes first, so that the
/// cache misses of several searches overlap instead of queueing.
pub fn prefetch<T: Keyed>(entries: &[T], hash: &[u8; 20], prefix: usize) {
    let len = entries.len();
    let at = if guesses(len, prefix) {
        first_guess(len, hash, prefix)
    } else {
        len / 2
    };
    if let Some(entry) = entries.get(at) {
        load_early(entry);
    }
}

/// Asks the CPU to start loading `item`'s cache line, so that a miss on it
/// overlaps with other work instead of stalling the read that needs it.
pub fn load_early<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, and this one
    // points at a live reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// Where `hash` is in `entries` (sorted, sharing their first `prefix`
/// nibbles), or where it would go: as `slice::binary_search`.
pub fn position<T: Keyed>(entries: &[T], hash: &[u8; 20], prefix: usize) -> Result<usize, usize> {
    let wanted = key(hash);
    let order = |at: usize| key(entries[at].hash()).cmp(&wanted);
    let len = entries.len();
    if !guesses(len, prefix) {
        return entries.binary_search_by(|e| key(e.hash()).cmp(&wanted));
    }
    let guess = first_guess(len, hash, prefix);
    // Bracket the answer in [low, high): entries before `low` are smaller
    // and the entry at `high` (if any) is larger.
    let (mut low, mut high) = (0, len);
    let mut step = 1;
    match order(guess) {
        Ordering::Equal => return Ok(guess),
        Ordering::Less => {
            low = guess + 1;
            while guess + step < len {
                match order(guess + step) {
                    Ordering::Less => low = guess + step + 1,
                    Ordering::Equal => return Ok(guess + step),
                    Ordering::Greater => {
                        high = guess + step;
                        break;
                    }
                }
                step *= 2;
            }
        }
        Ordering::Greater => {
            high = guess;
            while step <= guess {
                match order(guess - step) {
                    Ordering::Greater => high = guess - step,
                    Ordering::Equal => return Ok(guess - step),
                    Ordering::Less => {
                        low = guess - step + 1;
                        break;
                    }
                }
                step *= 2;
            }
        }
    }
    match entries[low..high].binary_search_by(|e| key(e.hash()).cmp(&wanted)) {
        Ok(at) => Ok(low + at),
        Err(at) => Err(low + at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: [u8; 20]) -> Small<1> {
        Small::empty(hash, 0, 0)
    }

    /// Every present and absent hash lands where binary search says.
    fn agrees(entries: &[Small<1>], probes: &[[u8; 20]], prefix: usize) {
        let plain = |hash: &[u8; 20]| entries.binary_search_by(|e| key(&e.hash).cmp(&key(hash)));
        for hash in entries.iter().map(|e| &e.hash).chain(probes) {
            assert_eq!(position(entries, hash, prefix), plain(hash), "{hash:?}");
        }
    }

    #[test]
    fn matches_binary_search_on_even_and_skewed_hashes() {
        let mut rng = fastrand::Rng::with_seed(11);
        let random = |rng: &mut fastrand::Rng| {
            let mut hash = [0u8; 20];
            rng.fill(&mut hash);
            hash[0] = 0xab;
            hash[1] = 0xc0 | (hash[1] & 15);
            hash
        };
        for len in [0, 1, 7, 8, 9, 100, 1000] {
            let mut entries: Vec<_> = (0..len).map(|_| entry(random(&mut rng))).collect();
            entries.sort_unstable_by_key(|e| key(&e.hash));
            let probes: Vec<_> = (0..200).map(|_| random(&mut rng)).collect();
            agrees(&entries, &probes, 3);
            // A wrong prefix only spoils the guess.
            agrees(&entries, &probes, 0);
            // All hashes crowded at one end of the range.
            for e in entries.iter_mut() {
                e.hash[2..6].fill(0);
            }
            entries.sort_unstable_by_key(|e| key(&e.hash));
            agrees(&entries, &probes, 3);
            agrees(&entries, &[[0xab; 20], [0; 20], [0xff; 20]], 3);
        }
    }
}
