//! The CAs behind the signers ("issuers"), fleet-level and shared by every cluster that
//! names them: AWS Private CA, Google Certificate Authority Service, HashiCorp Vault PKI,
//! and a load-tested CA described by the Universal Scalability Law ([`crate::ca`]).
//!
//! # AWS Private CA ([`AwsPcaAccount`], [`AwsSdkRetryer`])
//! - Quotas are per AWS account and Region (AWS Private CA user guide, `PcaLimits.html`):
//!   `IssueCertificate` 25/s (`L-CAFB4993`) and `GetCertificate` 75/s (`L-1725E639`),
//!   both adjustable. Above them a call fails with **`ThrottlingException`** ("AWS
//!   Private CA does not guarantee a minimum request rate"). The quota's shape is
//!   **unconfirmed**: modelled as a token bucket that rejects (no queue) with a burst
//!   equal to the rate.
//! - Issuance is asynchronous: `IssueCertificate` returns an ARN; the certificate can be
//!   read with `GetCertificate` after an **unconfirmed** issue latency; before that the
//!   call fails with `RequestInProgressException`. An `IdempotencyToken` reused within
//!   5 minutes returns the same certificate (IssueCertificate API reference), so only
//!   one certificate is issued (and billed). aws-privateca-issuer's token is
//!   `sha256(namespace/name)[:36]` of the CertificateRequest (`pkg/aws/pca.go:185-189`
//!   HEAD cc32c134): the owner passes the CR's stable id.
//! - The issuer's SDK client is aws-sdk-go-v2's **standard retryer**
//!   (`aws/retry/standard.go`, stored commit 1489ddb2; `pca.go:86-88` adds
//!   `RequestInProgressException` to the retryable codes): at most 3 attempts; before
//!   retry `n` (1-based) it sleeps `U[0,1) x 2^n` s, or exactly 20 s once `n >
//!   log2(20)`; each retry takes 5 tokens (10 for a timeout) from a retry quota of 500
//!   that does not refill with time: a success of a first attempt adds 1, a successful
//!   retry gives its cost back; an empty quota fails the call at once (`retry quota
//!   exceeded`). One retryer (one quota) per provisioner, i.e. per issuer object.
//!
//! # Google CAS ([`GoogleCasCa`], [`CasLocation`])
//! `CreateCertificate` 7/s per CA on the Enterprise tier, 25/s on DevOps, and 100/s per
//! location per project (CAS quotas page). Over quota the call is rejected (gRPC
//! `RESOURCE_EXHAUSTED`); burst and latency are **unconfirmed** parameters.
//!
//! # Vault PKI ([`Vault`])
//! `/sign` latency lognormal with mean 2.76 ms and p99 7.65 ms (hashicorp/vault PR
//! #16046: Vault 1.10.4, raft, EC keys, `benchmark-vault`; its p95 5.61 ms is within 3 %
//! of the fitted lognormal's). Requests are served in parallel (no queue: Vault's
//! concurrency limit is not modelled). An optional rate-limit quota (Vault resource
//! quotas, HTTP 429) is off by default. RSA-4096 key generation (p95 > 10 s, PR #21225)
//! applies to `/issue` with server-side keys, not to `/sign`, which every signer here
//! uses (the agent makes the key).
//!
//! # USL ([`UslIssuer`])
//! The existing [`CertificateAuthority`](crate::ca::CertificateAuthority), unchanged:
//! workers, service distribution, token bucket, sigma/kappa. It stands for a CA whose
//! owner load-tested it (`fleetsim ca fit`); `fleetsim ca` and its queueing-theory
//! validation use the same type.

use std::collections::BTreeMap;

use rand_distr::{Distribution, StandardNormal};

use super::client::TokenBucket;
use crate::ca::ServiceTime;
use crate::engine::rng::unit_f64;
use crate::engine::{RngStream, SimTime};

/// The load-tested CA: [`crate::ca::CertificateAuthority`] as it is.
pub type UslIssuer = crate::ca::CertificateAuthority;

// ----- AWS Private CA -----------------------------------------------------------------

/// One AWS account-region's Private CA service as its quotas see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsPcaConfig {
    /// `IssueCertificate` requests per second (quota L-CAFB4993, 25).
    pub issue_rate_per_s: f64,
    /// Burst of that quota (**unconfirmed**; default = the rate).
    pub issue_burst: u32,
    /// `GetCertificate` requests per second (quota L-1725E639, 75).
    pub get_rate_per_s: f64,
    /// Burst of that quota (**unconfirmed**; default = the rate).
    pub get_burst: u32,
    /// From `IssueCertificate` until `GetCertificate` returns the certificate
    /// (**unconfirmed**).
    pub issue_latency: SimTime,
    /// Round trip of one API call (**unconfirmed**).
    pub api_latency: SimTime,
    /// Idempotency-token window (5 min, IssueCertificate API reference).
    pub idempotency_window: SimTime,
}

impl Default for AwsPcaConfig {
    fn default() -> Self {
        AwsPcaConfig {
            issue_rate_per_s: 25.0,
            issue_burst: 25,
            get_rate_per_s: 75.0,
            get_burst: 75,
            issue_latency: SimTime::from_millis(500),
            api_latency: SimTime::from_millis(50),
            idempotency_window: SimTime::from_secs(300),
        }
    }
}

/// A certificate `IssueCertificate` started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcaCertificate {
    /// The ARN (a number here).
    pub arn: u64,
    /// When `GetCertificate` returns it.
    pub ready_at: SimTime,
}

/// A PCA API error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcaError {
    /// Over the account-region's per-second quota.
    ThrottlingException,
    /// `GetCertificate` before the certificate is ready.
    RequestInProgressException,
}

impl PcaError {
    /// The error code.
    pub fn code(self) -> &'static str {
        match self {
            PcaError::ThrottlingException => "ThrottlingException",
            PcaError::RequestInProgressException => "RequestInProgressException",
        }
    }
}

/// One account-region of AWS Private CA (shared by every cluster naming it).
#[derive(Debug, Clone)]
pub struct AwsPcaAccount {
    config: AwsPcaConfig,
    issue: TokenBucket,
    get: TokenBucket,
    tokens: BTreeMap<u64, (SimTime, PcaCertificate)>,
    next_arn: u64,
    issue_requests: u64,
    issued: u64,
    issue_throttled: u64,
    get_requests: u64,
    get_throttled: u64,
    in_progress: u64,
}

impl AwsPcaAccount {
    /// The account with full quota buckets.
    pub fn new(config: AwsPcaConfig) -> AwsPcaAccount {
        AwsPcaAccount {
            config,
            issue: TokenBucket::new(config.issue_rate_per_s, config.issue_burst),
            get: TokenBucket::new(config.get_rate_per_s, config.get_burst),
            tokens: BTreeMap::new(),
            next_arn: 1,
            issue_requests: 0,
            issued: 0,
            issue_throttled: 0,
            get_requests: 0,
            get_throttled: 0,
            in_progress: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AwsPcaConfig {
        &self.config
    }

    /// `IssueCertificate` arriving at `now` with idempotency token `token`. The reply
    /// reaches the caller `api_latency` later.
    pub fn issue_certificate(
        &mut self,
        now: SimTime,
        token: u64,
    ) -> Result<PcaCertificate, PcaError> {
        self.issue_requests += 1;
        if !self.issue.allow(now, 1) {
            self.issue_throttled += 1;
            return Err(PcaError::ThrottlingException);
        }
        if let Some(&(first, cert)) = self.tokens.get(&token) {
            if now - first <= self.config.idempotency_window {
                return Ok(cert);
            }
        }
        let cert = PcaCertificate {
            arn: self.next_arn,
            ready_at: now + self.config.issue_latency,
        };
        self.next_arn += 1;
        self.issued += 1;
        self.tokens.insert(token, (now, cert));
        Ok(cert)
    }

    /// `GetCertificate` of `cert` arriving at `now`.
    pub fn get_certificate(&mut self, now: SimTime, cert: PcaCertificate) -> Result<(), PcaError> {
        self.get_requests += 1;
        if !self.get.allow(now, 1) {
            self.get_throttled += 1;
            return Err(PcaError::ThrottlingException);
        }
        if now < cert.ready_at {
            self.in_progress += 1;
            return Err(PcaError::RequestInProgressException);
        }
        Ok(())
    }

    /// Drops idempotency records older than the window (call now and then).
    pub fn expire_tokens(&mut self, now: SimTime) {
        let w = self.config.idempotency_window;
        self.tokens.retain(|_, (first, _)| now - *first <= w);
    }

    /// `IssueCertificate` calls received.
    pub fn issue_requests(&self) -> u64 {
        self.issue_requests
    }
    /// Certificates issued (billed): idempotent repeats excluded.
    pub fn issued(&self) -> u64 {
        self.issued
    }
    /// `IssueCertificate` calls throttled.
    pub fn issue_throttled(&self) -> u64 {
        self.issue_throttled
    }
    /// `GetCertificate` calls received.
    pub fn get_requests(&self) -> u64 {
        self.get_requests
    }
    /// `GetCertificate` calls throttled.
    pub fn get_throttled(&self) -> u64 {
        self.get_throttled
    }
    /// `GetCertificate` calls answered `RequestInProgressException`.
    pub fn in_progress(&self) -> u64 {
        self.in_progress
    }
}

/// aws-sdk-go-v2's standard retryer parameters (`aws/retry/standard.go`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsRetryConfig {
    /// `DefaultMaxAttempts` (3).
    pub max_attempts: u32,
    /// `DefaultMaxBackoff` (20 s).
    pub max_backoff: SimTime,
    /// `DefaultRetryRateTokens` (500).
    pub quota_tokens: u32,
    /// `DefaultRetryCost` (5).
    pub retry_cost: u32,
    /// `DefaultRetryTimeoutCost` (10).
    pub timeout_cost: u32,
    /// `DefaultNoRetryIncrement` (1).
    pub no_retry_increment: u32,
}

impl Default for AwsRetryConfig {
    fn default() -> Self {
        AwsRetryConfig {
            max_attempts: 3,
            max_backoff: SimTime::from_secs(20),
            quota_tokens: 500,
            retry_cost: 5,
            timeout_cost: 10,
            no_retry_increment: 1,
        }
    }
}

/// How one SDK attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkAttempt {
    /// The call succeeded.
    Success,
    /// A retryable error (throttling, 5xx, `RequestInProgressException` for the issuer).
    Retryable,
    /// A retryable timeout (costs 10).
    Timeout,
    /// Not retryable.
    Fatal,
}

/// What the SDK does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkDecision {
    /// The operation succeeded.
    Succeeded,
    /// Sleep this long, then make the next attempt.
    RetryAfter(SimTime),
    /// The operation fails with the last error.
    Failed(SdkFailure),
}

/// Why an SDK operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkFailure {
    /// `max_attempts` reached.
    MaxAttempts,
    /// The retry quota could not pay for a retry (`retry quota exceeded`).
    QuotaExceeded,
    /// The error is not retryable.
    NotRetryable,
}

/// One SDK client's retryer: its retry quota lives as long as the client.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSdkRetryer {
    config: AwsRetryConfig,
    quota: u32,
    quota_exceeded: u64,
    retries: u64,
}

/// Per-operation state: which attempt, and the cost of the retry in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SdkOperation {
    /// Attempts made so far.
    pub attempts: u32,
    /// Tokens the current retry took (given back if it succeeds).
    pub held: u32,
}

impl AwsSdkRetryer {
    /// A retryer with a full quota.
    pub fn new(config: AwsRetryConfig) -> AwsSdkRetryer {
        AwsSdkRetryer {
            config,
            quota: config.quota_tokens,
            quota_exceeded: 0,
            retries: 0,
        }
    }

    /// Tokens left in the retry quota.
    pub fn quota(&self) -> u32 {
        self.quota
    }

    /// Operations that failed because the quota was empty.
    pub fn quota_exceeded(&self) -> u64 {
        self.quota_exceeded
    }

    /// Retries made.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// `BackoffDelay(attempt)`: `U[0,1) x 2^attempt` s, or `max_backoff` once
    /// `attempt > log2(max_backoff / 1 s)`.
    pub fn backoff(&self, attempt: u32, rng: &mut RngStream) -> SimTime {
        let max_s = self.config.max_backoff.as_secs_f64();
        if attempt as f64 > max_s.log2() {
            return self.config.max_backoff;
        }
        SimTime::from_secs_f64(unit_f64(rng) * (1u64 << attempt.min(62)) as f64)
    }

    /// The decision after attempt `op.attempts + 1` ended with `result`.
    pub fn on_attempt(
        &mut self,
        op: &mut SdkOperation,
        result: SdkAttempt,
        rng: &mut RngStream,
    ) -> SdkDecision {
        op.attempts += 1;
        match result {
            SdkAttempt::Success => {
                let add = if op.held > 0 {
                    op.held
                } else {
                    self.config.no_retry_increment
                };
                self.quota = (self.quota + add).min(self.config.quota_tokens);
                op.held = 0;
                SdkDecision::Succeeded
            }
            SdkAttempt::Fatal => SdkDecision::Failed(SdkFailure::NotRetryable),
            SdkAttempt::Retryable | SdkAttempt::Timeout => {
                op.held = 0;
                if op.attempts >= self.config.max_attempts {
                    return SdkDecision::Failed(SdkFailure::MaxAttempts);
                }
                let cost = if result == SdkAttempt::Timeout {
                    self.config.timeout_cost
                } else {
                    self.config.retry_cost
                };
                if self.quota < cost {
                    self.quota_exceeded += 1;
                    return SdkDecision::Failed(SdkFailure::QuotaExceeded);
                }
                self.quota -= cost;
                op.held = cost;
                self.retries += 1;
                SdkDecision::RetryAfter(self.backoff(op.attempts, rng))
            }
        }
    }
}

// ----- Google CAS ---------------------------------------------------------------------

/// A request refused by a quota (CAS `RESOURCE_EXHAUSTED`, Vault HTTP 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded;

/// A CAS pool tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasTier {
    /// 7 CreateCertificate/s per CA.
    Enterprise,
    /// 25 CreateCertificate/s per CA.
    DevOps,
}

impl CasTier {
    /// The per-CA rate.
    pub fn rate_per_s(self) -> f64 {
        match self {
            CasTier::Enterprise => 7.0,
            CasTier::DevOps => 25.0,
        }
    }
}

/// The per-location-per-project CreateCertificate quota (100/s), shared by its CAs.
#[derive(Debug, Clone)]
pub struct CasLocation {
    bucket: TokenBucket,
}

impl CasLocation {
    /// 100/s, burst 100 (burst unconfirmed).
    pub fn new() -> CasLocation {
        CasLocation {
            bucket: TokenBucket::new(100.0, 100),
        }
    }
}

impl Default for CasLocation {
    fn default() -> Self {
        CasLocation::new()
    }
}

/// One Google CAS certificate authority.
#[derive(Debug, Clone)]
pub struct GoogleCasCa {
    tier: CasTier,
    bucket: TokenBucket,
    latency: SimTime,
    requests: u64,
    rejected: u64,
}

impl GoogleCasCa {
    /// A CA of `tier` answering after `latency` (**unconfirmed**).
    pub fn new(tier: CasTier, latency: SimTime) -> GoogleCasCa {
        let r = tier.rate_per_s();
        GoogleCasCa {
            tier,
            bucket: TokenBucket::new(r, r as u32),
            latency,
            requests: 0,
            rejected: 0,
        }
    }

    /// Its tier.
    pub fn tier(&self) -> CasTier {
        self.tier
    }

    /// `CreateCertificate` at `now`: the reply time, or `RESOURCE_EXHAUSTED` when the
    /// CA's or the location's quota is spent.
    pub fn create_certificate(
        &mut self,
        now: SimTime,
        location: &mut CasLocation,
    ) -> Result<SimTime, QuotaExceeded> {
        self.requests += 1;
        // Both quotas must admit it; the location is asked only if the CA has room.
        if !self.bucket.allow(now, 1) || !location.bucket.allow(now, 1) {
            self.rejected += 1;
            return Err(QuotaExceeded);
        }
        Ok(now + self.latency)
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests
    }
    /// Requests rejected over quota.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

// ----- Vault --------------------------------------------------------------------------

/// Vault PKI as a signer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaultConfig {
    /// `/sign` latency (lognormal from PR #16046 by default).
    pub latency: ServiceTime,
    /// A rate-limit quota (requests/s, burst), off by default.
    pub rate_limit: Option<(f64, u32)>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            latency: ServiceTime::lognormal_from_mean_p99(SimTime(2_760_386), SimTime(7_650_496))
                .expect("a lognormal with this mean and p99 exists"),
            rate_limit: None,
        }
    }
}

/// One Vault PKI mount.
#[derive(Debug, Clone)]
pub struct Vault {
    latency: ServiceTime,
    quota: Option<TokenBucket>,
    rng: RngStream,
    requests: u64,
    rate_limited: u64,
}

impl Vault {
    /// A Vault drawing latencies from `rng` (its own stream, e.g. `vault/{name}`).
    pub fn new(config: VaultConfig, rng: RngStream) -> Vault {
        Vault {
            latency: config.latency,
            quota: config.rate_limit.map(|(r, b)| TokenBucket::new(r, b)),
            rng,
            requests: 0,
            rate_limited: 0,
        }
    }

    /// A `/sign` request at `now`: the reply time, or HTTP 429 from the quota.
    pub fn sign(&mut self, now: SimTime) -> Result<SimTime, QuotaExceeded> {
        self.requests += 1;
        if let Some(q) = self.quota.as_mut() {
            if !q.allow(now, 1) {
                self.rate_limited += 1;
                return Err(QuotaExceeded);
            }
        }
        Ok(now + sample(&self.latency, &mut self.rng))
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests
    }
    /// Requests refused by the rate-limit quota.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited
    }
}

/// One draw of a service time (the same maths as the CA's; the CA's own sampler is
/// private to it and left untouched).
fn sample(st: &ServiceTime, rng: &mut RngStream) -> SimTime {
    match *st {
        ServiceTime::Constant { value } => value,
        ServiceTime::Exponential { mean } => {
            let u = unit_f64(rng);
            SimTime::from_secs_f64(-mean.as_secs_f64() * (1.0 - u).ln())
        }
        ServiceTime::LogNormal { median, p99 } => {
            let s = (p99.as_secs_f64() / median.as_secs_f64()).ln() / crate::ca::Z_99;
            let z: f64 = StandardNormal.sample(rng);
            SimTime::from_secs_f64(median.as_secs_f64() * (s * z).exp())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::named_stream;

    #[test]
    fn pca_throttles_issue_above_25_per_second() {
        let mut pca = AwsPcaAccount::new(AwsPcaConfig::default());
        // 50 requests in one second, evenly spaced: the burst of 25 plus ~25 refilled.
        let mut ok = 0;
        for i in 0..50u64 {
            let now = SimTime::from_millis(i * 20);
            if pca.issue_certificate(now, i).is_ok() {
                ok += 1;
            }
        }
        assert!((48..=50).contains(&ok), "{ok}: burst 25 + 25/s over 1 s");
        // 200 at once: 25 pass.
        let mut pca = AwsPcaAccount::new(AwsPcaConfig::default());
        let ok = (0..200u64)
            .filter(|&i| pca.issue_certificate(SimTime::ZERO, i).is_ok())
            .count();
        assert_eq!(ok, 25);
        assert_eq!(pca.issue_throttled(), 175);
        // Sustained 100/s for 10 s: ~25/s get through.
        let mut pca = AwsPcaAccount::new(AwsPcaConfig::default());
        let ok = (0..1000u64)
            .filter(|&i| {
                pca.issue_certificate(SimTime::from_millis(i * 10), i)
                    .is_ok()
            })
            .count();
        assert!((270..=276).contains(&ok), "{ok}");
    }

    #[test]
    fn pca_issue_is_asynchronous_and_idempotent() {
        let mut pca = AwsPcaAccount::new(AwsPcaConfig::default());
        let c = pca.issue_certificate(SimTime::ZERO, 7).unwrap();
        assert_eq!(
            pca.get_certificate(SimTime::from_millis(100), c),
            Err(PcaError::RequestInProgressException)
        );
        assert_eq!(pca.get_certificate(c.ready_at, c), Ok(()));
        // The same token within 5 min: the same certificate, nothing new billed.
        let again = pca.issue_certificate(SimTime::from_secs(60), 7).unwrap();
        assert_eq!(again, c);
        assert_eq!(pca.issued(), 1);
        // After the window: a new one.
        let later = pca.issue_certificate(SimTime::from_secs(400), 7).unwrap();
        assert_ne!(later.arn, c.arn);
        assert_eq!(pca.issued(), 2);
    }

    #[test]
    fn sdk_retries_twice_with_growing_jitter_then_fails() {
        let mut r = AwsSdkRetryer::new(AwsRetryConfig::default());
        let mut rng = named_stream(1, "sdk");
        let mut op = SdkOperation::default();
        let d1 = r.on_attempt(&mut op, SdkAttempt::Retryable, &mut rng);
        let d2 = r.on_attempt(&mut op, SdkAttempt::Retryable, &mut rng);
        let d3 = r.on_attempt(&mut op, SdkAttempt::Retryable, &mut rng);
        assert!(matches!(d1, SdkDecision::RetryAfter(d) if d < SimTime::from_secs(2)));
        assert!(matches!(d2, SdkDecision::RetryAfter(d) if d < SimTime::from_secs(4)));
        assert_eq!(d3, SdkDecision::Failed(SdkFailure::MaxAttempts));
        assert_eq!(r.quota(), 490, "two retries at 5 tokens each");
        // Backoff bounds: U[0, 2^n) up to n = 4, then 20 s flat.
        for n in 1..=4 {
            for _ in 0..1000 {
                let d = r.backoff(n, &mut rng);
                assert!(d < SimTime::from_secs(1 << n));
            }
        }
        assert_eq!(r.backoff(5, &mut rng), SimTime::from_secs(20));
    }

    #[test]
    fn sdk_retry_quota_drains_under_throttling_and_refills_on_success() {
        let mut r = AwsSdkRetryer::new(AwsRetryConfig::default());
        let mut rng = named_stream(2, "sdk");
        // Every operation throttled twice then failed: 10 tokens each; 50 drain 500.
        let mut failed_by_quota = 0;
        for _ in 0..60 {
            let mut op = SdkOperation::default();
            loop {
                match r.on_attempt(&mut op, SdkAttempt::Retryable, &mut rng) {
                    SdkDecision::RetryAfter(_) => continue,
                    SdkDecision::Failed(SdkFailure::QuotaExceeded) => {
                        failed_by_quota += 1;
                        break;
                    }
                    SdkDecision::Failed(_) => break,
                    SdkDecision::Succeeded => unreachable!(),
                }
            }
        }
        assert_eq!(r.quota(), 0);
        assert_eq!(failed_by_quota, 10, "the last 10 fail at once, no retry");
        // A first-attempt success adds 1; a successful retry gives its 5 back.
        let mut op = SdkOperation::default();
        assert_eq!(
            r.on_attempt(&mut op, SdkAttempt::Success, &mut rng),
            SdkDecision::Succeeded
        );
        assert_eq!(r.quota(), 1);
        let mut r = AwsSdkRetryer::new(AwsRetryConfig::default());
        let mut op = SdkOperation::default();
        r.on_attempt(&mut op, SdkAttempt::Retryable, &mut rng);
        assert_eq!(r.quota(), 495);
        r.on_attempt(&mut op, SdkAttempt::Success, &mut rng);
        assert_eq!(r.quota(), 500);
    }

    #[test]
    fn cas_tiers_and_location_quota() {
        let mut loc = CasLocation::new();
        let mut ent = GoogleCasCa::new(CasTier::Enterprise, SimTime::from_millis(100));
        let ok = (0..50)
            .filter(|_| ent.create_certificate(SimTime::ZERO, &mut loc).is_ok())
            .count();
        assert_eq!(ok, 7);
        // Five DevOps CAs in one location: 125 by their tiers, 100 by the location.
        let mut loc = CasLocation::new();
        let mut cas: Vec<GoogleCasCa> = (0..5)
            .map(|_| GoogleCasCa::new(CasTier::DevOps, SimTime::from_millis(100)))
            .collect();
        let ok = (0..200)
            .filter(|i| {
                cas[i % 5]
                    .create_certificate(SimTime::ZERO, &mut loc)
                    .is_ok()
            })
            .count();
        assert_eq!(ok, 100);
    }

    #[test]
    fn vault_latency_matches_the_benchmark() {
        let mut v = Vault::new(VaultConfig::default(), named_stream(3, "vault"));
        let mut xs: Vec<f64> = (0..200_000)
            .map(|_| v.sign(SimTime::ZERO).unwrap().as_secs_f64() * 1e3)
            .collect();
        xs.sort_by(f64::total_cmp);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let q = |p: f64| xs[(p * xs.len() as f64) as usize];
        assert!((mean - 2.76).abs() < 0.03, "mean {mean}");
        assert!((q(0.99) - 7.65).abs() < 0.2, "p99 {}", q(0.99));
        assert!((q(0.95) - 5.61).abs() / 5.61 < 0.05, "p95 {}", q(0.95));
        // The optional quota answers 429 beyond it.
        let mut v = Vault::new(
            VaultConfig {
                rate_limit: Some((10.0, 10)),
                ..VaultConfig::default()
            },
            named_stream(3, "vault"),
        );
        let ok = (0..20).filter(|_| v.sign(SimTime::ZERO).is_ok()).count();
        assert_eq!((ok, v.rate_limited()), (10, 10));
    }
}
