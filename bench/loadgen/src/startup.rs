//! Start-up time (`startup`: launch a tracker, time until it answers, stop
//! it) and readiness (`wait`: until an already launched tracker answers).

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::swarm::{client_address, Swarm};
use crate::udp_wire::{self, Announce, Reply};
use crate::workload::Event;

struct Probe {
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    timeout: Duration,
}

impl Probe {
    fn from_args(args: &Args) -> Result<Probe, String> {
        let address = |name: &str| -> Result<Option<SocketAddr>, String> {
            if !args.has(name) {
                return Ok(None);
            }
            let address: SocketAddr = args.require(name)?;
            if !address.ip().is_loopback() {
                return Err(format!("--{name} must be a loopback address"));
            }
            Ok(Some(address))
        };
        let probe = Probe {
            udp: address("udp")?,
            tcp: address("tcp")?,
            timeout: Duration::from_secs_f64(args.get("timeout", 30.0)?),
        };
        if probe.udp.is_none() && probe.tcp.is_none() {
            return Err("give --udp, --tcp or both".into());
        }
        Ok(probe)
    }

    /// Waits until the tracker answers a UDP connect and accepts a TCP
    /// connection, as asked; `child`, if given, must not exit meanwhile.
    fn wait(&self, start: Instant, mut child: Option<&mut Child>) -> Result<Duration, String> {
        let mut udp_ready = self.udp.is_none();
        let mut tcp_ready = self.tcp.is_none();
        // Loopback of the probed family.
        let local = self
            .udp
            .map_or(IpAddr::from([127, 0, 0, 1]), |udp| udp.ip());
        let socket = UdpSocket::bind((local, 0)).map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .map_err(|e| e.to_string())?;
        let mut packet = Vec::new();
        let mut reply = [0u8; 64];
        while !(udp_ready && tcp_ready) {
            if start.elapsed() > self.timeout {
                return Err(format!("no answer within {:?}", self.timeout));
            }
            if let Some(child) = child.as_deref_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("the tracker exited: {status}"));
                }
            }
            if let (false, Some(udp)) = (udp_ready, self.udp) {
                udp_wire::connect_request(&mut packet, 1);
                let _ = socket.send_to(&packet, udp);
                match socket.recv(&mut reply) {
                    Ok(n) => {
                        udp_ready = matches!(
                            udp_wire::parse_reply(&reply[..n]),
                            Some((1, Reply::Connected(_)))
                        );
                    }
                    // Nothing listens yet: the ICMP error comes back at once.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        thread::sleep(Duration::from_micros(200));
                    }
                    Err(_) => {}
                }
            }
            if let (false, Some(tcp)) = (tcp_ready, self.tcp) {
                tcp_ready = TcpStream::connect_timeout(&tcp, Duration::from_millis(50)).is_ok();
                if !tcp_ready {
                    thread::sleep(Duration::from_micros(200));
                }
            }
        }
        Ok(start.elapsed())
    }
}

pub fn wait(raw: &[String]) -> Result<(), String> {
    let mut valued = vec!["udp", "tcp", "timeout"];
    valued.extend(Swarm::VALUED);
    let args = Args::parse(raw, &valued, &["announce"])?;
    let probe = Probe::from_args(&args)?;
    let start = Instant::now();
    probe.wait(start, None)?;
    if args.flag("announce") {
        let udp = probe.udp.ok_or("--announce needs --udp")?;
        wait_for_announce(&Swarm::from_args(&args)?, udp, start + probe.timeout)?;
    }
    println!(
        "RESULT scenario=ready ms={:.1}",
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// Waits until the tracker accepts the swarm's first peer, announcing from
/// that peer's own address and port: a tracker that reads its whitelist in
/// the background refuses every torrent until it is loaded.
fn wait_for_announce(swarm: &Swarm, udp: SocketAddr, deadline: Instant) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    // Over IPv6, from ::1: the client prefix may not be routed here.
    let source = match udp {
        SocketAddr::V4(_) => IpAddr::from(client_address(0)),
        SocketAddr::V6(_) => IpAddr::from(Ipv6Addr::LOCALHOST),
    };
    let socket = UdpSocket::bind((source, 0)).map_err(io)?;
    socket.connect(udp).map_err(io)?;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io)?;
    let mut packet = Vec::new();
    let mut reply = [0u8; 2048];
    let mut exchange = |packet: &[u8]| -> Option<(u32, Reply)> {
        socket.send(packet).ok()?;
        let n = socket.recv(&mut reply).ok()?;
        udp_wire::parse_reply(&reply[..n])
    };
    while Instant::now() < deadline {
        udp_wire::connect_request(&mut packet, 1);
        let Some((1, Reply::Connected(connection))) = exchange(&packet) else {
            continue;
        };
        let announce = Announce {
            connection,
            transaction: 2,
            peer: 0,
            event: Event::Started,
            numwant: 0,
        };
        udp_wire::announce_request(&mut packet, swarm, &announce);
        match exchange(&packet) {
            Some((2, Reply::Announced)) => return Ok(()),
            Some((2, Reply::Refused)) => thread::sleep(Duration::from_millis(20)),
            _ => {}
        }
    }
    Err("the tracker kept refusing the swarm's first torrent".into())
}

/// Stops a tracker with SIGTERM, killing it if it lingers.
fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn startup(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, &["udp", "tcp", "timeout", "repeat"], &[])?;
    let probe = Probe::from_args(&args)?;
    let repeat: usize = args.get("repeat", 5)?;
    let (program, program_args) = args
        .trailing
        .split_first()
        .ok_or("give the tracker's command after --")?;
    let mut times = Vec::new();
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let mut child = Command::new(program)
            .args(program_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let waited = probe.wait(start, Some(&mut child));
        stop(&mut child);
        times.push(waited?);
    }
    times.sort();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    let (min, median, max) = (
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
    let runs = times.len();
    println!("startup: {runs} runs, min {min} ms, median {median} ms, max {max} ms");
    println!("RESULT scenario=startup runs={runs} min_ms={min} median_ms={median} max_ms={max}");
    Ok(())
}
