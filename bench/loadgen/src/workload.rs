//! What each virtual client asks for next: the prefill walk over its own peers,
//! or, while measuring, random re-announces of its peers with a few scrapes.

use std::time::{Duration, Instant};

use crate::args::Args;
use crate::swarm::Swarm;

/// BEP 15 event numbers; HTTP uses the matching words.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    None = 0,
    Started = 2,
}

#[derive(Clone, Copy, Debug)]
pub enum Job {
    Announce { peer: u32, event: Event },
    Scrape { torrent: u32 },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every peer announces `started` once, in order.
    Prefill,
    /// Uniformly random peers re-announce; `scrape_ratio` of requests scrape.
    Measure,
}

pub struct Workload {
    pub swarm: Swarm,
    pub numwant: u32,
    pub scrape_ratio: f64,
    /// The measured phase stops at this many finished requests...
    pub max_requests: u64,
    /// ...or after this long, whichever comes first.
    pub duration: Duration,
    /// The prefill gives up after this long.
    pub prefill_limit: Duration,
    pub timeout: Duration,
    pub prefill: bool,
    pub threads: u32,
}

impl Workload {
    pub const VALUED: [&'static str; 7] = [
        "numwant",
        "scrape-ratio",
        "requests",
        "duration",
        "prefill-limit",
        "timeout-ms",
        "threads",
    ];
    pub const SWITCHES: [&'static str; 1] = ["prefill"];

    pub fn from_args(args: &Args) -> Result<Workload, String> {
        let workload = Workload {
            swarm: Swarm::from_args(args)?,
            numwant: args.get("numwant", 30)?,
            scrape_ratio: args.get("scrape-ratio", 0.01)?,
            max_requests: args.get("requests", 50_000_000)?,
            duration: Duration::from_secs_f64(args.get("duration", 10.0)?),
            prefill_limit: Duration::from_secs_f64(args.get("prefill-limit", 600.0)?),
            timeout: Duration::from_millis(args.get("timeout-ms", 1000)?),
            prefill: args.flag("prefill"),
            threads: args.get("threads", 1)?,
        };
        if !(0.0..=1.0).contains(&workload.scrape_ratio) {
            return Err("--scrape-ratio is a fraction between 0 and 1".into());
        }
        if workload.threads == 0 || workload.threads > workload.swarm.clients {
            return Err("--threads must be between 1 and --clients".into());
        }
        Ok(workload)
    }

    /// The next job of `client`, or `None` once its prefill walk is done.
    pub fn next_job(&self, phase: Phase, client: u32, cursor: &mut u32) -> Option<Job> {
        let swarm = &self.swarm;
        match phase {
            Phase::Prefill => {
                if *cursor >= swarm.peers_of_client(client) {
                    return None;
                }
                let peer = swarm.peer_of_client(client, *cursor);
                *cursor += 1;
                Some(Job::Announce {
                    peer,
                    event: Event::Started,
                })
            }
            Phase::Measure => {
                let nth = fastrand::u32(..swarm.peers_of_client(client));
                let peer = swarm.peer_of_client(client, nth);
                if fastrand::f64() < self.scrape_ratio {
                    Some(Job::Scrape {
                        torrent: swarm.torrent_of(peer),
                    })
                } else {
                    Some(Job::Announce {
                        peer,
                        event: Event::None,
                    })
                }
            }
        }
    }

    /// The clients a sender thread owns: every `threads`-th one.
    pub fn clients_of_thread(&self, thread: u32) -> impl Iterator<Item = u32> {
        (thread..self.swarm.clients).step_by(self.threads as usize)
    }

    /// Per-thread share of the request budget.
    pub fn thread_budget(&self) -> u64 {
        self.max_requests.div_ceil(u64::from(self.threads))
    }

    pub fn deadline(&self, phase: Phase, start: Instant) -> Instant {
        start
            + match phase {
                Phase::Prefill => self.prefill_limit,
                Phase::Measure => self.duration,
            }
    }
}
