//! End to end: two WebTorrent tracker clients (the `bittorrent-tracker`
//! library browsers run, in Node with a native WebRTC stack; see
//! tests/e2e/webtorrent) that can only find each other through the tracker
//! open a WebRTC data channel to each other and exchange greetings over it,
//! once over 127.0.0.1 and once over ::1.
//!
//! Needs `node` and `npm`, and the npm registry for the first run (the
//! packages are kept under the target directory). Without them the test
//! reports a skip, except as root, where the README's test command has
//! installed Node and a missing piece is an error.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/webtorrent");
const FILES: [&str; 5] = [
    "package.json",
    "package-lock.json",
    "meet.mjs",
    "webrtc-shim/package.json",
    "webrtc-shim/index.js",
];
/// meet.mjs gives up after 30 s; this only catches a hung Node.
const MEET_LIMIT: Duration = Duration::from_secs(60);

fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Either a missing prerequisite is an error (as root) or the test is
/// skipped, loudly.
fn unavailable(why: &str) {
    assert!(
        !is_root(),
        "{why}; as root the test expects it (tests/run-all.sh installs nodejs and npm)"
    );
    skip("browsers_connect_over_webrtc_through_the_tracker", why);
}

/// The client packages, installed under the target directory from the
/// lock file (again only when the lock file changed); the directory, or
/// why it could not be had.
fn installed_clients() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-webtorrent");
    fs::create_dir_all(dir.join("webrtc-shim")).map_err(|e| e.to_string())?;
    for file in FILES {
        fs::copy(Path::new(SOURCE).join(file), dir.join(file)).map_err(|e| e.to_string())?;
    }
    let lock = fs::read(dir.join("package-lock.json")).map_err(|e| e.to_string())?;
    let stamp = dir.join("node_modules/.installed-from-lock");
    if fs::read(&stamp).ok() == Some(lock.clone()) {
        return Ok(dir);
    }
    // No install scripts: the WebRTC binaries come as npm packages.
    let install = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("npm: {e}"))?;
    if !install.status.success() {
        return Err(format!("npm ci failed: {}", output_text(&install)));
    }
    fs::write(&stamp, lock).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Runs meet.mjs against `url`; its output.
fn meet(dir: &Path, url: &str) -> String {
    let mut node = Command::new("node")
        .arg("meet.mjs")
        .arg(url)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let status = wait_exit(&mut node, MEET_LIMIT);
    if status.is_none() {
        let _ = node.kill();
    }
    let output = node.wait_with_output().expect("node's output");
    let text = output_text(&output);
    assert!(
        status.is_some_and(|s| s.success()),
        "the clients did not meet over {url}: {text}"
    );
    text
}

#[test]
fn browsers_connect_over_webrtc_through_the_tracker() {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return unavailable("node is missing");
    }
    let dir = match installed_clients() {
        Ok(dir) => dir,
        Err(why) => return unavailable(&why),
    };
    let tracker = Tracker::start("[webtorrent]\nenabled = true\n");
    for (round, address) in [tracker.v4(), tracker.v6()].into_iter().enumerate() {
        let text = meet(&dir, &format!("ws://{address}/announce"));
        assert!(
            text.contains("seeder received \"hello from the leecher\""),
            "{text}"
        );
        assert!(
            text.contains("leecher received \"hello from the seeder\""),
            "{text}"
        );
        let relayed = |kind: &str| {
            let metrics = tracker.get("/metrics").text();
            let sample = format!("opentracker_webtorrent_messages_total{{kind=\"{kind}\"}} ");
            let line = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&sample).map(str::to_owned));
            line.and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
        };
        // Each round relays at least the leecher's offer and the answer.
        assert!(relayed("offer_relayed") > round as u64, "round {round}");
        assert!(relayed("answer_relayed") > round as u64, "round {round}");
        // Node is gone: so are its connections and peers.
        let deadline = Instant::now() + Duration::from_secs(5);
        while tracker.metric("opentracker_webtorrent_connections") > 0 && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(tracker.metric("opentracker_webtorrent_peers"), 0);
        assert_eq!(
            tracker.metric("opentracker_webtorrent_connections_dropped_total"),
            0
        );
    }
}
