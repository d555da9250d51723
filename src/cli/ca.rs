//! `fleetsim ca`: the certificate authority alone under Poisson arrivals, compared with
//! queueing theory where a formula applies.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::ValueEnum;
use serde_json::{json, Value};

use crate::ca::analytic::{self, QueueMetrics};
use crate::ca::retry::RetryPolicy;
use crate::ca::standalone::{
    self, CapacityDip, Patience, Refusal, StandaloneConfig, StandaloneReport,
};
use crate::ca::{CaConfig, OnTimeout, RateLimit, ServiceTime, Usl};
use crate::duration::{format_duration, parse_duration};
use crate::engine::{SimTime, TraceHash};

/// Service-time distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceDist {
    /// Exponential with the given mean (M/M/c).
    Exponential,
    /// Always the mean.
    Constant,
    /// Lognormal with the given mean and `--service-p99`.
    Lognormal,
}

/// Patience distribution of `--timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatienceDist {
    /// Every attempt waits exactly `--timeout` (M/M/c+D).
    Constant,
    /// Exponential with mean `--timeout` (Erlang A).
    Exponential,
}

/// What a timeout does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeoutMode {
    /// The request leaves the queue if not started in time (no work done).
    Cancel,
    /// The client gives up but the CA still signs it (wasted work).
    Keep,
}

/// Wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backoff {
    /// istio-agent: 100/200/400/800 ms ±10 % then 500 ms x1.5 ±50 % capped at 60 s.
    Agent,
    /// Retry immediately.
    None,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable lines, starting with `seed=N`.
    Text,
    /// One JSON object.
    Json,
}

/// Flags of `fleetsim ca` (docs/ca.md).
#[derive(clap::Args, Debug)]
#[command(
    about = "The certificate authority alone under Poisson arrivals, compared with queueing theory",
    long_about = "Simulates one CA (workers signing in parallel, FIFO queue, optional token-bucket \
rate limit, client timeouts and retries, a capacity dip, USL overload) under Poisson arrivals \
and prints what it measured over [warmup, horizon), next to Erlang C, Erlang A or M/M/c+D \
where that formula's assumptions hold.\n\nDurations take units: 250ms, 10s, 5m, 1h."
)]
pub struct CaArgs {
    /// Client arrival rate, requests per second (Poisson). Required, > 0.
    #[arg(long, value_name = "PER_S", value_parser = positive_f64, allow_negative_numbers = true)]
    pub arrival_rate: f64,
    /// Parallel signing workers. Required, >= 1.
    #[arg(long, value_name = "N", value_parser = workers, allow_negative_numbers = true)]
    pub workers: u32,
    /// Mean service time of one request on an idle CA (duration, e.g. 100ms). Required, > 0.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, allow_hyphen_values = true)]
    pub service_mean: SimTime,
    /// Service-time distribution [default: exponential].
    #[arg(long, value_enum, value_name = "DIST", default_value = "exponential")]
    pub service_dist: ServiceDist,
    /// 99th percentile of service time (duration), required with `lognormal`; above the
    /// mean and at most ~14.97 x the mean.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, allow_hyphen_values = true)]
    pub service_p99: Option<SimTime>,
    /// Token-bucket rate limit on service starts, per second (burst = max(1, ceil(rate))
    /// tokens, full at the start) [default: none].
    #[arg(long, value_name = "PER_S", value_parser = positive_f64, allow_negative_numbers = true)]
    pub rate_limit: Option<f64>,
    /// Client patience per attempt (duration) [default: none, wait forever].
    #[arg(long, value_name = "DURATION", value_parser = duration, allow_hyphen_values = true)]
    pub timeout: Option<SimTime>,
    /// Patience distribution: `constant` = exactly --timeout, `exponential` = mean --timeout.
    #[arg(long, value_enum, value_name = "DIST", default_value = "constant")]
    pub patience_dist: PatienceDist,
    /// What a timeout does: `cancel` leaves the queue (reneging, no work; a started
    /// request is served), `keep` leaves the request with the CA (its work is wasted).
    #[arg(long, value_enum, value_name = "MODE", default_value = "cancel")]
    pub on_timeout: TimeoutMode,
    /// Further attempts after a timeout, per client (0 to 65534) [default: 0].
    #[arg(long, value_name = "K", default_value = "0", value_parser = retries, allow_negative_numbers = true)]
    pub retries: u32,
    /// Wait before a retry: istio-agent's policy or none.
    #[arg(long, value_enum, value_name = "POLICY", default_value = "agent")]
    pub retry_backoff: Backoff,
    /// Capacity dip `AT,FOR,FRACTION`: from AT for FOR (durations) only
    /// floor(FRACTION x workers) workers start work; FRACTION in [0, 1]. In-service requests
    /// are not preempted [default: none].
    #[arg(long, value_name = "AT,FOR,FRACTION", value_parser = dip, allow_hyphen_values = true)]
    pub capacity_dip: Option<CapacityDip>,
    /// USL overload `SIGMA,KAPPA` (contention, coherency; both >= 0): n requests in service
    /// each progress at 1 / (1 + SIGMA (n-1) + KAPPA n (n-1)) [default: 0,0].
    #[arg(long, value_name = "SIGMA,KAPPA", value_parser = usl, allow_hyphen_values = true)]
    pub usl: Option<Usl>,
    /// Simulated time (duration) [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, allow_hyphen_values = true)]
    pub horizon: Option<SimTime>,
    /// Start of the measurement window (duration, below the horizon) [default: 10 % of
    /// the horizon].
    #[arg(long, value_name = "DURATION", value_parser = duration, allow_hyphen_values = true)]
    pub warmup: Option<SimTime>,
    /// Master seed [default: 1].
    #[arg(long, value_name = "N", default_value = "1")]
    pub seed: u64,
    /// Event budget: a run that could make more requests than this (each costs at least
    /// one event), or that executes this many events, is refused (exit 2) [default:
    /// 1000000000].
    #[arg(long, value_name = "N", default_value_t = MAX_EVENTS, value_parser = max_events, allow_negative_numbers = true)]
    pub max_events: u64,
    /// Memory budget for requests in flight and pending events (bytes, or with a unit:
    /// 512MiB, 4GiB, 8GB); a run whose queue could outgrow it, or that holds more, is
    /// refused (exit 2) [default: 4GiB].
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = parse_size, allow_hyphen_values = true)]
    pub max_memory: u64,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub format: Format,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a number > 0".into()),
        Err(_) => Err("not a number".into()),
    }
}

fn workers(s: &str) -> Result<u32, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if (1..=10_000_000).contains(&v) => Ok(v as u32),
        Ok(_) => Err("must be an integer from 1 to 10000000".into()),
        Err(_) => Err("not an integer".into()),
    }
}

fn retries(s: &str) -> Result<u32, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if (0..=standalone::MAX_RETRIES as i64).contains(&v) => Ok(v as u32),
        Ok(_) => Err(format!(
            "must be an integer from 0 to {}",
            standalone::MAX_RETRIES
        )),
        Err(_) => Err("not an integer".into()),
    }
}

fn max_events(s: &str) -> Result<u64, String> {
    match s.trim().replace('_', "").parse::<u64>() {
        Ok(v) if v >= 1 => Ok(v),
        Ok(_) => Err("must be >= 1".into()),
        Err(_) => Err("not a whole number of events".into()),
    }
}

/// A byte count: a whole number with an optional unit, `B`, `KiB`/`MiB`/`GiB`/`TiB`
/// (powers of 1024) or `KB`/`MB`/`GB`/`TB` (powers of 1000); > 0.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "tib" | "t" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "unknown unit {u:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ))
        }
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * (factor as f64) < u64::MAX as f64 => {
            Ok((v * factor as f64).round().max(1.0) as u64)
        }
        _ => Err("expected a size > 0 such as 4GiB or 512MiB".into()),
    }
}

fn duration(s: &str) -> Result<SimTime, String> {
    parse_duration(s)
}

fn positive_duration(s: &str) -> Result<SimTime, String> {
    let d = parse_duration(s)?;
    if d.as_nanos() == 0 {
        return Err("must be > 0".into());
    }
    Ok(d)
}

fn unit_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("FRACTION must be in [0, 1], got {v}")),
        Err(_) => Err(format!("FRACTION {:?} is not a number", s.trim())),
    }
}

fn dip(s: &str) -> Result<CapacityDip, String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [at, len, f] = parts[..] else {
        return Err("expected AT,FOR,FRACTION, e.g. 5m,30s,0.3".into());
    };
    Ok(CapacityDip {
        at: parse_duration(at).map_err(|e| format!("AT: {e}"))?,
        duration: parse_duration(len).map_err(|e| format!("FOR: {e}"))?,
        fraction: unit_fraction(f)?,
    })
}

fn usl(s: &str) -> Result<Usl, String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [sigma, kappa] = parts[..] else {
        return Err("expected SIGMA,KAPPA, e.g. 0.02,0.002".into());
    };
    let num = |name: &str, v: &str| match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{name} must be a number >= 0, got {:?}", v.trim())),
    };
    Ok(Usl {
        sigma: num("SIGMA", sigma)?,
        kappa: num("KAPPA", kappa)?,
    })
}

/// Default simulated time.
pub const DEFAULT_HORIZON: SimTime = SimTime::from_secs(3600);
/// Default event budget of one run (`--max-events`): about a minute of simulation on
/// one core, a guard against a run that would never end.
pub const MAX_EVENTS: u64 = 1_000_000_000;
/// Batches for the batch-means standard errors.
pub const BATCHES: u32 = 20;

/// Turns the flags into a validated run configuration; errors name the flag and value.
pub fn config(args: &CaArgs) -> anyhow::Result<StandaloneConfig> {
    let service = match args.service_dist {
        ServiceDist::Exponential => ServiceTime::Exponential {
            mean: args.service_mean,
        },
        ServiceDist::Constant => ServiceTime::Constant {
            value: args.service_mean,
        },
        ServiceDist::Lognormal => {
            let Some(p99) = args.service_p99 else {
                bail!("--service-dist lognormal needs --service-p99");
            };
            ServiceTime::lognormal_from_mean_p99(args.service_mean, p99).map_err(|e| {
                anyhow::anyhow!(
                    "invalid value '{}' for '--service-p99' with --service-mean {}: {e}",
                    format_duration(p99),
                    format_duration(args.service_mean)
                )
            })?
        }
    };
    if args.service_p99.is_some() && args.service_dist != ServiceDist::Lognormal {
        bail!("--service-p99 only applies to --service-dist lognormal");
    }
    let horizon = args.horizon.unwrap_or(DEFAULT_HORIZON);
    let warmup = args.warmup.unwrap_or(SimTime(horizon.as_nanos() / 10));
    if warmup >= horizon {
        bail!(
            "invalid value '{}' for '--warmup': must be below the horizon ({})",
            format_duration(warmup),
            format_duration(horizon)
        );
    }
    if (horizon - warmup).as_nanos() < BATCHES as u64 {
        bail!("the measurement window (--horizon minus --warmup) is too short");
    }
    if args.timeout.is_none() && args.retries > 0 {
        bail!(
            "--retries {} needs a --timeout (without one no request ever times out)",
            args.retries
        );
    }
    let ca = CaConfig {
        workers: args.workers,
        service,
        rate_limit: args.rate_limit.map(|r| RateLimit {
            rate_per_s: r,
            burst: r.ceil().clamp(1.0, u32::MAX as f64) as u32,
        }),
        usl: args.usl.unwrap_or_default(),
        failed_object_slowdown: 0.0,
    };
    ca.validate("ca").map_err(anyhow::Error::msg)?;
    Ok(StandaloneConfig {
        arrival_rate_per_s: args.arrival_rate,
        ca,
        patience: args.timeout.map(|t| match args.patience_dist {
            PatienceDist::Constant => Patience::Constant(t),
            PatienceDist::Exponential => Patience::Exponential(t),
        }),
        on_timeout: match args.on_timeout {
            TimeoutMode::Cancel => OnTimeout::Cancel,
            TimeoutMode::Keep => OnTimeout::Keep,
        },
        retries: args.retries,
        backoff: match args.retry_backoff {
            Backoff::Agent => RetryPolicy::agent(),
            Backoff::None => RetryPolicy::Immediate,
        },
        dip: args.capacity_dip,
        horizon,
        warmup,
        seed: args.seed,
        batches: BATCHES,
        max_events: args.max_events,
        max_memory_bytes: args.max_memory,
    })
}

/// Which formula applies to a run, if any, and its figures.
pub fn analytic_for(cfg: &StandaloneConfig) -> Option<(&'static str, QueueMetrics)> {
    let ServiceTime::Exponential { mean } = cfg.ca.service else {
        return None;
    };
    let plain = cfg.ca.rate_limit.is_none()
        && cfg.ca.usl == Usl::default()
        && cfg.ca.failed_object_slowdown == 0.0
        && cfg.dip.is_none()
        && cfg.retries == 0;
    if !plain {
        return None;
    }
    let (lambda, mu, c) = (
        cfg.arrival_rate_per_s,
        1.0 / mean.as_secs_f64(),
        cfg.ca.workers,
    );
    match (cfg.patience, cfg.on_timeout) {
        (None, _) => analytic::erlang_c(lambda, mu, c).map(|m| ("erlang_c", m)),
        (Some(Patience::Exponential(p)), OnTimeout::Cancel) => {
            analytic::erlang_a(lambda, mu, c, 1.0 / p.as_secs_f64()).map(|m| ("erlang_a", m))
        }
        (Some(Patience::Constant(d)), OnTimeout::Cancel) => {
            analytic::mmc_d(lambda, mu, c, d.as_secs_f64()).map(|m| ("mmc_d", m))
        }
        (Some(_), OnTimeout::Keep) => None,
    }
}

/// The run's figures as one JSON object (docs/ca.md).
pub fn to_json(
    cfg: &StandaloneConfig,
    r: &StandaloneReport,
    analytic: Option<(&str, QueueMetrics)>,
    wall_s: f64,
) -> Value {
    let analytic = analytic.map(|(model, m)| {
        json!({
            "model": model,
            "p_wait": m.p_wait,
            "p_abandon": m.p_abandon,
            "mean_wait_s": m.mean_wait_s,
            "mean_queue_len": m.mean_queue_len,
            "utilization": m.utilization,
        })
    });
    json!({
        "seed": cfg.seed,
        "offered_load": cfg.arrival_rate_per_s * cfg.ca.service.mean_s() / cfg.ca.workers as f64,
        "horizon_s": cfg.horizon.as_secs_f64(),
        "warmup_s": cfg.warmup.as_secs_f64(),
        "arrivals": r.arrivals,
        "requests": r.requests,
        "retries": r.retries,
        "served": r.served,
        "abandoned": r.abandoned,
        "p_abandon": r.p_abandon,
        "mean_wait_s": r.mean_wait_s,
        "p_wait": r.p_wait,
        "mean_queue_len": r.mean_queue_len,
        "utilization": r.utilization,
        "wasted_work_s": r.wasted_work_s,
        "served_late": r.served_late,
        "clients_failed": r.clients_failed,
        "goodput_per_s_end": r.goodput_per_s_end,
        "metastable": r.metastable,
        "peak_queue": r.peak_queue,
        "queue_end": r.queue_end,
        "stderr": {
            "batches": cfg.batches,
            "p_abandon": r.stderr.p_abandon,
            "p_wait": r.stderr.p_wait,
            "mean_wait_s": r.stderr.mean_wait_s,
            "mean_queue_len": r.stderr.mean_queue_len,
            "utilization": r.stderr.utilization,
        },
        "events": r.run.events,
        "stop": r.run.stop.as_str(),
        "trace_hash": TraceHash::hex(r.run.trace_hash),
        "wall_s": wall_s,
        "analytic": analytic,
    })
}

fn to_text(
    args: &CaArgs,
    cfg: &StandaloneConfig,
    r: &StandaloneReport,
    analytic: Option<(&str, QueueMetrics)>,
    wall_s: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "seed={}", cfg.seed);
    let _ = writeln!(
        s,
        "fleetsim ca: arrival_rate={}/s workers={} service={:?} mean={} timeout={} ({}, {}) retries={} ({:?}) horizon={} warmup={}",
        cfg.arrival_rate_per_s,
        cfg.ca.workers,
        args.service_dist,
        format_duration(args.service_mean),
        args.timeout.map_or("none".into(), format_duration),
        format!("{:?}", args.patience_dist).to_lowercase(),
        cfg.on_timeout.as_str(),
        cfg.retries,
        args.retry_backoff,
        format_duration(cfg.horizon),
        format_duration(cfg.warmup),
    );
    let load = cfg.arrival_rate_per_s * cfg.ca.service.mean_s() / cfg.ca.workers as f64;
    let _ = writeln!(s, "offered load        {load:.4}");
    let _ = writeln!(s, "arrivals            {}", r.arrivals);
    let _ = writeln!(
        s,
        "requests            {} ({} retries)",
        r.requests, r.retries
    );
    let _ = writeln!(s, "served              {}", r.served);
    let _ = writeln!(s, "abandoned           {}", r.abandoned);
    let _ = writeln!(
        s,
        "p_abandon           {:.6} ± {:.6}",
        r.p_abandon, r.stderr.p_abandon
    );
    let _ = writeln!(
        s,
        "p_wait              {:.6} ± {:.6}",
        r.p_wait, r.stderr.p_wait
    );
    let _ = writeln!(
        s,
        "mean_wait_s         {:.6} ± {:.6}",
        r.mean_wait_s, r.stderr.mean_wait_s
    );
    let _ = writeln!(
        s,
        "mean_queue_len      {:.4} ± {:.4}",
        r.mean_queue_len, r.stderr.mean_queue_len
    );
    let _ = writeln!(
        s,
        "utilization         {:.6} ± {:.6}",
        r.utilization, r.stderr.utilization
    );
    let _ = writeln!(
        s,
        "wasted_work_s       {:.3} ({} served late)",
        r.wasted_work_s, r.served_late
    );
    let _ = writeln!(s, "clients_failed      {}", r.clients_failed);
    let _ = writeln!(s, "goodput_per_s_end   {:.4}", r.goodput_per_s_end);
    let _ = writeln!(s, "metastable          {}", r.metastable);
    let _ = writeln!(
        s,
        "peak_queue          {} (at end {})",
        r.peak_queue, r.queue_end
    );
    let _ = writeln!(
        s,
        "events              {} (stop: {}, trace_hash {})",
        r.run.events,
        r.run.stop.as_str(),
        TraceHash::hex(r.run.trace_hash)
    );
    let _ = writeln!(s, "wall_s              {wall_s:.3}");
    match analytic {
        None => {
            let _ = writeln!(
                s,
                "analytic            none (no formula's assumptions hold)"
            );
        }
        Some((model, m)) => {
            let _ = writeln!(s, "analytic ({model}):  simulated (± stderr) vs theory");
            for (name, sim, se, th) in [
                ("p_wait", r.p_wait, r.stderr.p_wait, m.p_wait),
                ("p_abandon", r.p_abandon, r.stderr.p_abandon, m.p_abandon),
                (
                    "mean_wait_s",
                    r.mean_wait_s,
                    r.stderr.mean_wait_s,
                    m.mean_wait_s,
                ),
                (
                    "mean_queue_len",
                    r.mean_queue_len,
                    r.stderr.mean_queue_len,
                    m.mean_queue_len,
                ),
                (
                    "utilization",
                    r.utilization,
                    r.stderr.utilization,
                    m.utilization,
                ),
            ] {
                let _ = writeln!(s, "  {name:<16}  {sim:.6} ± {se:.6}  vs  {th:.6}");
            }
        }
    }
    s
}

/// A refusal as one line that names the budget and the flag that raises it.
pub fn refusal_message(e: &Refusal) -> String {
    match e {
        Refusal::Events { .. } | Refusal::EventsUsedUp { .. } => {
            format!("{e}; raise it with --max-events N (or shorten --horizon)")
        }
        Refusal::Memory { .. } | Refusal::MemoryUsedUp { .. } => {
            format!("{e}; raise it with --max-memory SIZE")
        }
    }
}

/// Runs `fleetsim ca`.
pub fn run(args: CaArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(&args)?;
    let analytic = analytic_for(&cfg);
    let t0 = Instant::now();
    let report = standalone::run(&cfg).map_err(|e| anyhow::anyhow!(refusal_message(&e)))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let text = match args.format {
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&to_json(&cfg, &report, analytic, wall_s))?;
            t.push('\n');
            t
        }
        Format::Text => to_text(&args, &cfg, &report, analytic, wall_s),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
