//! The info hashes that aquatic_udp_load_test 0.9 announces, so that a
//! whitelist-mode tracker (Debian's opentracker) can be measured under that
//! independent load generator too (bench/run.sh --aquatic-load). It draws
//! every hash as twenty single bytes from rand 0.8's `SmallRng` seeded with
//! a fixed number; the same crate version and seed give the same hashes.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The seed of aquatic_udp_load_test 0.9's info hash generator.
const SEED: u64 = 0xc3aa_8be6_17b3_acce;

/// Its first `torrents` info hashes, in its order.
pub fn info_hashes(torrents: usize) -> impl Iterator<Item = [u8; 20]> {
    let mut rng = SmallRng::seed_from_u64(SEED);
    (0..torrents).map(move |_| {
        let mut hash = [0u8; 20];
        // Byte by byte, as it does: `fill` would draw differently.
        for byte in &mut hash {
            *byte = rng.gen();
        }
        hash
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_hashes_are_the_load_testers() {
        // The first two hashes aquatic_udp_load_test 0.9.0 generates.
        let hex: Vec<String> = info_hashes(2).map(|h| crate::swarm::hex(&h)).collect();
        assert_eq!(
            hex,
            [
                "9b2c89021127d21d52983827ff49ffb3f783d5af",
                "bb8f3bd4747077593f776fe69e474ba5dbafb877"
            ]
        );
    }
}
