//! The shape of a UDP or HTTP run: optional prefill, then the measured phase,
//! each sender thread driving its share of the clients, server CPU read at
//! the phase boundaries.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mio::Events;

use crate::args::Args;
use crate::procfs;
use crate::swarm::{client_ip, Swarm, CLIENT_PREFIX_V6};
use crate::tally::{self, CpuUse, Tally};
use crate::workload::{Phase, Workload};

/// Timed-out requests are looked for this often.
const EXPIRY_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Clone, Copy)]
struct CpuSample {
    server: Option<u64>,
    own: u64,
    machine: u64,
}

/// One sender thread's protocol engine.
pub trait Driver: Send {
    /// Gives every client its first job.
    fn start(&mut self, phase: Phase, tally: &mut Tally);
    /// Whether any request is in flight.
    fn busy(&self) -> bool;
    /// Waits briefly for answers and handles them.
    fn step(&mut self, events: &mut Events, phase: Phase, tally: &mut Tally) -> io::Result<()>;
    /// Counts and replaces requests older than the timeout.
    fn expire(&mut self, phase: Phase, tally: &mut Tally);
    /// Forgets requests still in flight at the end of a phase; returns how many.
    fn abandon(&mut self) -> u64;
}

fn drive(driver: &mut impl Driver, workload: &Workload, phase: Phase) -> io::Result<Tally> {
    let mut tally = Tally::default();
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let deadline = workload.deadline(phase, start);
    let budget = match phase {
        Phase::Prefill => u64::MAX,
        Phase::Measure => workload.thread_budget(),
    };
    driver.start(phase, &mut tally);
    let mut last_expiry = start;
    loop {
        let now = Instant::now();
        if now >= deadline || tally.finished() >= budget || !driver.busy() {
            break;
        }
        driver.step(&mut events, phase, &mut tally)?;
        if now - last_expiry >= EXPIRY_INTERVAL {
            driver.expire(phase, &mut tally);
            last_expiry = now;
        }
    }
    let unanswered = driver.abandon();
    // In-flight requests at the end of a timed phase are not failures; a
    // prefill that ran out of time leaves peers out of the swarm.
    if phase == Phase::Prefill {
        tally.abandoned += unanswered;
    }
    Ok(tally)
}

pub struct Spec<'a> {
    pub name: &'a str,
    pub valued: &'a [&'a str],
    pub switches: &'a [&'a str],
}

/// Fails, saying how to fix it, unless datagrams sent from the IPv6 client
/// prefix come back: the kernel must route the prefix to loopback.
fn ipv6_clients_reachable(target: SocketAddr) -> Result<(), String> {
    let unroutable = || {
        format!(
            "IPv6 clients send from {CLIENT_PREFIX_V6}, which is not routed to loopback here: \
             run `ip -6 route add local {CLIENT_PREFIX_V6} dev lo` as root (best in a network \
             namespace of the benchmark's own)"
        )
    };
    let probe = || -> io::Result<bool> {
        let echo = UdpSocket::bind((target.ip(), 0))?;
        echo.set_read_timeout(Some(Duration::from_millis(500)))?;
        let client = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)?;
        client.set_freebind_v6(true)?;
        client.bind(&SocketAddr::new(client_ip(0, true), 0).into())?;
        let client: UdpSocket = client.into();
        client.set_read_timeout(Some(Duration::from_millis(500)))?;
        client.send_to(b"probe", echo.local_addr()?)?;
        let mut buf = [0u8; 8];
        let (_, from) = echo.recv_from(&mut buf)?;
        // The way back is what needs the route.
        if echo.send_to(b"echo", from).is_err() {
            return Ok(false);
        }
        Ok(client.recv_from(&mut buf).is_ok())
    };
    match probe() {
        Ok(true) => Ok(()),
        Ok(false) => Err(unroutable()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(unroutable())
        }
        Err(e) => Err(format!("probing the IPv6 client prefix: {e}")),
    }
}

/// Parses the common options plus `spec`'s, builds one driver per thread
/// with `make`, runs the phases and prints their reports.
pub fn run<D, F>(raw: &[String], spec: Spec, make: F) -> Result<(), String>
where
    D: Driver,
    F: Fn(Arc<Workload>, &Args, SocketAddr, u32) -> Result<D, String>,
{
    let mut valued = vec!["target", "server-pid"];
    valued.extend(Swarm::VALUED);
    valued.extend(Workload::VALUED);
    valued.extend(spec.valued);
    let mut switches = Workload::SWITCHES.to_vec();
    switches.extend(spec.switches);
    let args = Args::parse(raw, &valued, &switches)?;
    let target: SocketAddr = args.require("target")?;
    // Clients send from loopback addresses of the target's family.
    if !target.ip().is_loopback() {
        return Err("--target must be a loopback address".into());
    }
    if target.is_ipv6() {
        ipv6_clients_reachable(target)?;
    }
    let pid: Option<u32> = if args.has("server-pid") {
        Some(args.require("server-pid")?)
    } else {
        None
    };
    let workload = Arc::new(Workload::from_args(&args)?);
    let mut drivers = (0..workload.threads)
        .map(|thread| make(Arc::clone(&workload), &args, target, thread))
        .collect::<Result<Vec<D>, String>>()?;

    let cpu_now = || CpuSample {
        server: pid.and_then(|pid| procfs::cpu_time_us(pid).ok()),
        own: procfs::cpu_time_us(std::process::id()).unwrap_or(0),
        machine: procfs::machine_busy_us().unwrap_or(0),
    };
    let barrier = Barrier::new(drivers.len() + 1);
    let prefill_cpu = cpu_now();
    let prefill_start = Instant::now();
    let (prefill, measure, prefill_elapsed, measure_elapsed, measure_cpu) =
        thread::scope(|scope| {
            let handles: Vec<_> = drivers
                .iter_mut()
                .map(|driver| {
                    let (workload, barrier) = (&*workload, &barrier);
                    scope.spawn(move || {
                        let prefill = if workload.prefill {
                            drive(driver, workload, Phase::Prefill)
                        } else {
                            Ok(Tally::default())
                        };
                        // Every thread reaches both barriers, failed or not.
                        barrier.wait();
                        barrier.wait();
                        (prefill, drive(driver, workload, Phase::Measure))
                    })
                })
                .collect();
            barrier.wait();
            let prefill_elapsed = prefill_start.elapsed();
            let measure_cpu = cpu_now();
            let measure_start = Instant::now();
            barrier.wait();
            let mut prefill = Ok(Tally::default());
            let mut measure = Ok(Tally::default());
            for handle in handles {
                let (p, m) = handle.join().expect("sender thread panicked");
                prefill = merge(prefill, p);
                measure = merge(measure, m);
            }
            let measure_elapsed = measure_start.elapsed();
            (
                prefill,
                measure,
                prefill_elapsed,
                measure_elapsed,
                measure_cpu,
            )
        });
    let measure_end_cpu = cpu_now();

    let used = |from: CpuSample, to: CpuSample| CpuUse {
        server: pid.zip(from.server.zip(to.server).map(|(a, b)| b.saturating_sub(a))),
        own_us: to.own.saturating_sub(from.own),
        machine_us: to.machine.saturating_sub(from.machine),
    };
    if workload.prefill {
        let prefill = prefill.map_err(|e| format!("prefill: {e}"))?;
        let cpu = used(prefill_cpu, measure_cpu);
        tally::report(
            &format!("{}-prefill", spec.name),
            prefill,
            prefill_elapsed,
            cpu,
        );
    }
    let measure = measure.map_err(|e| format!("measure: {e}"))?;
    let cpu = used(measure_cpu, measure_end_cpu);
    tally::report(spec.name, measure, measure_elapsed, cpu);
    Ok(())
}

fn merge(total: io::Result<Tally>, part: io::Result<Tally>) -> io::Result<Tally> {
    let mut total = total?;
    total.merge(part?);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the client prefix is not routed here (the usual host), the
    /// IPv6 load refuses to start and names the command that fixes it.
    #[test]
    fn an_unrouted_ipv6_client_prefix_is_named_with_its_fix() {
        match ipv6_clients_reachable("[::1]:9".parse().unwrap()) {
            Ok(()) => eprintln!("fd77::/64 is routed to loopback here: nothing to refuse"),
            Err(e) => assert!(
                e.contains("ip -6 route add local fd77::/64 dev lo")
                    || e.starts_with("probing the IPv6 client prefix"),
                "{e}"
            ),
        }
    }
}
