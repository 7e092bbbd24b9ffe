//! `channel-bench`: process-level figures for channel servers, measured the
//! same way, in the same run, in alternating rounds: `channel-plugin http`,
//! the reference TypeScript SDK server under Node and under Bun, and a C floor.
//!
//! Per server and round (a fresh process each time):
//!   cold start → `initialize` answer → `tools/list` answer; VmHWM after the
//!   handshake; p50/p99 of HTTP inject → notification on stdout and of a
//!   `reply` call → SSE `event: reply` (after warm-up); VmHWM after N injected
//!   events; sustained inject throughput from several pipelined connections
//!   with a loss count; SIGINT → exit.
//!
//! The client is blocking Rust with no allocation in the timed region, so it
//! is not the bottleneck; latencies are wall-clock on loopback.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use channel_benches::placement::Placement;
use channel_benches::servers::{Kind, Running};
use channel_benches::stats::{percentile, Spread};
use channel_benches::{frames, http, procfs, sse, svg};
use clap::Parser;
use serde::Serialize;

const EXAMPLE: &str = "\
Examples:
  # full comparison (what benches/RESULTS.md reports), ~10 minutes on 2 cores
  cargo build --release -p channel-plugin && npm ci --prefix benches/reference-ts
  cargo run --release -p channel-benches --bin channel-bench -- --rounds 5 --plots-dir benches/plots

  # smoke (CI): tiny counts, seconds
  cargo run -p channel-benches --bin channel-bench -- --rounds 1 --warmup 20 \\
      --latency-events 200 --rss-events 300 --throughput-events 2000

Outputs under --out: results.json, summary.md, *.svg (and per-run stderr logs in logs/).";

#[derive(Parser, Debug, Clone, Serialize)]
#[command(name = "channel-bench", about, after_help = EXAMPLE)]
struct Args {
    /// Rounds; each round runs every server once (fresh process), in a rotated order.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Servers to measure, comma-separated: ours, node, bun, floor.
    #[arg(long, default_value = "ours,node,bun,floor", value_delimiter = ',')]
    servers: Vec<String>,
    /// Unmeasured events before each latency series.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Measured events per latency series (inject and reply).
    #[arg(long, default_value_t = 5000)]
    latency_events: usize,
    /// Injected events before the second RSS reading.
    #[arg(long, default_value_t = 10_000)]
    rss_events: usize,
    /// Where client and server run during the latency series (see
    /// benches/src/placement.rs: placement alone moves a loopback round trip
    /// by half on 2 cores).
    #[arg(long, value_enum, default_value_t = Placement::Split)]
    placement: Placement,
    /// Events per server per turn in the interleaved latency series (see
    /// `run_round`).
    #[arg(long, default_value_t = 250)]
    block: usize,
    /// Events in the throughput run (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    throughput_events: usize,
    /// Client connections in the throughput run.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Pipelined requests in flight per connection.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Where results.json, summary.md, logs and plots go.
    #[arg(long, default_value = "target/channel-bench")]
    out: PathBuf,
    /// Also write the SVG plots here (e.g. benches/plots).
    #[arg(long)]
    plots_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Default)]
struct Sample {
    server: String,
    round: usize,
    error: Option<String>,
    init_ms: f64,
    tools_list_ms: f64,
    discovery_ms: f64,
    rss_handshake_kib: f64,
    rss_events_kib: f64,
    injected_before_rss: u64,
    inject_p50_us: f64,
    inject_p99_us: f64,
    reply_p50_us: f64,
    reply_p99_us: f64,
    throughput_per_s: f64,
    accepted: u64,
    refused: u64,
    delivered: u64,
    lost: u64,
    sigint_exit_ms: Option<f64>,
    /// What the reader must know about this run (fallbacks taken).
    notes: Vec<String>,
    /// Notifications read while waiting for another event's (should be 0).
    stale_notifications: u64,
    #[serde(skip)]
    inject_us: Vec<f64>,
    #[serde(skip)]
    reply_us: Vec<f64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let kinds: Vec<Kind> = args
        .servers
        .iter()
        .map(|s| Kind::parse(s))
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(args.out.join("logs"))?;
    let machine = machine_info();
    eprintln!(
        "channel-bench: {} round(s) of {:?}\n{}",
        args.rounds,
        args.servers,
        machine.join("\n")
    );
    let mut samples: Vec<Sample> = Vec::new();
    for round in 0..args.rounds {
        // Alternate: rotate the order every round so no server always runs
        // first (cold caches) or right after the heaviest one.
        let mut order = kinds.clone();
        order.rotate_left(round % kinds.len().max(1));
        samples.extend(run_round(&order, round + 1, &args));
    }
    report(&args, &kinds, &samples, &machine)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One round: every server started (one at a time, for the start-up
/// figures), then the latency series interleaved, then each server's memory,
/// throughput and SIGINT figures, one at a time.
///
/// Interleaved: the series run in blocks of `--block` events, each server in
/// turn, so every server is measured across the same stretch of time. On a
/// shared machine the host's load moves a loopback round trip by 2× for tens
/// of seconds at a time; measured one after the other, a ratio between two
/// servers compared different stretches.
fn run_round(order: &[Kind], round: usize, args: &Args) -> Vec<Sample> {
    let log = |kind: Kind| {
        args.out
            .join("logs")
            .join(format!("{}-round{round}.stderr", kind.name()))
    };
    // A failed server's sample (boxed: a `Sample` is large).
    let mut sessions: Vec<Result<Session, Box<Sample>>> = order
        .iter()
        .map(|&kind| {
            Session::start(kind, round, args, &log(kind))
                .map_err(|err| Box::new(failed(kind, round, err)))
        })
        .collect();

    // The latency series, interleaved; each block pins its server (only
    // it, as when each server ran alone).
    let total = args.warmup + args.latency_events;
    for series in [Series::Inject, Series::Reply] {
        let mut done = 0;
        while done < total {
            let n = args.block.max(1).min(total - done);
            for slot in sessions.iter_mut() {
                let Ok(session) = slot else { continue };
                let pid = session.running.pid();
                let ran = args
                    .placement
                    .pin(pid)
                    .and_then(|()| session.run_block(series, n, args));
                let _ = args.placement.unpin(pid);
                if let Err(err) = ran {
                    *slot = Err(Box::new(failed(session.kind, round, err)));
                }
            }
            done += n;
        }
    }

    sessions
        .into_iter()
        .map(|slot| match slot {
            Err(sample) => *sample,
            Ok(session) => {
                let (kind, t) = (session.kind, session.started);
                match session.finish(args) {
                    Ok(sample) => {
                        print_sample(&sample, t);
                        sample
                    }
                    Err(err) => failed(kind, round, err),
                }
            }
        })
        .collect()
}

fn failed(kind: Kind, round: usize, err: anyhow::Error) -> Sample {
    eprintln!("  {} round {round}: FAILED: {err:#}", kind.name());
    Sample {
        server: kind.name().into(),
        round,
        error: Some(format!("{err:#}")),
        ..Sample::default()
    }
}

fn print_sample(sample: &Sample, started: Instant) {
    eprintln!(
        "  round {} {:>5}: init {:.2} ms, list {:.2} ms, rss {:.1}/{:.1} MiB, inject p50/p99 {:.1}/{:.1} µs, reply {:.1}/{:.1} µs, {:.0}/s lost {} refused {}, SIGINT {} ({:.1}s)",
        sample.round,
        sample.server,
        sample.init_ms,
        sample.tools_list_ms,
        sample.rss_handshake_kib / 1024.0,
        sample.rss_events_kib / 1024.0,
        sample.inject_p50_us,
        sample.inject_p99_us,
        sample.reply_p50_us,
        sample.reply_p99_us,
        sample.throughput_per_s,
        sample.lost,
        sample.refused,
        sample.sigint_exit_ms.map_or("killed".into(), |v| format!("{v:.2} ms")),
        started.elapsed().as_secs_f64()
    );
}

#[derive(Clone, Copy)]
enum Series {
    /// HTTP inject → notification line on stdout.
    Inject,
    /// `reply` tool call on stdin → SSE `event: reply`.
    Reply,
}

/// A started server with its connections and what was measured so far.
struct Session {
    kind: Kind,
    started: Instant,
    running: Running,
    disc: channel_benches::servers::Discovery,
    sse: sse::Stream,
    conn: http::Conn,
    line: Vec<u8>,
    out: Sample,
    /// Injects answered so far (all series), and replies sent.
    injected: u64,
    replies: u64,
    inject_us: Vec<f64>,
    reply_us: Vec<f64>,
}

impl Session {
    /// Spawn, handshake (the start-up and first memory figures), connect.
    fn start(kind: Kind, round: usize, args: &Args, log: &Path) -> anyhow::Result<Session> {
        let started = Instant::now();
        let mut s = Running::spawn(kind, Some(log))?;
        let mut out = Sample {
            server: kind.name().into(),
            round,
            ..Sample::default()
        };
        let mut line = Vec::with_capacity(4096);

        // Cold start, written the moment the process exists (as Claude Code does).
        s.write(&frames::initialize())?;
        s.read_response(0, &mut line)
            .context("waiting for the initialize answer")?;
        out.init_ms = ms(s.spawned_at.elapsed());
        s.write(&frames::initialized_and_list())?;
        s.read_response(1, &mut line)
            .context("waiting for the tools/list answer")?;
        out.tools_list_ms = ms(s.spawned_at.elapsed());
        out.rss_handshake_kib = procfs::memory_kib(s.pid()).context("reading /proc")?.0 as f64;
        let disc = s.discovery(Duration::from_secs(30))?;
        out.discovery_ms = ms(s.spawned_at.elapsed());

        let sse = sse::Stream::open(disc.port, &disc.secret).context("opening GET /sse")?;
        sse.conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        let conn = http::Conn::connect(disc.port)?;
        conn.stream
            .set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Session {
            kind,
            started,
            running: s,
            disc,
            sse,
            conn,
            line,
            out,
            injected: 0,
            replies: 0,
            inject_us: Vec::with_capacity(args.latency_events),
            reply_us: Vec::with_capacity(args.latency_events),
        })
    }

    /// The next `n` events of a latency series (the first `--warmup` of each
    /// series are not recorded).
    fn run_block(&mut self, series: Series, n: usize, args: &Args) -> anyhow::Result<()> {
        for _ in 0..n {
            match series {
                Series::Inject => {
                    let i = self.injected;
                    let request = http::inject_request(
                        self.disc.port,
                        &self.disc.secret,
                        &frames::inject_body(i),
                    );
                    // The notification must carry *this* event's content (the
                    // floor's frame is prepared, so any notification counts
                    // there): a line left over from an earlier event must not
                    // pass for a fast answer.
                    let want = format!("message {i}\"");
                    let t = Instant::now();
                    self.conn.send(&request)?;
                    loop {
                        self.running.read_line(&mut self.line)?;
                        if frames::is_channel_notification(&self.line) {
                            if self.kind == Kind::Floor
                                || frames::memfind(&self.line, want.as_bytes())
                            {
                                break;
                            }
                            self.out.stale_notifications += 1;
                        }
                    }
                    let elapsed = t.elapsed();
                    let status = self.conn.read_response()?;
                    if status != 202 {
                        bail!("POST /inject answered {status}");
                    }
                    self.injected += 1;
                    if i >= args.warmup as u64 {
                        self.inject_us.push(us(elapsed));
                    }
                }
                Series::Reply => {
                    let k = self.replies;
                    let id = 2 + k;
                    let call = frames::reply_call(id, "a reply from the bench");
                    let t = Instant::now();
                    self.running.write(&call)?;
                    self.sse.next_named("reply")?;
                    let elapsed = t.elapsed();
                    self.running.read_response(id, &mut self.line)?;
                    self.replies += 1;
                    if k >= args.warmup as u64 {
                        self.reply_us.push(us(elapsed));
                    }
                }
            }
        }
        Ok(())
    }

    /// Memory after the event count, throughput, percentiles, SIGINT.
    fn finish(mut self, args: &Args) -> anyhow::Result<Sample> {
        let Session {
            kind,
            ref mut running,
            ref disc,
            ref mut conn,
            ref mut line,
            ref mut out,
            ..
        } = self;
        // Top up to the RSS event count, then read the high-water mark.
        while self.injected < args.rss_events as u64 {
            conn.send(&http::inject_request(
                disc.port,
                &disc.secret,
                &frames::inject_body(self.injected),
            ))?;
            loop {
                running.read_line(line)?;
                if frames::is_channel_notification(line) {
                    break;
                }
            }
            conn.read_response()?;
            self.injected += 1;
        }
        out.injected_before_rss = self.injected;
        out.rss_events_kib = procfs::memory_kib(running.pid())
            .context("reading /proc")?
            .0 as f64;

        if args.throughput_events > 0 {
            let pipelined = throughput(running, disc, args.connections, args.window, args, out);
            if let Err(err) = pipelined {
                // A server that cannot take pipelined requests still gets a
                // throughput figure: again with more connections, one request
                // in flight each. Said in the notes; never silently.
                let conns = args.connections * 2;
                eprintln!(
                    "  {} round {}: pipelined throughput run failed ({err:#}); retrying with {conns} connections, no pipelining",
                    kind.name(),
                    out.round
                );
                out.notes.push(format!(
                    "throughput: the pipelined run ({}×{}) failed ({err:#}); figure from {conns} connections without pipelining",
                    args.connections, args.window
                ));
                if let Err(err) = throughput(running, disc, conns, 1, args, out) {
                    out.notes.push(format!(
                        "throughput: the unpipelined run failed too ({err:#})"
                    ));
                    out.throughput_per_s = f64::NAN;
                }
            }
        }

        let (mut inject_us, mut reply_us) = (self.inject_us, self.reply_us);
        inject_us.sort_by(f64::total_cmp);
        reply_us.sort_by(f64::total_cmp);
        let mut out = self.out;
        out.inject_p50_us = percentile(&inject_us, 50.0);
        out.inject_p99_us = percentile(&inject_us, 99.0);
        out.reply_p50_us = percentile(&reply_us, 50.0);
        out.reply_p99_us = percentile(&reply_us, 99.0);
        out.inject_us = inject_us;
        out.reply_us = reply_us;

        // SIGINT with the SSE and inject connections still open, as in real use.
        out.sigint_exit_ms = self.running.sigint_exit(Duration::from_secs(3))?.map(ms);
        drop((self.sse, self.conn));
        Ok(out)
    }
}

/// Several connections, each keeping `window` pipelined injects in flight;
/// stdout is counted until a sentinel `ping` answer (written after every
/// inject was answered) so a lost event cannot hang the count.
fn throughput(
    s: &mut Running,
    disc: &channel_benches::servers::Discovery,
    connections: usize,
    window: usize,
    args: &Args,
    out: &mut Sample,
) -> anyhow::Result<()> {
    let per_conn = args.throughput_events / connections.max(1);
    let body = frames::inject_body(0);
    let request = http::inject_request(disc.port, &disc.secret, &body);
    let accepted = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let t0 = Instant::now();
    let stdout = &mut s.stdout;
    let (delivered, last) = std::thread::scope(|scope| -> anyhow::Result<(u64, Instant)> {
        let reader = scope.spawn(move || -> anyhow::Result<(u64, Instant)> {
            // Counts notifications until the sentinel answer (id u32::MAX).
            use std::io::BufRead;
            let mut line = Vec::with_capacity(1024);
            let mut n = 0u64;
            let mut last = Instant::now();
            loop {
                line.clear();
                if stdout.read_until(b'\n', &mut line)? == 0 {
                    bail!("stdout closed during the throughput run");
                }
                if frames::is_channel_notification(&line) {
                    n += 1;
                    last = Instant::now();
                } else if frames::is_response_to(line.trim_ascii_end(), u32::MAX as u64) {
                    return Ok((n, last));
                }
            }
        });
        let senders: Vec<_> = (0..connections)
            .map(|_| {
                let request = &request;
                let (accepted, refused) = (&accepted, &refused);
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut conn = http::Conn::connect(disc.port)?;
                    conn.stream
                        .set_read_timeout(Some(Duration::from_secs(30)))?;
                    let mut batch = Vec::with_capacity(request.len() * window);
                    let (mut sent, mut done) = (0usize, 0usize);
                    while done < per_conn {
                        let room = (window - (sent - done)).min(per_conn - sent);
                        if room > 0 {
                            batch.clear();
                            for _ in 0..room {
                                batch.extend_from_slice(request);
                            }
                            conn.send(&batch)?;
                            sent += room;
                        }
                        let (ok, other) = conn.read_some_responses()?;
                        accepted.fetch_add(ok, Ordering::Relaxed);
                        refused.fetch_add(other, Ordering::Relaxed);
                        done += (ok + other) as usize;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first_err = None;
        for h in senders {
            if let Err(e) = h.join().expect("sender thread") {
                first_err.get_or_insert(e);
            }
        }
        // Every inject was answered: its notification is already queued or written.
        let ping = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}}\n",
            u32::MAX
        );
        s_write(&mut s.stdin, ping.as_bytes())?;
        let (n, last) = reader.join().expect("reader thread")?;
        if let Some(e) = first_err {
            return Err(e.context("a throughput connection failed"));
        }
        Ok((n, last))
    })?;
    out.accepted = accepted.load(Ordering::Relaxed);
    out.refused = refused.load(Ordering::Relaxed);
    out.delivered = delivered;
    out.lost = out.accepted.saturating_sub(delivered);
    out.throughput_per_s = delivered as f64 / (last - t0).as_secs_f64();
    Ok(())
}

fn s_write(stdin: &mut std::process::ChildStdin, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    stdin.write_all(bytes)?;
    stdin.flush()?;
    Ok(())
}

// ---------------------------------------------------------------- reporting

fn cmd_out(argv: &[&str]) -> String {
    std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unavailable".into())
}

fn machine_info() -> Vec<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let sdk = std::fs::read_to_string(
        channel_benches::servers::reference_dir()
            .join("node_modules/@modelcontextprotocol/sdk/package.json"),
    )
    .ok()
    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    .and_then(|v| v["version"].as_str().map(String::from))
    .unwrap_or_else(|| "not installed".into());
    let bun = channel_benches::servers::reference_dir().join("node_modules/bun/bin/bun.exe");
    let plugin = channel_benches::servers::plugin_bin()
        .map(|p| {
            format!(
                "{} ({})",
                cmd_out(&[&p.display().to_string(), "--version"]),
                p.display()
            )
        })
        .unwrap_or_else(|e| e.to_string());
    vec![
        format!(
            "- CPU: {cpu} × {} logical cores (shared with other work)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        format!("- kernel: {}", cmd_out(&["uname", "-sr"])),
        format!("- rustc: {}", cmd_out(&["rustc", "-V"])),
        format!("- channel-plugin: {plugin}"),
        format!("- node: {}", cmd_out(&["node", "--version"])),
        format!(
            "- bun: {}",
            cmd_out(&[&bun.display().to_string(), "--version"])
        ),
        format!("- @modelcontextprotocol/sdk: {sdk}"),
        format!(
            "- floor: benches/floor/floor.c, {}",
            cmd_out(&["cc", "--version"])
                .lines()
                .next()
                .unwrap_or("cc")
                .to_string()
        ),
    ]
}

/// A metric of a sample and how to print it.
struct Metric {
    name: &'static str,
    unit: &'static str,
    get: fn(&Sample) -> f64,
}

const METRICS: &[Metric] = &[
    Metric {
        name: "spawn → initialize answer",
        unit: "ms",
        get: |s| s.init_ms,
    },
    Metric {
        name: "spawn → tools/list answer",
        unit: "ms",
        get: |s| s.tools_list_ms,
    },
    Metric {
        name: "RSS (VmHWM) after handshake",
        unit: "MiB",
        get: |s| s.rss_handshake_kib / 1024.0,
    },
    Metric {
        name: "RSS (VmHWM) after 10,000 events",
        unit: "MiB",
        get: |s| s.rss_events_kib / 1024.0,
    },
    Metric {
        name: "inject → notification p50",
        unit: "µs",
        get: |s| s.inject_p50_us,
    },
    Metric {
        name: "inject → notification p99",
        unit: "µs",
        get: |s| s.inject_p99_us,
    },
    Metric {
        name: "reply → SSE event p50",
        unit: "µs",
        get: |s| s.reply_p50_us,
    },
    Metric {
        name: "reply → SSE event p99",
        unit: "µs",
        get: |s| s.reply_p99_us,
    },
    Metric {
        name: "sustained notifications/s",
        unit: "/s",
        get: |s| s.throughput_per_s,
    },
    Metric {
        name: "lost events (throughput run)",
        unit: "",
        get: |s| s.lost as f64,
    },
    Metric {
        name: "refused (503) in throughput run",
        unit: "",
        get: |s| s.refused as f64,
    },
    Metric {
        name: "SIGINT → exit",
        unit: "ms",
        get: |s| s.sigint_exit_ms.unwrap_or(f64::INFINITY),
    },
];

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn spread_text(sp: Spread) -> String {
    if sp.min == sp.max {
        fmt(sp.median)
    } else {
        format!("{} ({}–{})", fmt(sp.median), fmt(sp.min), fmt(sp.max))
    }
}

#[derive(Serialize)]
struct TargetCheck {
    target: String,
    limit: f64,
    per_round: Vec<f64>,
    measured: Spread,
    /// Met in every round.
    met: bool,
}

fn report(
    args: &Args,
    kinds: &[Kind],
    samples: &[Sample],
    machine: &[String],
) -> anyhow::Result<()> {
    let ok = |k: Kind| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.server == k.name() && s.error.is_none())
            .collect()
    };
    let mut md = String::new();
    let cmdline: Vec<String> = std::env::args().collect();
    let _ = writeln!(md, "Command: `{}`\n", cmdline.join(" "));
    let _ = writeln!(md, "{}", machine.join("\n"));
    let _ = writeln!(md, "- latency series placement: {}\n", args.placement);
    let failures: Vec<&Sample> = samples.iter().filter(|s| s.error.is_some()).collect();
    for s in samples.iter().filter(|s| !s.notes.is_empty()) {
        for n in &s.notes {
            let _ = writeln!(md, "- note, {} round {}: {n}", s.server, s.round);
        }
    }
    for f in &failures {
        let _ = writeln!(
            md,
            "- **{} round {} failed**: {}",
            f.server,
            f.round,
            f.error.as_deref().unwrap_or("")
        );
    }

    // Figures per server: median (min–max) over rounds.
    let _ = writeln!(
        md,
        "### Figures per server: median (min–max) over {} round(s)\n",
        args.rounds
    );
    let _ = write!(md, "| metric |");
    for k in kinds {
        let _ = write!(md, " {} |", k.label());
    }
    let _ = write!(md, "\n|---|");
    for _ in kinds {
        let _ = write!(md, "---|");
    }
    md.push('\n');
    for m in METRICS {
        let _ = write!(
            md,
            "| {}{} |",
            m.name,
            if m.unit.is_empty() {
                String::new()
            } else {
                format!(" ({})", m.unit)
            }
        );
        for k in kinds {
            let vals: Vec<f64> = ok(*k).iter().map(|s| (m.get)(s)).collect();
            let _ = write!(
                md,
                " {} |",
                if vals.is_empty() {
                    "failed".into()
                } else {
                    spread_text(Spread::of(&vals))
                }
            );
        }
        md.push('\n');
    }

    // Per-round ratios, ours against each other server.
    let ours = ok(Kind::Ours);
    let by_round = |k: Kind, round: usize| {
        samples
            .iter()
            .find(|s| s.server == k.name() && s.round == round && s.error.is_none())
    };
    let ratio = |m: fn(&Sample) -> f64, other: Kind| -> Vec<f64> {
        ours.iter()
            .filter_map(|o| by_round(other, o.round).map(|x| m(o) / m(x)))
            .collect()
    };
    let _ = writeln!(
        md,
        "\n### Per-round ratios (ours ÷ other, same round): median (min–max)\n"
    );
    let _ = writeln!(
        md,
        "| metric | ÷ C floor | ÷ TS on Node | ÷ TS on Bun |\n|---|---|---|---|"
    );
    for m in METRICS
        .iter()
        .filter(|m| !m.name.starts_with("lost") && !m.name.starts_with("refused"))
    {
        let _ = write!(md, "| {} |", m.name);
        for other in [Kind::Floor, Kind::Node, Kind::Bun] {
            let r = ratio(m.get, other);
            let _ = write!(
                md,
                " {} |",
                if r.is_empty() {
                    "—".into()
                } else {
                    format!("{}×", spread_text(Spread::of(&r)))
                }
            );
        }
        md.push('\n');
    }

    // The targets.
    let mut checks: Vec<TargetCheck> = Vec::new();
    let mut check = |target: &str, limit: f64, per_round: Vec<f64>, lower_is_better: bool| {
        let measured = Spread::of(&per_round);
        let met = !per_round.is_empty()
            && per_round.iter().all(|v| {
                if lower_is_better {
                    *v < limit
                } else {
                    *v >= limit
                }
            });
        checks.push(TargetCheck {
            target: target.into(),
            limit,
            per_round,
            measured,
            met,
        });
    };
    let own = |m: fn(&Sample) -> f64| ours.iter().map(|s| m(s)).collect::<Vec<f64>>();
    check(
        "spawn → initialize answer < 3 ms",
        3.0,
        own(|s| s.init_ms),
        true,
    );
    check(
        "RSS after handshake < 4 MiB",
        4.0,
        own(|s| s.rss_handshake_kib / 1024.0),
        true,
    );
    check(
        "RSS after 10,000 events < 6 MiB",
        6.0,
        own(|s| s.rss_events_kib / 1024.0),
        true,
    );
    check(
        "inject p50 ≤ 1.1× floor",
        1.1,
        ratio(|s| s.inject_p50_us, Kind::Floor),
        true,
    );
    check(
        "inject p99 ≤ 1.5× floor",
        1.5,
        ratio(|s| s.inject_p99_us, Kind::Floor),
        true,
    );
    check(
        "reply p50 ≤ 1.3× floor",
        1.3,
        ratio(|s| s.reply_p50_us, Kind::Floor),
        true,
    );
    check(
        "reply p99 ≤ 2× floor",
        2.0,
        ratio(|s| s.reply_p99_us, Kind::Floor),
        true,
    );
    if args.throughput_events > 0 {
        check(
            "≥ 100,000 notifications/s",
            100_000.0,
            own(|s| s.throughput_per_s),
            false,
        );
        check("zero loss (lost events)", 0.5, own(|s| s.lost as f64), true);
    }
    check(
        "SIGINT → exit < 5 ms (every round)",
        5.0,
        own(|s| s.sigint_exit_ms.unwrap_or(f64::INFINITY)),
        true,
    );
    let _ = writeln!(
        md,
        "\n### Targets (issue 8), channel-plugin, every round must meet them\n"
    );
    let _ = writeln!(
        md,
        "| target | measured: median (min–max) | met? |\n|---|---|---|"
    );
    for c in &checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            c.target,
            spread_text(c.measured),
            if c.per_round.is_empty() {
                "not measured"
            } else if c.met {
                "met"
            } else {
                "**missed**"
            }
        );
    }

    // Plots.
    let mut plots: Vec<(String, String)> = Vec::new();
    for (file, title, get) in [
        (
            "inject_latency_cdf.svg",
            "HTTP inject → notification on stdout (all rounds)",
            (|s: &Sample| &s.inject_us) as fn(&Sample) -> &Vec<f64>,
        ),
        (
            "reply_latency_cdf.svg",
            "reply tool call → SSE event (all rounds)",
            |s: &Sample| &s.reply_us,
        ),
    ] {
        let series: Vec<svg::Series> = kinds
            .iter()
            .map(|k| {
                let mut all: Vec<f64> =
                    ok(*k).iter().flat_map(|s| get(s).iter().copied()).collect();
                all.sort_by(f64::total_cmp);
                svg::Series {
                    label: k.label().into(),
                    points: svg::cdf_points(&all),
                }
            })
            .collect();
        plots.push((
            file.into(),
            svg::cdf_chart(title, "latency (µs, log scale)", &series),
        ));
    }
    for (file, title, unit, get) in [
        (
            "cold_start.svg",
            "spawn → tools/list answer (median)",
            "ms",
            (|s: &Sample| s.tools_list_ms) as fn(&Sample) -> f64,
        ),
        (
            "rss.svg",
            "peak RSS after 10,000 events (median)",
            "MiB",
            |s: &Sample| s.rss_events_kib / 1024.0,
        ),
        (
            "throughput.svg",
            "sustained notifications per second (median)",
            "notifications/s",
            |s: &Sample| s.throughput_per_s,
        ),
    ] {
        let bars: Vec<svg::Bar> = kinds
            .iter()
            .map(|k| {
                let v = Spread::of(&ok(*k).iter().map(|s| get(s)).collect::<Vec<_>>()).median;
                svg::Bar {
                    label: k.label().into(),
                    value: v,
                    text: format!("{} {unit}", fmt(v)),
                    colour: None,
                }
            })
            .collect();
        plots.push((file.into(), svg::bar_chart(title, unit, &bars, None)));
    }
    let bars: Vec<svg::Bar> = checks
        .iter()
        .map(|c| {
            let lower = !c.target.starts_with('≥');
            // Normalised so 1.0 is the target and < 1 is better.
            let v = if c.target.starts_with("zero loss") {
                c.measured.median
            } else if lower {
                c.measured.median / c.limit
            } else {
                c.limit / c.measured.median
            };
            svg::Bar {
                label: c.target.clone(),
                value: v,
                text: format!("{} ({})", fmt(v), if c.met { "met" } else { "missed" }),
                colour: Some(if c.met { "#009e73" } else { "#d55e00" }),
            }
        })
        .collect();
    plots.push((
        "targets.svg".into(),
        svg::bar_chart(
            "median over rounds ÷ target (≤ 1 meets it; met = every round)",
            "median relative to the target (for rates: target ÷ measured)",
            &bars,
            Some((1.0, "target")),
        ),
    ));
    for (file, body) in &plots {
        std::fs::write(args.out.join(file), body)?;
        if let Some(dir) = &args.plots_dir {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(file), body)?;
        }
    }

    #[derive(Serialize)]
    struct Results<'a> {
        args: &'a Args,
        machine: &'a [String],
        samples: &'a [Sample],
        targets: &'a [TargetCheck],
    }
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&Results {
            args,
            machine,
            samples,
            targets: &checks,
        })?,
    )?;
    std::fs::write(args.out.join("summary.md"), &md)?;
    println!("{md}");
    eprintln!(
        "wrote {}/results.json, summary.md and plots",
        args.out.display()
    );
    if !failures.is_empty() {
        bail!("{} run(s) failed; see above", failures.len());
    }
    Ok(())
}
