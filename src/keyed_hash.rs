//! A secret-keyed hash for spreading values that clients choose (peer
//! addresses, networks) over buckets or slots, so that nobody can aim many
//! of theirs at one place, nor theirs at someone else's.

/// SipHash-2-4 under keys drawn once per tracker. The standard library's
/// keyed SipHash is deprecated only for hash tables (it is slower than the
/// default), and a keyed pseudo-random function is just what is needed
/// here: faster hashes (foldhash) disclaim resistance to callers who study
/// timing, and a multiply-shift over folded words lets anyone who can
/// pick the folded-away bits collide with a chosen value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyedHash {
    keys: (u64, u64),
}

impl KeyedHash {
    pub fn draw(rng: &mut fastrand::Rng) -> Self {
        KeyedHash {
            keys: (rng.u64(..), rng.u64(..)),
        }
    }

    pub fn hash(self, bytes: &[u8]) -> u64 {
        use std::hash::Hasher;
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new_with_keys(self.keys.0, self.keys.1);
        hasher.write(bytes);
        hasher.finish()
    }
}
