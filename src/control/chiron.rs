//! istiod's registration-authority flow for one `CreateCertificate` when it signs through
//! the Kubernetes CSR API (`EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API`), as a pure state
//! machine per release group.
//!
//! Sources (istio/istio): `security/pkg/server/ca/server.go` and
//! `security/pkg/server/ca/authenticate/kubeauth/kube_jwt.go` (one TokenReview per
//! call), `security/pkg/pki/ra/k8s_ra.go`, `security/pkg/k8s/chiron/utils.go` and
//! `controller.go` (`SignCSRK8s`, `submitCSR`, `approveCSR`, `readSignedCsr`,
//! `getSignedCsr`, `cleanUpCertGen`/`cleanupCSR`) at 1.10.6, 1.11.8, 1.12.9, 1.14.5,
//! 1.14.6, 1.15.3, 1.15.7, 1.18.7, 1.24.6, 1.26.0 and master 86c9f01fd7.
//!
//! # The flow ([`ChironFlow`])
//! Every release first makes a TokenReview (a failure is `Unauthenticated`, which the
//! agent does not retry). Then, by [`ChironGroup`]:
//!
//! | group | create | read | delete |
//! |---|---|---|---|
//! | G0 1.10-1.11 | up to 3 tries back to back; on AlreadyExists Delete the old one and Create again | Watch (5 s), then up to 10 x {Get; sleep 500 ms}; a Get error ends it | explicit: 1 on success (its failure fails the request), 1 after a failed approve, 2 on every other failure path |
//! | G1 1.12-1.13 | up to 3 tries (a v1 NotFound falls back to v1beta1 in the same try) | Watch (5 s), then 10 x {Get; sleep 500 ms}; Get errors do not stop the loop | deferred, once, on every path after a successful Create; its result is ignored |
//! | G2 1.14.0-1.14.5, 1.15.0-1.15.3 | as G1 | List (done if signed), Watch (5 s), then the 10 Gets | as G1 |
//! | G3 1.14.6, 1.15.4+, 1.16-1.18 | as G1 | as G2 with a 60 s watch | as G1 |
//! | G4 1.19-1.25, G5 1.26-1.30 | one Create | List, Watch (60 s); a watch error ends it; no Gets | as G1 |
//! | G6 1.31 pre-releases | one Create | Watch, then List, then wait (60 s) | as G1 |
//!
//! Approval (`UpdateApproval`) follows every successful Create; its failure ends the flow.
//! Nothing looks at the Failed or Denied conditions: a CSR its signer marked Failed costs
//! the whole wait, exactly like a silent signer. Every failure reaches the agent as
//! `codes.Internal` (`CSR signing error (...)`), which the agent retries.
//!
//! Waits without API time: 5 s + 10 x 0.5 s = **10 s** (G0-G2), 60 s + 5 s = **65 s**
//! (G3), **60 s** (G4-G6).
//!
//! # What the owner does with the actions
//! - [`Action::Call`]: one API call through the istiod replica's client (one limiter
//!   token; istiod's calls use `context.TODO()`/`Background()`, so the limiter waits
//!   without bound), then the apiserver; report the result with [`Input::Result`].
//! - [`Action::OpenWatch`]: a watch request (no token, but it goes through APF);
//!   report `Ok` or `Error`.
//! - [`Action::AwaitWatch`]: the watch ends as soon as the CSR carries a certificate —
//!   including one it already carries when the wait starts — or after `timeout`; report
//!   [`Input::WatchEnded`]. This holds for every group: G2+ watch from the List's
//!   resourceVersion or watch before listing, and G0/G1's watch without a
//!   resourceVersion starts with the object's current state (apiserver
//!   `storage/etcd3/watcher.go` `areInitialEventsRequired`: "legacy case", rev 0 ->
//!   `sync()`; the cacher hands RV="" watches to storage, `cacher.go:516` v0.29.0). The
//!   istio comment "A simple Watch will fail if the cert is signed too quickly" (added
//!   with the List in 1c8c8135eae) describes client-go's fake clientset in unit tests,
//!   not a real apiserver, so no extra ~5 s is charged to G0/G1.
//! - [`Action::Sleep`]: report [`Input::Woke`] after the duration. An owner may merge a
//!   Get with the sleep after it into one event when it can tell from the CSR's history
//!   whether the Get's reply carried the certificate.
//! - [`Action::Done`]: the answer to the agent. [`ChironFlow::csr_left_behind`] says
//!   whether the CSR object is still there as far as istiod knows (no Delete succeeded).
//!   If the istiod pod dies mid-flow the owner drops the flow: no Delete runs, and the
//!   CSR is left behind if [`ChironFlow::csr_live`].

use std::fmt;

use crate::engine::SimTime;

pub use super::version::ChironGroup;

/// An API call istiod makes (each takes one limiter token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    /// `TokenReviews().Create` (authentication of the agent's JWT).
    TokenReview,
    /// `CertificatesV1().CertificateSigningRequests().Create`.
    Create,
    /// The v1beta1 Create (G1-G3, only after v1 answered NotFound).
    CreateV1beta1,
    /// `UpdateApproval` (`/approval`).
    Approve,
    /// List with `fieldSelector=metadata.name=<csr>` (one seat).
    List,
    /// Get the CSR.
    Get,
    /// Delete the CSR.
    Delete,
}

/// The answer to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// Success; for List/Get: the CSR has no certificate yet.
    Ok,
    /// List/Get: the CSR carries its certificate.
    Signed,
    /// HTTP 404 (the v1 API missing, or the object gone).
    NotFound,
    /// HTTP 409 on Create.
    AlreadyExists,
    /// Any other error (a 429 after client-go's retries, a 5xx, a limiter error).
    Error,
}

/// What the flow was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Start the flow.
    Start,
    /// The last [`Action::Call`] or [`Action::OpenWatch`] answered.
    Result(CallResult),
    /// The [`Action::AwaitWatch`] ended: the certificate was seen, or the timeout.
    WatchEnded {
        /// The CSR carried its certificate.
        signed: bool,
    },
    /// The [`Action::Sleep`] is over.
    Woke,
}

/// What istiod does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Make this API call.
    Call(Call),
    /// Open a watch on the CSR by name (no limiter token).
    OpenWatch,
    /// Wait on the open watch for the certificate, at most `timeout`.
    AwaitWatch {
        /// `certWatchTimeout` of the release.
        timeout: SimTime,
    },
    /// Sleep (`certReadInterval`).
    Sleep(SimTime),
    /// The flow is over; the agent gets this answer.
    Done(Result<(), ChironError>),
}

/// Why a flow failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChironError {
    /// The TokenReview failed: `Unauthenticated`, not retried by the agent.
    Unauthenticated,
    /// Every Create try failed.
    CreateFailed,
    /// The approval failed.
    ApproveFailed,
    /// The watch could not be opened (G4+).
    WatchFailed,
    /// A Get failed (G0 ends at the first Get error).
    GetFailed,
    /// No certificate within the wait.
    NoCertificate,
    /// G0: the success path's Delete failed, so the issued certificate was discarded.
    DeleteFailed,
}

impl ChironError {
    /// The gRPC code the agent sees.
    pub fn grpc_code(self) -> &'static str {
        match self {
            ChironError::Unauthenticated => "Unauthenticated",
            _ => "Internal",
        }
    }

    /// Whether istio-agent retries it (its retry codes include Internal).
    pub fn retried_by_agent(self) -> bool {
        self != ChironError::Unauthenticated
    }
}

impl fmt::Display for ChironError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChironError::Unauthenticated => "request authenticate failure",
            ChironError::CreateFailed => "CSR signing error (unable to submit CSR request)",
            ChironError::ApproveFailed => "CSR signing error (unable to approve CSR request)",
            ChironError::WatchFailed => "CSR signing error (failed to watch CSR)",
            ChironError::GetFailed => "CSR signing error (failed to get the CSR)",
            ChironError::NoCertificate => "CSR signing error (no certificate returned for the CSR)",
            ChironError::DeleteFailed => "CSR signing error (failed to clean up CSR)",
        })
    }
}

/// A CSR object as istiod's reads see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsrState {
    /// `status.certificate` is set.
    pub has_certificate: bool,
    /// A `Failed` condition (the signer gave up).
    pub failed: bool,
    /// A `Denied` condition.
    pub denied: bool,
}

/// What a Get or List of `csr` tells the flow: only `status.certificate` counts
/// (every release; the watch loop's only exit test is `Status.Certificate != nil`).
pub fn read_result(csr: CsrState) -> CallResult {
    if csr.has_certificate {
        CallResult::Signed
    } else {
        CallResult::Ok
    }
}

/// Whether an [`Action::AwaitWatch`] ends for `csr` (Failed and Denied do not end it).
pub fn watch_sees(csr: CsrState) -> bool {
    csr.has_certificate
}

/// `certWatchTimeout` of a group.
pub fn watch_timeout(group: ChironGroup) -> SimTime {
    match group {
        ChironGroup::G0 | ChironGroup::G1 | ChironGroup::G2 => SimTime::from_secs(5),
        _ => SimTime::from_secs(60),
    }
}

/// `maxNumCertRead` Gets after the watch (0 from 1.19).
pub fn max_cert_reads(group: ChironGroup) -> u32 {
    if group <= ChironGroup::G3 {
        10
    } else {
        0
    }
}

/// `certReadInterval`.
pub const CERT_READ_INTERVAL: SimTime = SimTime::from_millis(500);

/// Create tries (`csrRetriesMax` / `numRetries` 3; one from 1.19).
pub fn create_tries(group: ChironGroup) -> u32 {
    if group <= ChironGroup::G3 {
        3
    } else {
        1
    }
}

/// How long a flow waits for a signer that never answers, without API time.
pub fn nominal_wait(group: ChironGroup) -> SimTime {
    watch_timeout(group) + SimTime(CERT_READ_INTERVAL.as_nanos() * max_cert_reads(group) as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    TokenReview,
    /// A Create try; `v1beta1`: the fallback Create of the same try.
    Create {
        try_no: u32,
        v1beta1: bool,
    },
    /// G0: deleting the CSR that already existed, then Create again.
    CreateDeleteExisting {
        try_no: u32,
    },
    /// G0: the Create after deleting the existing CSR.
    CreateAgain {
        try_no: u32,
    },
    Approve,
    List,
    OpenWatch,
    Await,
    /// Get number `i` (0-based) in flight.
    Get {
        i: u32,
    },
    /// Sleeping after Get number `i`.
    Sleep {
        i: u32,
    },
    /// Deleting: `left` more Deletes after this one, then finish with `result`.
    Delete {
        left: u32,
        result: Result<(), ChironError>,
    },
    Done,
}

/// One `CreateCertificate` in istiod. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChironFlow {
    group: ChironGroup,
    state: State,
    /// A Create succeeded and no Delete has succeeded since.
    csr_live: bool,
    /// Calls made, by kind (index = `Call as usize`).
    calls: [u32; 7],
    watches: u32,
    slept: SimTime,
    result: Option<Result<(), ChironError>>,
}

impl ChironFlow {
    /// A flow of release group `group`, not started.
    pub fn new(group: ChironGroup) -> ChironFlow {
        ChironFlow {
            group,
            state: State::Idle,
            csr_live: false,
            calls: [0; 7],
            watches: 0,
            slept: SimTime::ZERO,
            result: None,
        }
    }

    /// Its release group.
    pub fn group(&self) -> ChironGroup {
        self.group
    }

    /// Whether the CSR exists as far as istiod knows (created, no Delete succeeded).
    pub fn csr_live(&self) -> bool {
        self.csr_live
    }

    /// After [`Action::Done`]: the CSR object is left behind (no Delete succeeded).
    pub fn csr_left_behind(&self) -> bool {
        self.state == State::Done && self.csr_live
    }

    /// Calls of `kind` made so far.
    pub fn calls(&self, kind: Call) -> u32 {
        self.calls[kind as usize]
    }

    /// All calls made (each took a limiter token).
    pub fn total_calls(&self) -> u32 {
        self.calls.iter().sum()
    }

    /// Watches opened.
    pub fn watches(&self) -> u32 {
        self.watches
    }

    /// Time spent in [`Action::Sleep`]s so far.
    pub fn slept(&self) -> SimTime {
        self.slept
    }

    /// The answer, once done.
    pub fn result(&self) -> Option<Result<(), ChironError>> {
        self.result
    }

    fn call(&mut self, c: Call, state: State) -> Action {
        self.calls[c as usize] += 1;
        self.state = state;
        Action::Call(c)
    }

    fn done(&mut self, r: Result<(), ChironError>) -> Action {
        self.state = State::Done;
        self.result = Some(r);
        Action::Done(r)
    }

    /// The read phase is over with `r`: run the release's cleanup, then answer.
    fn finish(&mut self, r: Result<(), ChironError>, approve_failed: bool) -> Action {
        let deletes = if self.group == ChironGroup::G0 && r.is_err() && !approve_failed {
            2 // readSignedCertificate's cleanup, then SignCSRK8s's
        } else {
            1
        };
        self.call(
            Call::Delete,
            State::Delete {
                left: deletes - 1,
                result: r,
            },
        )
    }

    fn create(&mut self, try_no: u32) -> Action {
        if try_no >= create_tries(self.group) {
            return self.done(Err(ChironError::CreateFailed));
        }
        self.call(
            Call::Create,
            State::Create {
                try_no,
                v1beta1: false,
            },
        )
    }

    fn created(&mut self) -> Action {
        self.csr_live = true;
        self.call(Call::Approve, State::Approve)
    }

    fn start_read(&mut self) -> Action {
        match self.group {
            ChironGroup::G0 | ChironGroup::G1 | ChironGroup::G6 => self.open_watch(),
            _ => self.call(Call::List, State::List),
        }
    }

    fn open_watch(&mut self) -> Action {
        self.watches += 1;
        self.state = State::OpenWatch;
        Action::OpenWatch
    }

    fn await_watch(&mut self) -> Action {
        self.state = State::Await;
        Action::AwaitWatch {
            timeout: watch_timeout(self.group),
        }
    }

    fn get(&mut self, i: u32) -> Action {
        if i >= max_cert_reads(self.group) {
            return self.finish(Err(ChironError::NoCertificate), false);
        }
        self.call(Call::Get, State::Get { i })
    }

    /// Advances the flow with `input`; the answer is what to do next.
    pub fn next(&mut self, input: Input) -> Action {
        use ChironGroup as G;
        let g = self.group;
        match (self.state, input) {
            (State::Idle, Input::Start) => self.call(Call::TokenReview, State::TokenReview),
            (State::TokenReview, Input::Result(r)) => match r {
                CallResult::Ok | CallResult::Signed => self.create(0),
                _ => self.done(Err(ChironError::Unauthenticated)),
            },
            (State::Create { try_no, v1beta1 }, Input::Result(r)) => match (g, r, v1beta1) {
                (_, CallResult::Ok | CallResult::Signed, _) => self.created(),
                (G::G0, CallResult::AlreadyExists, _) => {
                    self.call(Call::Delete, State::CreateDeleteExisting { try_no })
                }
                (G::G1 | G::G2 | G::G3, CallResult::NotFound, false) => self.call(
                    Call::CreateV1beta1,
                    State::Create {
                        try_no,
                        v1beta1: true,
                    },
                ),
                _ => self.create(try_no + 1),
            },
            (State::CreateDeleteExisting { try_no }, Input::Result(r)) => match r {
                CallResult::Ok | CallResult::Signed => {
                    self.call(Call::Create, State::CreateAgain { try_no })
                }
                _ => self.create(try_no + 1),
            },
            (State::CreateAgain { try_no }, Input::Result(r)) => match r {
                CallResult::Ok | CallResult::Signed => self.created(),
                _ => self.create(try_no + 1),
            },
            (State::Approve, Input::Result(r)) => match r {
                CallResult::Ok | CallResult::Signed => self.start_read(),
                _ => self.finish(Err(ChironError::ApproveFailed), true),
            },
            (State::List, Input::Result(r)) => match (g, r) {
                (_, CallResult::Signed) => self.finish(Ok(()), false),
                // A List error is ignored (`l, _ := ...List(...)`).
                (G::G6, _) => self.await_watch(),
                _ => self.open_watch(),
            },
            (State::OpenWatch, Input::Result(r)) => match (g, r) {
                (G::G6, CallResult::Ok) => self.call(Call::List, State::List),
                (_, CallResult::Ok | CallResult::Signed) => self.await_watch(),
                (G::G0 | G::G1 | G::G2 | G::G3, _) => self.get(0),
                _ => self.finish(Err(ChironError::WatchFailed), false),
            },
            (State::Await, Input::WatchEnded { signed }) => {
                if signed {
                    self.finish(Ok(()), false)
                } else if max_cert_reads(g) > 0 {
                    self.get(0)
                } else {
                    self.finish(Err(ChironError::NoCertificate), false)
                }
            }
            (State::Get { i }, Input::Result(r)) => match (g, r) {
                (_, CallResult::Signed) => self.finish(Ok(()), false),
                (G::G0, CallResult::Ok) | (G::G1 | G::G2 | G::G3, _) => {
                    self.state = State::Sleep { i };
                    Action::Sleep(CERT_READ_INTERVAL)
                }
                _ => self.finish(Err(ChironError::GetFailed), false),
            },
            (State::Sleep { i }, Input::Woke) => {
                self.slept = self.slept + CERT_READ_INTERVAL;
                self.get(i + 1)
            }
            (State::Delete { left, result }, Input::Result(r)) => {
                let ok = matches!(r, CallResult::Ok | CallResult::Signed);
                if ok {
                    self.csr_live = false;
                }
                if left > 0 {
                    return self.call(
                        Call::Delete,
                        State::Delete {
                            left: left - 1,
                            result,
                        },
                    );
                }
                // G0's success path returns the Delete's error; later releases log it.
                let result = if g == G::G0 && result.is_ok() && !ok {
                    Err(ChironError::DeleteFailed)
                } else {
                    result
                };
                self.done(result)
            }
            (state, input) => panic!("chiron flow in {state:?} cannot take {input:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChironGroup as G;

    const ALL: [G; 7] = [G::G0, G::G1, G::G2, G::G3, G::G4, G::G5, G::G6];

    /// How the world answers: the signer, and which calls fail.
    #[derive(Clone, Copy)]
    struct World {
        /// The CSR as the signer left it before the first read.
        csr: CsrState,
        create: CallResult,
        delete: CallResult,
        watch: CallResult,
    }

    impl World {
        fn silent() -> World {
            World {
                csr: CsrState::default(),
                create: CallResult::Ok,
                delete: CallResult::Ok,
                watch: CallResult::Ok,
            }
        }
        fn fast() -> World {
            World {
                csr: CsrState {
                    has_certificate: true,
                    ..CsrState::default()
                },
                ..World::silent()
            }
        }
    }

    /// Runs a flow against `w`; returns the trace of calls (as letters), the wait time
    /// (watch timeouts + sleeps) and the answer.
    fn drive(g: G, w: World) -> (String, SimTime, Result<(), ChironError>, ChironFlow) {
        let mut f = ChironFlow::new(g);
        let mut trace = String::new();
        let mut waited = SimTime::ZERO;
        let mut a = f.next(Input::Start);
        loop {
            a = match a {
                Action::Call(c) => {
                    trace.push_str(match c {
                        Call::TokenReview => "TR ",
                        Call::Create => "C ",
                        Call::CreateV1beta1 => "Cb ",
                        Call::Approve => "A ",
                        Call::List => "L ",
                        Call::Get => "G ",
                        Call::Delete => "D ",
                    });
                    let r = match c {
                        Call::Create | Call::CreateV1beta1 => w.create,
                        Call::Delete => w.delete,
                        Call::List | Call::Get => read_result(w.csr),
                        _ => CallResult::Ok,
                    };
                    f.next(Input::Result(r))
                }
                Action::OpenWatch => {
                    trace.push_str("W ");
                    f.next(Input::Result(w.watch))
                }
                Action::AwaitWatch { timeout } => {
                    let signed = watch_sees(w.csr);
                    if !signed {
                        waited = waited + timeout;
                    }
                    f.next(Input::WatchEnded { signed })
                }
                Action::Sleep(d) => {
                    waited = waited + d;
                    f.next(Input::Woke)
                }
                Action::Done(r) => return (trace.trim().to_string(), waited, r, f),
            }
        }
    }

    fn count(trace: &str) -> usize {
        trace.split(' ').count()
    }

    #[test]
    fn success_calls_per_group() {
        let want = [
            // G0/G1 watch first (the watch sees the already-signed CSR), G2-G5 list first
            // and find it signed, G6 watches then lists.
            "TR C A W D",
            "TR C A W D",
            "TR C A L D",
            "TR C A L D",
            "TR C A L D",
            "TR C A L D",
            "TR C A W L D",
        ];
        for (g, want) in ALL.iter().zip(want) {
            let (t, waited, r, f) = drive(*g, World::fast());
            assert_eq!(t, want, "{g:?}");
            assert_eq!(r, Ok(()));
            assert_eq!(waited, SimTime::ZERO);
            assert!(!f.csr_left_behind());
        }
    }

    #[test]
    fn silent_signer_calls_and_waits_per_group() {
        let g10 = "G G G G G G G G G G";
        let want = [
            (format!("TR C A W {g10} D D"), 16, 10),
            (format!("TR C A W {g10} D"), 15, 10),
            (format!("TR C A L W {g10} D"), 16, 10),
            (format!("TR C A L W {g10} D"), 16, 65),
            ("TR C A L W D".to_string(), 6, 60),
            ("TR C A L W D".to_string(), 6, 60),
            ("TR C A W L D".to_string(), 6, 60),
        ];
        for (g, (trace, calls, wait_s)) in ALL.iter().zip(want) {
            let (t, waited, r, f) = drive(*g, World::silent());
            assert_eq!(t, trace, "{g:?}");
            assert_eq!(count(&t), calls, "{g:?}");
            // Every call but the watch takes a limiter token.
            assert_eq!(f.total_calls() as usize, calls - 1, "{g:?}");
            assert_eq!(waited, SimTime::from_secs(wait_s), "{g:?}");
            assert_eq!(nominal_wait(*g), SimTime::from_secs(wait_s));
            assert_eq!(r, Err(ChironError::NoCertificate));
            assert_eq!(r.unwrap_err().grpc_code(), "Internal");
            assert!(!f.csr_left_behind(), "{g:?}: deleted");
        }
    }

    #[test]
    fn failed_signer_costs_the_same_as_a_silent_one() {
        // istiod never reads the Failed/Denied conditions: to the flow a Failed CSR is a
        // CSR without a certificate.
        for g in ALL {
            let silent = drive(g, World::silent());
            for csr in [
                CsrState {
                    failed: true,
                    ..CsrState::default()
                },
                CsrState {
                    denied: true,
                    ..CsrState::default()
                },
            ] {
                let failed = drive(
                    g,
                    World {
                        csr,
                        ..World::silent()
                    },
                );
                assert_eq!(silent.0, failed.0, "{g:?}: same calls");
                assert_eq!(silent.1, failed.1, "{g:?}: same wait");
                assert_eq!(failed.2, Err(ChironError::NoCertificate));
            }
        }
    }

    #[test]
    fn create_failure_calls_per_group() {
        let w = World {
            create: CallResult::Error,
            ..World::silent()
        };
        let want = [
            "TR C C C", "TR C C C", "TR C C C", "TR C C C", "TR C", "TR C", "TR C",
        ];
        for (g, want) in ALL.iter().zip(want) {
            let (t, waited, r, f) = drive(*g, w);
            assert_eq!(t, want, "{g:?}");
            assert_eq!(r, Err(ChironError::CreateFailed));
            assert_eq!(waited, SimTime::ZERO);
            assert_eq!(f.calls(Call::Delete), 0, "nothing to delete");
            assert!(!f.csr_live());
        }
    }

    #[test]
    fn v1_not_found_falls_back_to_v1beta1_in_the_same_try() {
        let w = World {
            create: CallResult::NotFound,
            ..World::silent()
        };
        let (t, _, r, _) = drive(G::G2, w);
        assert_eq!(t, "TR C Cb C Cb C Cb");
        assert_eq!(r, Err(ChironError::CreateFailed));
    }

    #[test]
    fn g0_deletes_an_existing_csr_then_creates_again() {
        let mut f = ChironFlow::new(G::G0);
        assert_eq!(f.next(Input::Start), Action::Call(Call::TokenReview));
        assert_eq!(
            f.next(Input::Result(CallResult::Ok)),
            Action::Call(Call::Create)
        );
        let a = f.next(Input::Result(CallResult::AlreadyExists));
        assert_eq!(a, Action::Call(Call::Delete));
        assert_eq!(
            f.next(Input::Result(CallResult::Ok)),
            Action::Call(Call::Create)
        );
        assert_eq!(
            f.next(Input::Result(CallResult::Ok)),
            Action::Call(Call::Approve)
        );
        assert!(f.csr_live());
    }

    #[test]
    fn failed_delete_leaves_the_csr() {
        let w = World {
            delete: CallResult::Error,
            ..World::silent()
        };
        for g in ALL {
            let (_, _, r, f) = drive(g, w);
            assert_eq!(r, Err(ChironError::NoCertificate));
            assert!(f.csr_left_behind(), "{g:?}");
        }
        // G1+: a failed Delete after success is only logged; G0 discards the cert.
        let w = World {
            delete: CallResult::Error,
            ..World::fast()
        };
        let (_, _, r, f) = drive(G::G4, w);
        assert_eq!(r, Ok(()));
        assert!(f.csr_left_behind());
        let (_, _, r, _) = drive(G::G0, w);
        assert_eq!(r, Err(ChironError::DeleteFailed));
    }

    #[test]
    fn watch_error_ends_g4_but_falls_back_to_gets_before() {
        let w = World {
            watch: CallResult::Error,
            ..World::silent()
        };
        let (t, waited, r, _) = drive(G::G4, w);
        assert_eq!(t, "TR C A L W D");
        assert_eq!(r, Err(ChironError::WatchFailed));
        assert_eq!(waited, SimTime::ZERO);
        let (t, waited, _, _) = drive(G::G3, w);
        assert_eq!(count(&t), 16);
        assert_eq!(waited, SimTime::from_secs(5), "no watch wait, 10 sleeps");
    }

    #[test]
    fn g0_stops_at_a_get_error_and_deletes_twice() {
        let mut f = ChironFlow::new(G::G0);
        let mut a = f.next(Input::Start);
        let mut gets = 0;
        loop {
            a = match a {
                Action::Call(Call::Get) => {
                    gets += 1;
                    f.next(Input::Result(if gets == 3 {
                        CallResult::NotFound
                    } else {
                        CallResult::Ok
                    }))
                }
                Action::Call(_) | Action::OpenWatch => f.next(Input::Result(CallResult::Ok)),
                Action::AwaitWatch { .. } => f.next(Input::WatchEnded { signed: false }),
                Action::Sleep(_) => f.next(Input::Woke),
                Action::Done(r) => {
                    assert_eq!(r, Err(ChironError::GetFailed));
                    break;
                }
            }
        }
        assert_eq!(gets, 3);
        assert_eq!(f.calls(Call::Delete), 2);
    }

    #[test]
    fn token_review_failure_is_unauthenticated_and_not_retried() {
        let mut f = ChironFlow::new(G::G3);
        f.next(Input::Start);
        let a = f.next(Input::Result(CallResult::Error));
        assert_eq!(a, Action::Done(Err(ChironError::Unauthenticated)));
        assert!(!ChironError::Unauthenticated.retried_by_agent());
        assert!(ChironError::NoCertificate.retried_by_agent());
    }

    #[test]
    fn signed_during_the_get_loop_ends_it() {
        // G3: the signer signs while istiod polls: the 4th Get sees it; 3 sleeps before.
        let mut f = ChironFlow::new(G::G3);
        let mut a = f.next(Input::Start);
        let mut gets = 0;
        loop {
            a = match a {
                Action::Call(Call::Get) => {
                    gets += 1;
                    f.next(Input::Result(if gets == 4 {
                        CallResult::Signed
                    } else {
                        CallResult::Ok
                    }))
                }
                Action::Call(_) | Action::OpenWatch => f.next(Input::Result(CallResult::Ok)),
                Action::AwaitWatch { .. } => f.next(Input::WatchEnded { signed: false }),
                Action::Sleep(_) => f.next(Input::Woke),
                Action::Done(r) => {
                    assert_eq!(r, Ok(()));
                    break;
                }
            }
        }
        assert_eq!(f.slept(), SimTime::from_millis(1500));
        assert_eq!(f.calls(Call::Delete), 1);
    }
}
