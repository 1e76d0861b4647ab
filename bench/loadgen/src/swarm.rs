//! The swarm model: torrents, peers and their popularity, all derived from a
//! seed so that separate runs (and the whitelist) agree without sharing state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::args::Args;

/// Announced ports start here, so that every peer's port is unprivileged.
const FIRST_PORT: u32 = 1025;
/// At most this many peers share one source address (ports 1025..65025).
const PORTS_PER_ADDRESS: u32 = 64_000;

pub struct Swarm {
    pub torrents: u32,
    pub peers: u32,
    /// Virtual clients, each with its own loopback source address.
    pub clients: u32,
    seed: u64,
    seeder_percent: u64,
    zipf_exponent: f64,
}

/// One step of the splitmix64 generator: a cheap, well-mixed hash of `x`.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// Distinct salts keep the hash, popularity and seeding streams independent.
const HASH_SALT: u64 = 0x6861_7368;
const TORRENT_SALT: u64 = 0x746f_7272;
const SEEDER_SALT: u64 = 0x7365_6564;

impl Swarm {
    pub const VALUED: [&'static str; 6] =
        ["torrents", "peers", "clients", "seed", "seeders", "zipf"];

    pub fn from_args(args: &Args) -> Result<Swarm, String> {
        let swarm = Swarm {
            torrents: args.get("torrents", 1_000_000)?,
            peers: args.get("peers", 2_000_000)?,
            clients: args.get("clients", 64)?,
            seed: args.get("seed", 1)?,
            seeder_percent: args.get("seeders", 75)?,
            zipf_exponent: args.get("zipf", 1.0)?,
        };
        if swarm.torrents == 0 || swarm.peers == 0 || swarm.clients == 0 {
            return Err("--torrents, --peers and --clients must be positive".into());
        }
        if swarm.clients > 250 * 256 {
            return Err("--clients: at most 64000 source addresses".into());
        }
        if swarm.peers.div_ceil(swarm.clients) > PORTS_PER_ADDRESS {
            return Err(format!(
                "--peers {} needs at least {} --clients (64000 ports per address)",
                swarm.peers,
                swarm.peers.div_ceil(PORTS_PER_ADDRESS)
            ));
        }
        if swarm.seeder_percent > 100 {
            return Err("--seeders is a percentage".into());
        }
        Ok(swarm)
    }

    pub fn info_hash(&self, torrent: u32) -> [u8; 20] {
        let base = mix(self.seed ^ HASH_SALT).wrapping_add(u64::from(torrent) << 2);
        let mut hash = [0u8; 20];
        hash[..8].copy_from_slice(&mix(base).to_be_bytes());
        hash[8..16].copy_from_slice(&mix(base + 1).to_be_bytes());
        hash[16..].copy_from_slice(&mix(base + 2).to_be_bytes()[..4]);
        hash
    }

    /// The torrent a peer belongs to. The first `torrents` peers cover every
    /// torrent once (so all of them exist); the rest follow a Zipf-like law.
    pub fn torrent_of(&self, peer: u32) -> u32 {
        if peer < self.torrents {
            return peer;
        }
        let bits = mix(self.seed ^ TORRENT_SALT ^ (u64::from(peer) << 20));
        let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
        self.zipf_rank(unit)
    }

    /// Inverts the continuous power law on [1, n+1) with the configured
    /// exponent: rank 0 is the most popular torrent.
    fn zipf_rank(&self, unit: f64) -> u32 {
        let n = f64::from(self.torrents) + 1.0;
        let s = self.zipf_exponent;
        let x = if (s - 1.0).abs() < 1e-9 {
            n.powf(unit)
        } else {
            let a = 1.0 - s;
            (1.0 + unit * (n.powf(a) - 1.0)).powf(1.0 / a)
        };
        (x as u32).saturating_sub(1).min(self.torrents - 1)
    }

    pub fn is_seeder(&self, peer: u32) -> bool {
        mix(self.seed ^ SEEDER_SALT ^ (u64::from(peer) << 16)) % 100 < self.seeder_percent
    }

    pub fn port_of(&self, peer: u32) -> u16 {
        (FIRST_PORT + peer / self.clients) as u16
    }

    /// How many peers client `client` owns: peer `i` belongs to client
    /// `i % clients`, whose address it announces from.
    pub fn peers_of_client(&self, client: u32) -> u32 {
        (self.peers - client).div_ceil(self.clients)
    }

    /// The `nth` peer of `client`.
    pub fn peer_of_client(&self, client: u32, nth: u32) -> u32 {
        client + nth * self.clients
    }

    pub fn peer_id(&self, peer: u32) -> [u8; 20] {
        let mut id = *b"-LG0001-000000000000";
        let digits = format!("{peer:012}");
        id[8..].copy_from_slice(digits.as_bytes());
        id
    }
}

/// The loopback source address of a client: 127.77.x.y, avoiding .0 and
/// broadcast-looking host parts.
pub fn client_address(client: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, (client / 250) as u8, (1 + client % 250) as u8)
}

/// The prefix IPv6 clients send from. Unlike 127.0.0.0/8 it is not local
/// by default: it takes `ip -6 route add local fd77::/64 dev lo`.
pub const CLIENT_PREFIX_V6: &str = "fd77::/64";

/// The source address of a client that speaks to a tracker over IPv6 (when
/// `ipv6`) or IPv4. Clients number at most 64000, so one word holds them.
pub fn client_ip(client: u32, ipv6: bool) -> IpAddr {
    if ipv6 {
        Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1 + client as u16).into()
    } else {
        client_address(client).into()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swarm(torrents: u32, peers: u32) -> Swarm {
        Swarm {
            torrents,
            peers,
            clients: 8,
            seed: 1,
            seeder_percent: 75,
            zipf_exponent: 1.0,
        }
    }

    #[test]
    fn hashes_are_deterministic_and_distinct() {
        let s = swarm(1000, 2000);
        let mut all: Vec<_> = (0..1000).map(|t| s.info_hash(t)).collect();
        assert_eq!(all[7], s.info_hash(7));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn every_torrent_has_a_peer_and_popularity_is_skewed() {
        let s = swarm(1000, 20_000);
        let mut counts = vec![0u32; 1000];
        for peer in 0..s.peers {
            counts[s.torrent_of(peer) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c >= 1));
        assert!(counts[0] > 20 * counts[999]);
    }

    #[test]
    fn peers_have_distinct_addresses() {
        let s = swarm(10, 100);
        for ipv6 in [false, true] {
            let mut seen: Vec<_> = (0..s.peers)
                .map(|p| (client_ip(p % s.clients, ipv6), s.port_of(p)))
                .collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 100);
            assert!(seen.iter().all(|(ip, _)| ip.is_ipv6() == ipv6));
        }
        let owned: u32 = (0..s.clients).map(|c| s.peers_of_client(c)).sum();
        assert_eq!(owned, s.peers);
    }

    #[test]
    fn seeder_share_is_about_three_quarters() {
        let s = swarm(10, 100_000);
        let seeders = (0..s.peers).filter(|&p| s.is_seeder(p)).count();
        assert!((73_000..77_000).contains(&seeders), "{seeders}");
    }
}
