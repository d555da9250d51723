//! client-go on the simulated clock: the REST client's token bucket and its retries on
//! 429, workqueues with their rate limiters, and `flowcontrol.Backoff` (the kubelet's
//! restart back-off).
//!
//! Sources: kubernetes/client-go v0.33.0 (`util/flowcontrol/throttle.go`,
//! `util/flowcontrol/backoff.go`, `rest/request.go`, `rest/with_retry.go`,
//! `rest/config.go`, `util/workqueue/{queue,delaying_queue,default_rate_limiters}.go`)
//! and golang/time `rate/rate.go` (stored commit 0bae942c).
//!
//! # Token bucket ([`TokenBucket`], x/time/rate `Limiter`)
//! - `burst` tokens, full at the start, refilled at `rate_per_s`; tokens are an `f64`
//!   and may go **negative**: a reservation that has to wait takes its tokens at once
//!   (debt) and its wait is the time the debt takes to refill. So a reservation made
//!   now never overtakes one made earlier (first come, first served).
//! - [`TokenBucket::reserve`] is `reserveN` as `WaitN` calls it: with a deadline
//!   (a context with a deadline), a reservation that would end after it **fails at once
//!   and takes nothing** (`rate: Wait(n=1) would exceed context deadline`); with no
//!   deadline (`context.TODO()`, `context.Background()`) it always succeeds and the
//!   caller waits as long as it takes, without bound. A deadline already passed is the
//!   context's own error. `n > burst` fails (`exceeds limiter's burst`).
//! - Durations follow the Go code: the wait is `1e9 * debt / rate` truncated to whole
//!   nanoseconds, refills split seconds from nanoseconds. The model is bit-for-bit
//!   deterministic but need not equal Go's floating point to the last nanosecond.
//!
//! # REST client ([`RestClient`])
//! - client-go defaulting (`rest/config.go`): QPS 0 means the defaults 5 QPS / burst 10;
//!   QPS < 0 means no limiter. One bucket per clientset when QPS is set; with QPS unset
//!   every group-version client gets its own 5/10 bucket — the owner decides how many
//!   [`RestClient`]s a process has.
//! - Every request takes one token before its first attempt (`tryThrottle`), **except
//!   watches** ("We specifically don't want to rate limit watches").
//! - Retries ([`RestClient::on_reply`]): after a reply with status **429, or >= 500 with
//!   a `Retry-After` header**, the client sleeps `Retry-After` seconds, then takes a
//!   **new token** (which may itself fail against the deadline), and resends; at most
//!   `max_retries` = 10 retries (11 attempts). Anything else (a 500 without
//!   `Retry-After`, such as a failed admission webhook, a 404, a 409) goes to the caller
//!   at once. The retry's token is taken at the end of the sleep, so the owner calls
//!   [`RestClient::acquire`] again at that time (one event per retry).
//!
//! # Workqueue ([`WorkQueue`], [`RateLimiter`])
//! - FIFO of keys with client-go's dedup: an item added while it waits is not added
//!   twice; an item added while a worker processes it is queued again only when the
//!   worker calls `done`. `add_after` keeps one waiting entry per item, moved earlier
//!   (never later) by a second `add_after`.
//! - Rate limiters: per-item exponential (`base * 2^failures`, capped; `forget` resets
//!   the count), an overall token bucket (`Reserve().Delay()`), and max-of. Presets:
//!   client-go's `DefaultTypedControllerRateLimiter` (5 ms ... 1000 s, max with 10 qps /
//!   burst 100: controller-runtime's default) and cert-manager's
//!   `DefaultItemBasedRateLimiter` (5 s ... 5 min, cert-manager `pkg/controller/util.go`).
//!
//! # Back-off ([`Backoff`], `flowcontrol.Backoff`)
//! - `next(id, event_time, now)`: no entry or an expired one -> the entry restarts at
//!   `initial`; else `backoff = min(2 * backoff, max)`. Either way `last_update = now`
//!   (the clock, not the event time). No jitter (the kubelet builds it without).
//! - `is_in_backoff_since(id, event_time, now)`: false without an entry or with an
//!   expired one, else `now - event_time < backoff`.
//! - Expiry: `event_time - last_update > 2 * max` (client-go default), or a fixed
//!   duration (`HasExpiredFunc`, client-go v0.32+, which the kubelet sets to 600 s from
//!   1.32).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt;

use crate::engine::SimTime;

const NANOS_PER_SEC: u64 = 1_000_000_000;

// ----- token bucket -------------------------------------------------------------------

/// A token bucket with x/time/rate `Limiter` semantics (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: u32,
    tokens: f64,
    last: SimTime,
}

/// Why a limiter wait failed (client-go wraps each as `client rate limiter Wait returned
/// an error: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterError {
    /// The reservation would end after the caller's deadline; nothing was taken.
    WouldExceedDeadline,
    /// The caller's deadline had already passed (`context deadline exceeded`).
    DeadlinePassed,
    /// More tokens asked for than the burst holds.
    ExceedsBurst,
}

impl fmt::Display for LimiterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimiterError::WouldExceedDeadline => {
                "client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline"
            }
            LimiterError::DeadlinePassed => {
                "client rate limiter Wait returned an error: context deadline exceeded"
            }
            LimiterError::ExceedsBurst => {
                "client rate limiter Wait returned an error: rate: Wait(n) exceeds limiter's burst"
            }
        })
    }
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate_per_s` (> 0).
    pub fn new(rate_per_s: f64, burst: u32) -> TokenBucket {
        TokenBucket {
            rate_per_s,
            burst,
            tokens: burst as f64,
            last: SimTime::ZERO,
        }
    }

    /// Tokens per second.
    pub fn rate_per_s(&self) -> f64 {
        self.rate_per_s
    }

    /// Bucket size.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The tokens the bucket would hold at `now` (negative while reservations wait).
    pub fn tokens_at(&self, now: SimTime) -> f64 {
        self.advance(now).1
    }

    fn duration_from_tokens(&self, tokens: f64) -> SimTime {
        let ns = 1e9 * (tokens / self.rate_per_s);
        if ns.is_nan() || ns <= 0.0 {
            SimTime::ZERO
        } else if ns >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            SimTime(ns as u64) // truncation, as Go's conversion
        }
    }

    fn tokens_from_duration(&self, d: SimTime) -> f64 {
        let ns = d.as_nanos();
        (ns / NANOS_PER_SEC) as f64 * self.rate_per_s
            + (ns % NANOS_PER_SEC) as f64 * self.rate_per_s / 1e9
    }

    /// (effective now, tokens) after refilling to `now`; the state is not changed.
    fn advance(&self, now: SimTime) -> (SimTime, f64) {
        if now < self.last {
            return (self.last, self.tokens);
        }
        let max_elapsed = self.duration_from_tokens(self.burst as f64 - self.tokens);
        let elapsed = (now - self.last).min(max_elapsed);
        let tokens = (self.tokens + self.tokens_from_duration(elapsed)).min(self.burst as f64);
        (now, tokens)
    }

    /// Reserves `n` tokens at `now`: the time at which the caller may act. With a
    /// `deadline`, fails at once (taking nothing) if that time would be after it.
    pub fn reserve(
        &mut self,
        now: SimTime,
        n: u32,
        deadline: Option<SimTime>,
    ) -> Result<SimTime, LimiterError> {
        if n > self.burst {
            return Err(LimiterError::ExceedsBurst);
        }
        if let Some(d) = deadline {
            if d <= now {
                return Err(LimiterError::DeadlinePassed);
            }
        }
        let (at, tokens) = self.advance(now);
        let tokens = tokens - n as f64;
        let wait = if tokens < 0.0 {
            self.duration_from_tokens(-tokens)
        } else {
            SimTime::ZERO
        };
        if let Some(d) = deadline {
            if wait > d - now {
                return Err(LimiterError::WouldExceedDeadline);
            }
        }
        self.last = at;
        self.tokens = tokens;
        Ok(at + wait)
    }

    /// `AllowN(now, n)`: takes `n` tokens only if they are there now (no debt). This is
    /// how a server-side quota that rejects instead of queuing is modelled.
    pub fn allow(&mut self, now: SimTime, n: u32) -> bool {
        if n > self.burst {
            return false;
        }
        let (at, tokens) = self.advance(now);
        if tokens - n as f64 >= 0.0 {
            self.last = at;
            self.tokens = tokens - n as f64;
            true
        } else {
            false
        }
    }

    /// Changes rate and burst at `now`, keeping the tokens accrued (x/time/rate
    /// `SetLimitAt` + `SetBurstAt`).
    pub fn set_limit(&mut self, now: SimTime, rate_per_s: f64, burst: u32) {
        let (at, tokens) = self.advance(now);
        self.last = at;
        self.tokens = tokens;
        self.rate_per_s = rate_per_s;
        self.burst = burst;
    }
}

// ----- REST client --------------------------------------------------------------------

/// client-go's `DefaultQPS` (rest/config.go).
pub const DEFAULT_QPS: f64 = 5.0;
/// client-go's `DefaultBurst`.
pub const DEFAULT_BURST: u32 = 10;
/// client-go's default `maxRetries` (rest/request.go).
pub const DEFAULT_MAX_RETRIES: u32 = 10;

/// One REST client's rate limiter and retry rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RestClient {
    limiter: Option<TokenBucket>,
    max_retries: u32,
    throttled: u64,
    throttle_wait_ns: u128,
    retries: u64,
    limiter_errors: u64,
}

/// What came back for one attempt, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A 2xx, or any error the caller handles itself (404, 409, 422 ...).
    Final,
    /// HTTP 429 with `Retry-After` seconds (APF always sends the header).
    TooManyRequests {
        /// The header's value in seconds.
        retry_after_s: u32,
    },
    /// HTTP >= 500, with or without `Retry-After`.
    ServerError {
        /// The status code.
        status: u16,
        /// The header, if the server sent one.
        retry_after_s: Option<u32>,
    },
}

/// What the client does after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// The reply goes to the caller.
    Return,
    /// Sleep until `at`, then take a new token ([`RestClient::acquire`]) and resend.
    RetryAt {
        /// End of the `Retry-After` sleep.
        at: SimTime,
        /// Which retry this is (1-based).
        retry: u32,
    },
}

impl RestClient {
    /// A client built as client-go builds one from `rest.Config{QPS, Burst}`: QPS 0 ->
    /// 5/10, QPS < 0 -> no limiter, burst 0 -> 10.
    pub fn client_go(qps: f64, burst: u32) -> RestClient {
        let limiter = if qps < 0.0 {
            None
        } else {
            let q = if qps == 0.0 { DEFAULT_QPS } else { qps };
            let b = if burst == 0 { DEFAULT_BURST } else { burst };
            Some(TokenBucket::new(q, b))
        };
        RestClient {
            limiter,
            max_retries: DEFAULT_MAX_RETRIES,
            throttled: 0,
            throttle_wait_ns: 0,
            retries: 0,
            limiter_errors: 0,
        }
    }

    /// A client without a limiter (QPS < 0, or `--disable-client-side-rate-limiting`).
    pub fn unlimited() -> RestClient {
        RestClient::client_go(-1.0, 0)
    }

    /// Sets `maxRetries` (client-go default 10).
    pub fn with_max_retries(mut self, max_retries: u32) -> RestClient {
        self.max_retries = max_retries;
        self
    }

    /// The limiter, if any.
    pub fn limiter(&self) -> Option<&TokenBucket> {
        self.limiter.as_ref()
    }

    /// Mutable access to the limiter (e.g. to change QPS).
    pub fn limiter_mut(&mut self) -> Option<&mut TokenBucket> {
        self.limiter.as_mut()
    }

    /// Takes one token for an attempt at `now`: the time the request is sent. Watches
    /// (`watch = true`) take none on their first attempt. `deadline` is the caller's
    /// context deadline (`None`: `context.TODO()`/`Background()`, waits without bound).
    pub fn acquire(
        &mut self,
        now: SimTime,
        watch: bool,
        deadline: Option<SimTime>,
    ) -> Result<SimTime, LimiterError> {
        let Some(b) = self.limiter.as_mut().filter(|_| !watch) else {
            return Ok(now);
        };
        match b.reserve(now, 1, deadline) {
            Ok(at) => {
                if at > now {
                    self.throttled += 1;
                    self.throttle_wait_ns += (at - now).as_nanos() as u128;
                }
                Ok(at)
            }
            Err(e) => {
                self.limiter_errors += 1;
                Err(e)
            }
        }
    }

    /// Takes the token of a retry at the end of its sleep (also for watches: only the
    /// first attempt of a watch is free).
    pub fn acquire_retry(
        &mut self,
        now: SimTime,
        deadline: Option<SimTime>,
    ) -> Result<SimTime, LimiterError> {
        self.acquire(now, false, deadline)
    }

    /// The retry rule for a reply to attempt `retries_so_far + 1`.
    pub fn on_reply(&mut self, now: SimTime, retries_so_far: u32, reply: Reply) -> RetryDecision {
        let wait_s = match reply {
            Reply::Final => return RetryDecision::Return,
            Reply::TooManyRequests { retry_after_s } => retry_after_s,
            Reply::ServerError {
                retry_after_s: Some(s),
                ..
            } => s,
            Reply::ServerError {
                retry_after_s: None,
                ..
            } => return RetryDecision::Return,
        };
        if retries_so_far >= self.max_retries {
            return RetryDecision::Return;
        }
        self.retries += 1;
        RetryDecision::RetryAt {
            at: now + SimTime::from_secs(wait_s as u64),
            retry: retries_so_far + 1,
        }
    }

    /// Attempts that had to wait for a token.
    pub fn throttled(&self) -> u64 {
        self.throttled
    }
    /// Total time attempts waited for tokens, in seconds.
    pub fn throttle_wait_seconds(&self) -> f64 {
        self.throttle_wait_ns as f64 / 1e9
    }
    /// Retries made after 429 / 5xx-with-Retry-After.
    pub fn retries(&self) -> u64 {
        self.retries
    }
    /// Limiter waits that failed against a deadline.
    pub fn limiter_errors(&self) -> u64 {
        self.limiter_errors
    }
}

// ----- workqueue ----------------------------------------------------------------------

/// client-go's workqueue (with the delaying queue) over `u64` keys.
#[derive(Debug, Clone, Default)]
pub struct WorkQueue {
    queue: VecDeque<u64>,
    dirty: BTreeSet<u64>,
    processing: BTreeSet<u64>,
    waiting: BinaryHeap<Reverse<(SimTime, u64, u64)>>,
    waiting_at: BTreeMap<u64, SimTime>,
    seq: u64,
    adds: u64,
    peak_len: usize,
}

impl WorkQueue {
    /// An empty queue.
    pub fn new() -> WorkQueue {
        WorkQueue::default()
    }

    /// `Add`: queues `item` unless it already waits; an item being processed is queued
    /// again when it is `done`. Returns true if the queue got longer.
    pub fn add(&mut self, item: u64) -> bool {
        self.adds += 1;
        if !self.dirty.insert(item) {
            return false;
        }
        if self.processing.contains(&item) {
            return false;
        }
        self.queue.push_back(item);
        self.peak_len = self.peak_len.max(self.queue.len());
        true
    }

    /// `AddAfter`: adds `item` at `now + delay` (at once if `delay` is zero). A second
    /// call for an item already waiting only moves its time earlier.
    pub fn add_after(&mut self, item: u64, now: SimTime, delay: SimTime) {
        if delay == SimTime::ZERO {
            self.add(item);
            return;
        }
        let at = now + delay;
        match self.waiting_at.get(&item) {
            Some(&t) if t <= at => {}
            _ => {
                self.waiting_at.insert(item, at);
                self.seq += 1;
                self.waiting.push(Reverse((at, self.seq, item)));
            }
        }
    }

    /// Moves every waiting item due at or before `now` into the queue.
    pub fn promote_due(&mut self, now: SimTime) {
        while let Some(&Reverse((at, _, item))) = self.waiting.peek() {
            if at > now {
                break;
            }
            self.waiting.pop();
            if self.waiting_at.get(&item) == Some(&at) {
                self.waiting_at.remove(&item);
                self.add(item);
            }
        }
    }

    /// When the next waiting item is due.
    pub fn next_due(&mut self) -> Option<SimTime> {
        while let Some(&Reverse((at, _, item))) = self.waiting.peek() {
            if self.waiting_at.get(&item) == Some(&at) {
                return Some(at);
            }
            self.waiting.pop(); // superseded by an earlier add_after
        }
        None
    }

    /// `Get`: the next item for a worker (it becomes "processing").
    pub fn get(&mut self) -> Option<u64> {
        let item = self.queue.pop_front()?;
        self.dirty.remove(&item);
        self.processing.insert(item);
        Some(item)
    }

    /// `Done`: the worker finished `item`; if it was added meanwhile it is queued again.
    pub fn done(&mut self, item: u64) {
        self.processing.remove(&item);
        if self.dirty.contains(&item) {
            self.queue.push_back(item);
            self.peak_len = self.peak_len.max(self.queue.len());
        }
    }

    /// Items ready for a worker.
    pub fn len(&self) -> usize {
        self.queue.len()
    }
    /// No item is ready.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
    /// Items waiting for their `add_after` time.
    pub fn waiting(&self) -> usize {
        self.waiting_at.len()
    }
    /// Items being processed.
    pub fn processing(&self) -> usize {
        self.processing.len()
    }
    /// Whether `item` is queued, waiting or being processed.
    pub fn contains(&self, item: u64) -> bool {
        self.dirty.contains(&item)
            || self.processing.contains(&item)
            || self.waiting_at.contains_key(&item)
    }
    /// Calls to `add` (including the ones dedup absorbed).
    pub fn adds(&self) -> u64 {
        self.adds
    }
    /// The longest the ready queue has been.
    pub fn peak_len(&self) -> usize {
        self.peak_len
    }
}

/// A workqueue rate limiter (client-go `util/workqueue/default_rate_limiters.go`).
#[derive(Debug, Clone)]
pub enum RateLimiter {
    /// `base * 2^failures`, capped at `max`; per item.
    ItemExponential {
        /// First delay.
        base: SimTime,
        /// Cap.
        max: SimTime,
        /// Failures so far, per item.
        failures: BTreeMap<u64, u32>,
    },
    /// One bucket for all items: `Reserve().Delay()`.
    Bucket(TokenBucket),
    /// The largest delay of all (every limiter is asked, so each counts the failure).
    MaxOf(Vec<RateLimiter>),
}

impl RateLimiter {
    /// Per-item exponential back-off.
    pub fn item_exponential(base: SimTime, max: SimTime) -> RateLimiter {
        RateLimiter::ItemExponential {
            base,
            max,
            failures: BTreeMap::new(),
        }
    }

    /// client-go's `DefaultTypedControllerRateLimiter` (also controller-runtime's
    /// default): max of per-item 5 ms ... 1000 s and an overall 10 qps / burst 100
    /// bucket.
    pub fn default_controller() -> RateLimiter {
        RateLimiter::MaxOf(vec![
            RateLimiter::item_exponential(SimTime::from_millis(5), SimTime::from_secs(1000)),
            RateLimiter::Bucket(TokenBucket::new(10.0, 100)),
        ])
    }

    /// cert-manager's `DefaultItemBasedRateLimiter`: per-item 5 s ... 5 min, no bucket
    /// (cert-manager `pkg/controller/util.go:37-41`, v1.12 ... v1.21).
    pub fn cert_manager_default() -> RateLimiter {
        RateLimiter::item_exponential(SimTime::from_secs(5), SimTime::from_secs(300))
    }

    /// `When`: the delay before `item` may be retried; counts a failure.
    pub fn when(&mut self, item: u64, now: SimTime) -> SimTime {
        match self {
            RateLimiter::ItemExponential {
                base,
                max,
                failures,
            } => {
                let exp = failures.entry(item).or_insert(0);
                let e = *exp;
                *exp = exp.saturating_add(1);
                let backoff = base.as_nanos() as f64 * 2f64.powi(e.min(1024) as i32);
                if backoff >= i64::MAX as f64 {
                    return *max;
                }
                SimTime(backoff as u64).min(*max)
            }
            RateLimiter::Bucket(b) => {
                let at = b.reserve(now, 1, None).expect("no deadline, n = 1");
                at - now
            }
            RateLimiter::MaxOf(ls) => ls
                .iter_mut()
                .map(|l| l.when(item, now))
                .max()
                .unwrap_or(SimTime::ZERO),
        }
    }

    /// `Forget`: the item succeeded; its failure count restarts.
    pub fn forget(&mut self, item: u64) {
        match self {
            RateLimiter::ItemExponential { failures, .. } => {
                failures.remove(&item);
            }
            RateLimiter::Bucket(_) => {}
            RateLimiter::MaxOf(ls) => ls.iter_mut().for_each(|l| l.forget(item)),
        }
    }

    /// `NumRequeues`.
    pub fn num_requeues(&self, item: u64) -> u32 {
        match self {
            RateLimiter::ItemExponential { failures, .. } => {
                failures.get(&item).copied().unwrap_or(0)
            }
            RateLimiter::Bucket(_) => 0,
            RateLimiter::MaxOf(ls) => ls.iter().map(|l| l.num_requeues(item)).max().unwrap_or(0),
        }
    }
}

// ----- flowcontrol.Backoff ------------------------------------------------------------

/// When a back-off entry counts as expired (`hasExpired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffExpiry {
    /// `event_time - last_update > 2 * max` (client-go's default).
    TwiceMax,
    /// `event_time - last_update > d` (a `HasExpiredFunc`; the kubelet's 600 s from 1.32).
    After(SimTime),
}

/// One entry of `flowcontrol.Backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffEntry {
    /// The current back-off.
    pub backoff: SimTime,
    /// The clock when `next` last ran.
    pub last_update: SimTime,
}

/// `flowcontrol.Backoff` without jitter, over `u64` ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: SimTime,
    max: SimTime,
    expiry: BackoffExpiry,
    entries: BTreeMap<u64, BackoffEntry>,
}

impl Backoff {
    /// `NewBackOff(initial, max)` with the given expiry rule.
    pub fn new(initial: SimTime, max: SimTime, expiry: BackoffExpiry) -> Backoff {
        Backoff {
            initial,
            max,
            expiry,
            entries: BTreeMap::new(),
        }
    }

    fn expired(&self, event_time: SimTime, last_update: SimTime) -> bool {
        // A negative difference (event before the update) never expires.
        let age = event_time.saturating_sub(last_update);
        match self.expiry {
            BackoffExpiry::TwiceMax => age > self.max + self.max,
            BackoffExpiry::After(d) => age > d,
        }
    }

    /// `Next(id, eventTime)` at clock `now`.
    pub fn next(&mut self, id: u64, event_time: SimTime, now: SimTime) {
        let backoff = match self.entries.get(&id) {
            Some(e) if !self.expired(event_time, e.last_update) => {
                (e.backoff + e.backoff).min(self.max)
            }
            _ => self.initial,
        };
        self.entries.insert(
            id,
            BackoffEntry {
                backoff,
                last_update: now,
            },
        );
    }

    /// `IsInBackOffSince(id, eventTime)` at clock `now`.
    pub fn is_in_backoff_since(&self, id: u64, event_time: SimTime, now: SimTime) -> bool {
        match self.entries.get(&id) {
            Some(e) if !self.expired(event_time, e.last_update) => {
                now.saturating_sub(event_time) < e.backoff
            }
            _ => false,
        }
    }

    /// `Get(id)`: the current back-off (zero without an entry).
    pub fn get(&self, id: u64) -> SimTime {
        self.entries
            .get(&id)
            .map(|e| e.backoff)
            .unwrap_or(SimTime::ZERO)
    }

    /// The entry of `id`, if any.
    pub fn entry(&self, id: u64) -> Option<BackoffEntry> {
        self.entries.get(&id).copied()
    }

    /// `GC()` at clock `now`: drops expired entries.
    pub fn gc(&mut self, now: SimTime) {
        let expiry = self.expiry;
        let max = self.max;
        self.entries.retain(|_, e| {
            let age = now.saturating_sub(e.last_update);
            !match expiry {
                BackoffExpiry::TwiceMax => age > max + max,
                BackoffExpiry::After(d) => age > d,
            }
        });
    }

    /// `Reset(id)` / `DeleteEntry(id)`.
    pub fn reset(&mut self, id: u64) {
        self.entries.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn bucket_grants_burst_then_queues_first_come_first_served() {
        let mut b = TokenBucket::new(10.0, 2);
        let t0 = SimTime::ZERO;
        assert_eq!(b.reserve(t0, 1, None), Ok(t0));
        assert_eq!(b.reserve(t0, 1, None), Ok(t0));
        // Debt: the third waits 100 ms, the fourth 200 ms, in order.
        assert_eq!(b.reserve(t0, 1, None), Ok(SimTime(100 * MS)));
        assert_eq!(b.reserve(t0, 1, None), Ok(SimTime(200 * MS)));
        assert!(b.tokens_at(t0) < -1.99);
        // Refill: by 1 s the debt is paid and the bucket is full again (capped at burst).
        assert_eq!(b.tokens_at(SimTime::from_secs(1)), 2.0);
    }

    #[test]
    fn limiter_with_a_deadline_fails_at_once_and_takes_nothing() {
        // istiod's 80/160 bucket and a 10 s deadline: 160 + 800 tokens fit.
        let mut b = TokenBucket::new(80.0, 160);
        let deadline = Some(SimTime::from_secs(10));
        let mut ok = 0;
        while b.reserve(SimTime::ZERO, 1, deadline).is_ok() {
            ok += 1;
        }
        assert_eq!(ok, 960);
        let before = b.tokens_at(SimTime::ZERO);
        assert_eq!(
            b.reserve(SimTime::ZERO, 1, deadline),
            Err(LimiterError::WouldExceedDeadline)
        );
        assert_eq!(
            b.tokens_at(SimTime::ZERO),
            before,
            "a refusal takes nothing"
        );
        assert_eq!(
            b.reserve(SimTime::from_secs(10), 1, deadline),
            Err(LimiterError::DeadlinePassed)
        );
    }

    #[test]
    fn limiter_without_a_deadline_waits_without_bound() {
        let mut b = TokenBucket::new(80.0, 160);
        let mut last = SimTime::ZERO;
        for _ in 0..10_000 {
            last = b.reserve(SimTime::ZERO, 1, None).unwrap();
        }
        // 9 840 tokens beyond the burst at 80/s: the last waits 123 s.
        assert!((last.as_secs_f64() - 123.0).abs() < 1e-6, "{last}");
    }

    #[test]
    fn watches_take_no_token_but_their_retries_do() {
        let mut c = RestClient::client_go(1.0, 1);
        assert_eq!(c.acquire(SimTime::ZERO, false, None), Ok(SimTime::ZERO));
        for _ in 0..5 {
            assert_eq!(c.acquire(SimTime::ZERO, true, None), Ok(SimTime::ZERO));
        }
        assert_eq!(
            c.acquire_retry(SimTime::ZERO, None),
            Ok(SimTime::from_secs(1))
        );
        assert_eq!(c.throttled(), 1);
    }

    #[test]
    fn client_go_defaults_and_unlimited() {
        let c = RestClient::client_go(0.0, 0);
        let b = c.limiter().unwrap();
        assert_eq!((b.rate_per_s(), b.burst()), (5.0, 10));
        let mut u = RestClient::unlimited();
        for _ in 0..1000 {
            assert_eq!(u.acquire(SimTime::ZERO, false, None), Ok(SimTime::ZERO));
        }
    }

    #[test]
    fn retry_after_429_at_most_ten_times_each_with_a_new_token() {
        // 1 QPS, burst 1: every retry's token costs a second after its 2 s sleep.
        let mut c = RestClient::client_go(1.0, 1);
        let mut now = c.acquire(SimTime::ZERO, false, None).unwrap();
        let mut retries = 0;
        let mut tokens = 1;
        loop {
            let reply = Reply::TooManyRequests { retry_after_s: 2 };
            match c.on_reply(now, retries, reply) {
                RetryDecision::Return => break,
                RetryDecision::RetryAt { at, retry } => {
                    assert_eq!(at, now + SimTime::from_secs(2));
                    retries = retry;
                    now = c.acquire_retry(at, None).unwrap();
                    tokens += 1;
                }
            }
        }
        assert_eq!(retries, 10, "11 attempts in all");
        assert_eq!(tokens, 11, "a new token per retry");
        assert_eq!(c.retries(), 10);
    }

    #[test]
    fn server_error_retried_only_with_retry_after() {
        let mut c = RestClient::client_go(5.0, 10);
        let webhook = Reply::ServerError {
            status: 500,
            retry_after_s: None,
        };
        assert_eq!(c.on_reply(SimTime::ZERO, 0, webhook), RetryDecision::Return);
        let busy = Reply::ServerError {
            status: 503,
            retry_after_s: Some(1),
        };
        assert!(matches!(
            c.on_reply(SimTime::ZERO, 0, busy),
            RetryDecision::RetryAt { retry: 1, .. }
        ));
        assert_eq!(
            c.on_reply(SimTime::ZERO, 0, Reply::Final),
            RetryDecision::Return
        );
    }

    #[test]
    fn retry_token_can_fail_against_the_deadline() {
        let mut c = RestClient::client_go(1.0, 1);
        let deadline = Some(SimTime::from_millis(2900));
        c.acquire(SimTime::ZERO, false, deadline).unwrap();
        // After a 2 s Retry-After sleep the bucket has refilled: sent at once.
        assert_eq!(
            c.acquire_retry(SimTime::from_secs(2), deadline),
            Ok(SimTime::from_secs(2))
        );
        // A second retry at 2.5 s would get its token at 3 s, past the deadline.
        assert_eq!(
            c.acquire_retry(SimTime::from_millis(2500), deadline),
            Err(LimiterError::WouldExceedDeadline)
        );
    }

    #[test]
    fn workqueue_dedups_while_queued_and_requeues_after_done() {
        let mut q = WorkQueue::new();
        assert!(q.add(1));
        assert!(!q.add(1), "already queued");
        assert!(q.add(2));
        assert_eq!(q.get(), Some(1));
        assert!(!q.add(1), "processing: queued again only at done");
        assert_eq!(q.len(), 1);
        q.done(1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.get(), Some(2));
        assert_eq!(q.get(), Some(1));
        q.done(2);
        q.done(1);
        assert!(q.is_empty() && q.processing() == 0);
    }

    #[test]
    fn add_after_keeps_the_earliest_time() {
        let mut q = WorkQueue::new();
        q.add_after(7, SimTime::ZERO, SimTime::from_secs(10));
        q.add_after(7, SimTime::ZERO, SimTime::from_secs(20));
        assert_eq!(q.next_due(), Some(SimTime::from_secs(10)));
        q.add_after(7, SimTime::ZERO, SimTime::from_secs(5));
        assert_eq!(q.next_due(), Some(SimTime::from_secs(5)));
        q.promote_due(SimTime::from_secs(5));
        assert_eq!(q.get(), Some(7));
        assert_eq!(q.next_due(), None);
        assert_eq!(q.waiting(), 0);
    }

    #[test]
    fn item_exponential_doubles_caps_and_forgets() {
        let mut l = RateLimiter::cert_manager_default();
        let s: Vec<u64> = (0..8)
            .map(|_| l.when(1, SimTime::ZERO).as_nanos() / 1_000_000_000)
            .collect();
        assert_eq!(s, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(l.num_requeues(1), 8);
        l.forget(1);
        assert_eq!(l.when(1, SimTime::ZERO), SimTime::from_secs(5));
        assert_eq!(l.when(2, SimTime::ZERO), SimTime::from_secs(5), "per item");
    }

    #[test]
    fn default_controller_limiter_is_max_of_item_and_bucket() {
        let mut l = RateLimiter::default_controller();
        // The first 100 failures of distinct items fit the burst: 5 ms each.
        for i in 0..100 {
            assert_eq!(l.when(i, SimTime::ZERO), SimTime(5 * MS));
        }
        // The 101st waits for the 10 qps bucket: 100 ms.
        assert_eq!(l.when(100, SimTime::ZERO), SimTime(100 * MS));
        // Per item: 5 ms x 2^n reaches 1000 s.
        let mut l = RateLimiter::default_controller();
        let mut last = SimTime::ZERO;
        for _ in 0..30 {
            last = l.when(9, SimTime::from_secs(1_000_000));
        }
        assert_eq!(last, SimTime::from_secs(1000));
    }

    #[test]
    fn backoff_next_doubles_and_expires_after_twice_max() {
        let mut b = Backoff::new(
            SimTime::from_secs(10),
            SimTime::from_secs(300),
            BackoffExpiry::TwiceMax,
        );
        let s = SimTime::from_secs;
        assert!(!b.is_in_backoff_since(1, s(0), s(0)));
        b.next(1, s(0), s(0));
        assert_eq!(b.get(1), s(10));
        assert!(b.is_in_backoff_since(1, s(0), s(9)));
        assert!(!b.is_in_backoff_since(1, s(0), s(10)));
        for want in [20, 40, 80, 160, 300, 300] {
            b.next(1, s(1), s(1));
            assert_eq!(b.get(1), s(want));
        }
        // 600 s after the last update is not yet expired; 600 s + 1 ns is.
        assert!(b.is_in_backoff_since(1, s(601), s(601)));
        assert!(!b.is_in_backoff_since(1, SimTime(601 * 1_000_000_000 + 1), s(602)));
        b.next(1, s(602), s(602));
        assert_eq!(b.get(1), s(10), "expired: starts again");
        b.gc(s(1203));
        assert_eq!(b.entry(1), None);
    }

    proptest! {
        /// Tokens never go below what the reservations made account for, the wait of a
        /// reservation never decreases for later reservations at the same instant, and a
        /// refused reservation changes nothing.
        #[test]
        fn bucket_debt_is_exactly_the_reservations(
            ops in prop::collection::vec((0u64..2_000, prop::option::of(0u64..3_000)), 1..200),
        ) {
            let mut b = TokenBucket::new(20.0, 30);
            let mut now = SimTime::ZERO;
            let mut last_grant = SimTime::ZERO;
            for (dt_ms, deadline_ms) in ops {
                now = now + SimTime::from_millis(dt_ms);
                let deadline = deadline_ms.map(|d| now + SimTime::from_millis(d + 1));
                let before = b.clone();
                match b.reserve(now, 1, deadline) {
                    Ok(at) => {
                        prop_assert!(at >= now);
                        prop_assert!(at >= last_grant, "first come, first served");
                        last_grant = at;
                        if let Some(d) = deadline { prop_assert!(at <= d); }
                        // Debt never exceeds what the pending grants need.
                        let pending = (at - now).as_secs_f64() * 20.0;
                        prop_assert!(b.tokens_at(now) >= -pending - 1.0 - 1e-6);
                    }
                    Err(_) => prop_assert_eq!(&b, &before),
                }
                prop_assert!(b.tokens_at(now) <= 30.0);
            }
        }
    }
}
