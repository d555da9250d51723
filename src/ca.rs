//! PLACEHOLDER (replaced by the real component from the `ca` branch): the interface the
//! fleet model is written against, with a plain FIFO c-server body.
#![allow(missing_docs)]

use std::collections::VecDeque;

use crate::engine::{rng, RngStream, Schedule, SimTime};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub rate_per_s: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usl {
    pub sigma: f64,
    pub kappa: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServiceTime {
    Exponential { mean: SimTime },
    Constant { value: SimTime },
    LogNormal { median: SimTime, p99: SimTime },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    Cancel,
    Keep,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaConfig {
    pub workers: u32,
    pub service: ServiceTime,
    pub rate_limit: Option<RateLimit>,
    pub usl: Usl,
    pub failed_object_slowdown: f64,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            workers: 16,
            service: ServiceTime::Exponential {
                mean: SimTime::from_millis(100),
            },
            rate_limit: None,
            usl: Usl {
                sigma: 0.0,
                kappa: 0.0,
            },
            failed_object_slowdown: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaEvent {
    pub ca: u32,
    pub kind: CaEventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaEventKind {
    Completion { slot: u32 },
    Deadline { request: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOutcome {
    Served {
        request: u64,
        submitted: SimTime,
        started: SimTime,
        late: bool,
    },
    TimedOut {
        request: u64,
        in_service: bool,
    },
    Reneged {
        request: u64,
    },
}

struct Req {
    id: u64,
    submitted: SimTime,
    deadline: SimTime,
}

pub struct CertificateAuthority {
    index: u32,
    config: CaConfig,
    rng: RngStream,
    queue: VecDeque<Req>,
    busy: Vec<Option<(Req, SimTime)>>,
    in_service: u32,
    failed_objects: u64,
    capacity_fraction: f64,
    pub served: u64,
}

impl CertificateAuthority {
    pub fn new(index: u32, config: CaConfig, rng: RngStream) -> Self {
        let busy = (0..config.workers).map(|_| None).collect();
        CertificateAuthority {
            index,
            config,
            rng,
            queue: VecDeque::new(),
            busy,
            in_service: 0,
            failed_objects: 0,
            capacity_fraction: 1.0,
            served: 0,
        }
    }

    pub fn busy_worker_seconds(&self, _now: SimTime) -> f64 {
        0.0
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn in_service(&self) -> u32 {
        self.in_service
    }

    pub fn workers(&self) -> u32 {
        self.config.workers
    }

    pub fn submit(
        &mut self,
        request: u64,
        deadline: Option<SimTime>,
        _on_timeout: OnTimeout,
        sched: &mut impl Schedule<CaEvent>,
    ) {
        let now = sched.now();
        let deadline = deadline.unwrap_or(SimTime::MAX);
        if deadline != SimTime::MAX {
            sched.schedule_at(
                deadline,
                CaEvent {
                    ca: self.index,
                    kind: CaEventKind::Deadline { request },
                },
            );
        }
        self.queue.push_back(Req {
            id: request,
            submitted: now,
            deadline,
        });
        self.dispatch(sched);
    }

    fn service_time(&mut self) -> SimTime {
        let base = match self.config.service {
            ServiceTime::Exponential { mean } => {
                mean.mul_f64(-(1.0 - rng::unit_f64(&mut self.rng)).ln())
            }
            ServiceTime::Constant { value } => value,
            ServiceTime::LogNormal { median, .. } => median,
        };
        let n = self.in_service as f64;
        let usl = 1.0
            + self.config.usl.sigma * (n - 1.0).max(0.0)
            + self.config.usl.kappa * n * (n - 1.0).max(0.0);
        base.mul_f64(usl * (1.0 + self.config.failed_object_slowdown * self.failed_objects as f64))
    }

    fn dispatch(&mut self, sched: &mut impl Schedule<CaEvent>) {
        let limit = (self.config.workers as f64 * self.capacity_fraction).floor() as u32;
        while self.in_service < limit {
            let Some(req) = self.queue.pop_front() else {
                return;
            };
            let slot = self
                .busy
                .iter()
                .position(|b| b.is_none())
                .expect("free worker");
            self.in_service += 1;
            let st = self.service_time();
            self.busy[slot] = Some((req, sched.now()));
            sched.schedule_in(
                st,
                CaEvent {
                    ca: self.index,
                    kind: CaEventKind::Completion { slot: slot as u32 },
                },
            );
        }
    }

    pub fn handle(
        &mut self,
        kind: CaEventKind,
        sched: &mut impl Schedule<CaEvent>,
        out: &mut Vec<CaOutcome>,
    ) {
        match kind {
            CaEventKind::Completion { slot } => {
                let Some((req, started)) = self.busy[slot as usize].take() else {
                    return;
                };
                self.in_service -= 1;
                self.served += 1;
                out.push(CaOutcome::Served {
                    request: req.id,
                    submitted: req.submitted,
                    started,
                    late: sched.now() > req.deadline,
                });
                self.dispatch(sched);
            }
            CaEventKind::Deadline { request } => {
                let queued = self.queue.iter().any(|r| r.id == request);
                let in_service = self.busy.iter().flatten().any(|(r, _)| r.id == request);
                if queued || in_service {
                    out.push(CaOutcome::TimedOut {
                        request,
                        in_service,
                    });
                }
            }
        }
    }

    /// Removes a request wherever it is (queue or service); its work so far is wasted.
    /// Returns whether it was present.
    pub fn withdraw(&mut self, request: u64, sched: &mut impl Schedule<CaEvent>) -> bool {
        if let Some(pos) = self.queue.iter().position(|r| r.id == request) {
            self.queue.remove(pos);
            return true;
        }
        if let Some(slot) = self
            .busy
            .iter()
            .position(|b| b.as_ref().is_some_and(|(r, _)| r.id == request))
        {
            self.busy[slot] = None;
            self.in_service -= 1;
            self.dispatch(sched);
            return true;
        }
        false
    }

    pub fn set_failed_objects(&mut self, n: u64, _sched: &mut impl Schedule<CaEvent>) {
        self.failed_objects = n;
    }

    pub fn set_workers(&mut self, n: u32, sched: &mut impl Schedule<CaEvent>) {
        self.config.workers = n;
        while self.busy.len() < n as usize {
            self.busy.push(None);
        }
        self.dispatch(sched);
    }

    pub fn set_rate_limit(&mut self, r: Option<RateLimit>, _sched: &mut impl Schedule<CaEvent>) {
        self.config.rate_limit = r;
    }
}
