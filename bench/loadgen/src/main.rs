//! Load generator for opentracker-compatible trackers, over loopback only.
//! See `loadgen help` and bench/run.sh.

mod aquatic;
mod args;
mod floor;
mod fullscrape;
mod http;
mod http_wire;
mod mmsg;
mod phases;
mod procfs;
mod startup;
mod swarm;
mod tally;
mod udp;
mod udp_wire;
mod workload;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use args::Args;
use swarm::Swarm;

const USAGE: &str = "\
usage: loadgen COMMAND [OPTIONS]

commands:
  hashes      print the swarm's info hashes, 40 hex digits a line (a whitelist)
  aquatic-hashes  print the info hashes aquatic_udp_load_test 0.9 announces
              (--torrents N, 1000000), for a whitelist-mode tracker
  udp         BEP 15 load: connect, then announces and scrapes
  http        HTTP announces and scrapes, one request per connection
              (--keep-alive: many requests per connection)
  fullscrape  one GET /scrape without a query (--gzip to ask for gzip)
  startup     launch a tracker (after --) until it answers, --repeat times
  wait        wait until a running tracker answers
  floor       serve BEP 15 statelessly (fixed replies, no state) until
              killed: the cheapest possible server, to read trackers against
              (--batched: the same, moving datagrams in batches)

swarm (hashes, udp, http):
  --torrents N      torrents (1000000)       --peers N      peers (2000000)
  --seeders PCT     seeders' share (75)      --zipf S       popularity exponent (1.0)
  --clients N       virtual clients, one loopback address and one request
                    in flight each (64)      --seed N       hash seed (1)
load (udp, http):
  --target ADDR     the tracker, a loopback address:port (required); over
                    IPv6 ([::1]:PORT) clients send from fd77::/64, which
                    takes `ip -6 route add local fd77::/64 dev lo` (root)
  --prefill         first announce every peer once, in order (event=started)
  --duration SECS   length of the measured phase (10)
  --requests N      ...or this many requests, whichever comes first (50000000)
  --prefill-limit SECS  give up the prefill after this long (600)
  --numwant N (30)  --scrape-ratio F (0.01)  --timeout-ms MS (1000)
  --threads N       sender threads (1)
  --reuse N         udp: requests per connection id, at most 60 s (4)
  --in-flight N     udp: requests each client keeps outstanding (4)
  --server-pid PID  report the server's CPU time per response and memory
fullscrape: --target ADDR [--gzip] [--server-pid PID] [--timeout SECS]
startup:    --udp ADDR --tcp ADDR [--repeat N] [--timeout SECS] -- COMMAND...
floor:      --listen ADDR (a UDP address) [--batched: UDP in batches of 32,
            recvmmsg/sendmmsg]
wait:       --udp ADDR --tcp ADDR [--timeout SECS] [--announce [swarm options]]
            (--announce: until the swarm's first peer is accepted, for
            trackers that load a whitelist in the background)

Results end with one line `RESULT key=value ...`.";

fn hashes(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, &Swarm::VALUED, &[])?;
    let swarm = Swarm::from_args(&args)?;
    let mut out = BufWriter::new(io::stdout().lock());
    for torrent in 0..swarm.torrents {
        writeln!(out, "{}", swarm::hex(&swarm.info_hash(torrent))).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn aquatic_hashes(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, &["torrents"], &[])?;
    let torrents = args.get("torrents", 1_000_000usize)?;
    let mut out = BufWriter::new(io::stdout().lock());
    for hash in aquatic::info_hashes(torrents) {
        writeln!(out, "{}", swarm::hex(&hash)).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = raw.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "hashes" => hashes(rest),
        "aquatic-hashes" => aquatic_hashes(rest),
        "udp" => udp::run(rest),
        "http" => http::run(rest),
        "fullscrape" => fullscrape::run(rest),
        "startup" => startup::startup(rest),
        "wait" => startup::wait(rest),
        "floor" => floor::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadgen: {message}");
            ExitCode::FAILURE
        }
    }
}
