//! Counting what came back, and printing it: a human summary and one
//! `RESULT key=value ...` line that bench/run.sh parses.

use std::time::Duration;

use crate::procfs;

#[derive(Default)]
pub struct Tally {
    /// Round-trip time of every answered request, in nanoseconds.
    pub latencies_ns: Vec<u32>,
    pub connects: u64,
    pub announces: u64,
    pub scrapes: u64,
    /// Answers that say no: UDP action 3, HTTP status other than 200, bencoded failures.
    pub error_replies: u64,
    /// Announces refused by an access list (UDP 8-byte reply, HTTP failure reason).
    pub refused: u64,
    pub timeouts: u64,
    /// Connections refused or reset, unparsable answers.
    pub io_errors: u64,
    /// Keep-alive connections the server closed between requests.
    pub reconnects: u64,
    /// Prefill announces that never got an answer after all retries.
    pub abandoned: u64,
}

impl Tally {
    pub fn record(&mut self, latency: Duration) {
        self.latencies_ns
            .push(u32::try_from(latency.as_nanos()).unwrap_or(u32::MAX));
    }

    /// Every answer the server sent, errors included.
    pub fn responses(&self) -> u64 {
        self.connects + self.announces + self.scrapes + self.error_replies + self.refused
    }

    pub fn errors(&self) -> u64 {
        self.error_replies + self.refused + self.timeouts + self.io_errors + self.abandoned
    }

    /// Requests that are over, answered or not; the request budget counts these.
    pub fn finished(&self) -> u64 {
        self.responses() + self.timeouts + self.io_errors
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies_ns.extend(other.latencies_ns);
        self.connects += other.connects;
        self.announces += other.announces;
        self.scrapes += other.scrapes;
        self.error_replies += other.error_replies;
        self.refused += other.refused;
        self.timeouts += other.timeouts;
        self.io_errors += other.io_errors;
        self.reconnects += other.reconnects;
        self.abandoned += other.abandoned;
    }
}

/// Latency percentiles in microseconds: p50, p99, p99.9.
fn percentiles(latencies_ns: &mut [u32]) -> [f64; 3] {
    if latencies_ns.is_empty() {
        return [0.0; 3];
    }
    latencies_ns.sort_unstable();
    [0.50, 0.99, 0.999].map(|q| {
        let index = ((latencies_ns.len() as f64 * q) as usize).min(latencies_ns.len() - 1);
        f64::from(latencies_ns[index]) / 1000.0
    })
}

/// CPU time spent during a phase by the server (if its pid was given) and
/// by the load generator itself, which shows which of the two was the limit.
pub struct CpuUse {
    pub server: Option<(u32, u64)>,
    pub own_us: u64,
    /// All processes together: what is left after the server and the load
    /// generator is interference from the rest of the machine.
    pub machine_us: u64,
}

pub fn report(scenario: &str, mut tally: Tally, elapsed: Duration, cpu: CpuUse) {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let responses = tally.responses();
    let rate = responses as f64 / seconds;
    let [p50, p99, p999] = percentiles(&mut tally.latencies_ns);
    println!(
        "{scenario}: {responses} responses in {seconds:.2} s = {rate:.0}/s \
         (connect {}, announce {}, scrape {})",
        tally.connects, tally.announces, tally.scrapes
    );
    let counts = [
        ("connects", tally.connects),
        ("announces", tally.announces),
        ("scrapes", tally.scrapes),
        ("errors", tally.errors()),
        ("error_replies", tally.error_replies),
        ("refused", tally.refused),
        ("timeouts", tally.timeouts),
        ("io_errors", tally.io_errors),
        ("abandoned", tally.abandoned),
        ("reconnects", tally.reconnects),
    ];
    let human: Vec<String> = counts[3..]
        .iter()
        .map(|(name, count)| format!("{} {count}", name.replace('_', " ")))
        .collect();
    println!("  {}", human.join(", "));
    println!("  latency p50 {p50:.1} us, p99 {p99:.1} us, p99.9 {p999:.1} us");
    let mut result = format!(
        "RESULT scenario={scenario} seconds={seconds:.3} responses={responses} rps={rate:.0} \
         p50_us={p50:.1} p99_us={p99:.1} p999_us={p999:.1}"
    );
    for (name, count) in counts {
        result += &format!(" {name}={count}");
    }
    let busy = |us: u64| us as f64 / 1e4 / seconds;
    println!("  load generator busy {:.0} %", busy(cpu.own_us));
    result += &format!(" loadgen_busy_pct={:.0}", busy(cpu.own_us));
    if let Some((pid, used_us)) = cpu.server {
        let per_response = used_us as f64 / responses.max(1) as f64;
        println!(
            "  server (pid {pid}) CPU {:.3} s = {per_response:.2} us per response, busy {:.0} %",
            used_us as f64 / 1e6,
            busy(used_us)
        );
        result += &format!(
            " server_cpu_us={used_us} cpu_us_per_response={per_response:.2} server_busy_pct={:.0}",
            busy(used_us)
        );
        if let Ok(status) = procfs::memory(pid) {
            result += &format!(" vmrss_kb={} vmhwm_kb={}", status.rss_kb, status.hwm_kb);
        }
    }
    // Busy percentages are of one core; the machine has several.
    let server_us = cpu.server.map_or(0, |(_, used)| used);
    let others = busy(cpu.machine_us.saturating_sub(cpu.own_us + server_us));
    println!("  other processes busy {others:.0} % (of one core)");
    result += &format!(" others_busy_pct={others:.0}");
    println!("{result}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranked_samples() {
        let mut samples: Vec<u32> = (1..=1000).map(|us| us * 1000).collect();
        let [p50, p99, p999] = percentiles(&mut samples);
        assert_eq!((p50, p99, p999), (501.0, 991.0, 1000.0));
        assert_eq!(percentiles(&mut []), [0.0; 3]);
    }

    #[test]
    fn finished_counts_answers_and_failures() {
        let mut tally = Tally {
            announces: 3,
            timeouts: 2,
            io_errors: 1,
            reconnects: 5,
            ..Tally::default()
        };
        tally.merge(Tally {
            refused: 1,
            ..Tally::default()
        });
        assert_eq!(tally.responses(), 4);
        assert_eq!(tally.finished(), 7);
        assert_eq!(tally.errors(), 4);
    }
}
