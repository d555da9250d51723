//! A cluster's certificate objects as the apiserver stores them: CertificateSigningRequests
//! (istiod's RA) or cert-manager CertificateRequests (istio-csr), with their conditions,
//! `resourceVersion`, timestamps and who waits on a watch for them.
//!
//! Records live in reusable slots; a key is `(generation << 32) | slot`, so a key of a
//! deleted object never names its slot's next occupant. Counts by state are kept exact
//! on every write (the LIST widths and the time series read them, nothing scans).
//!
//! State as kubectl prints it (`pkg/printers/internalversion/printers.go`
//! `extractCSRStatus`): `Pending` (no condition), `Approved`, `Approved,Issued`,
//! `Approved,Failed`, `Denied`.

use crate::control::issuer::PcaCertificate;
use crate::control::signer::ObjectView;
use crate::engine::SimTime;

use super::ra::FlowRef;

/// An object's stable key (`gen << 32 | slot`).
pub type ObjKey = u64;

/// One CSR (or CR) record.
#[derive(Debug, Clone, Copy)]
pub struct Obj {
    gen: u32,
    live: bool,
    /// `Approved` condition.
    pub approved: bool,
    /// `Denied` condition.
    pub denied: bool,
    /// `Failed` condition (CR: Ready=False reason Failed).
    pub failed: bool,
    /// `status.certificate` is set.
    pub has_certificate: bool,
    /// CR: aws-privateca-issuer's certificate-ARN annotation.
    pub arn: Option<PcaCertificate>,
    /// `resourceVersion`.
    pub version: u64,
    /// `creationTimestamp`.
    pub created: SimTime,
    /// The last condition's `lastUpdateTime`.
    pub updated: SimTime,
    /// The RA or istio-csr flow waiting on a watch for it.
    pub waiter: Option<FlowRef>,
    /// The flow that created it still runs (it will delete it).
    pub owned: bool,
    /// An informer delivery is scheduled (deliveries coalesce: the informer sends the
    /// state at delivery time).
    pub informer_pending: bool,
}

/// The state kubectl would print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjState {
    /// No condition.
    Pending,
    /// Approved, no certificate, not Failed.
    Approved,
    /// Approved with a certificate.
    Issued,
    /// A Failed condition.
    Failed,
    /// Denied.
    Denied,
}

impl Obj {
    /// Its state.
    pub fn state(&self) -> ObjState {
        if self.denied {
            ObjState::Denied
        } else if self.failed {
            ObjState::Failed
        } else if self.has_certificate {
            ObjState::Issued
        } else if self.approved {
            ObjState::Approved
        } else {
            ObjState::Pending
        }
    }

    /// What an informer delivers.
    pub fn view(&self) -> ObjectView {
        ObjectView {
            approved: self.approved,
            denied: self.denied,
            failed: self.failed,
            has_certificate: self.has_certificate,
            arn: self.arn,
            version: self.version,
        }
    }
}

/// Objects by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Pending.
    pub pending: u64,
    /// Approved, not issued.
    pub approved: u64,
    /// Issued.
    pub issued: u64,
    /// Failed.
    pub failed: u64,
    /// Denied.
    pub denied: u64,
}

impl StateCounts {
    fn slot(&mut self, s: ObjState) -> &mut u64 {
        match s {
            ObjState::Pending => &mut self.pending,
            ObjState::Approved => &mut self.approved,
            ObjState::Issued => &mut self.issued,
            ObjState::Failed => &mut self.failed,
            ObjState::Denied => &mut self.denied,
        }
    }

    /// All objects.
    pub fn total(&self) -> u64 {
        self.pending + self.approved + self.issued + self.failed + self.denied
    }
}

/// A cluster's objects of one kind.
#[derive(Debug, Clone, Default)]
pub struct ObjectStore {
    slots: Vec<Obj>,
    free: Vec<u32>,
    counts: StateCounts,
    failed_peak: u64,
    next_version: u64,
}

impl ObjectStore {
    /// Creates an object now (Pending) and returns its key.
    pub fn create(&mut self, now: SimTime, owned: bool) -> ObjKey {
        self.next_version += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Obj {
                    gen: 0,
                    live: false,
                    approved: false,
                    denied: false,
                    failed: false,
                    has_certificate: false,
                    arn: None,
                    version: 0,
                    created: SimTime::ZERO,
                    updated: SimTime::ZERO,
                    waiter: None,
                    owned: false,
                    informer_pending: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let o = &mut self.slots[slot as usize];
        o.gen = o.gen.wrapping_add(1);
        *o = Obj {
            gen: o.gen,
            live: true,
            approved: false,
            denied: false,
            failed: false,
            has_certificate: false,
            arn: None,
            version: self.next_version,
            created: now,
            updated: now,
            waiter: None,
            owned,
            informer_pending: false,
        };
        self.counts.pending += 1;
        ((o.gen as u64) << 32) | slot as u64
    }

    /// The live object `key` names.
    pub fn get(&self, key: ObjKey) -> Option<&Obj> {
        self.slots
            .get(key as u32 as usize)
            .filter(|o| o.live && o.gen == (key >> 32) as u32)
    }

    fn get_mut(&mut self, key: ObjKey) -> Option<&mut Obj> {
        self.slots
            .get_mut(key as u32 as usize)
            .filter(|o| o.live && o.gen == (key >> 32) as u32)
    }

    /// The slot's record whatever its state (for the informer flag).
    pub fn slot_mut(&mut self, key: ObjKey) -> Option<&mut Obj> {
        self.slots.get_mut(key as u32 as usize)
    }

    /// Changes a live object with `f`, keeping counts and bumping `resourceVersion`.
    /// Returns false if it is gone. A write that changes nothing bumps nothing.
    pub fn update(&mut self, key: ObjKey, now: SimTime, f: impl FnOnce(&mut Obj)) -> bool {
        self.next_version += 1;
        let v = self.next_version;
        let Some(o) = self.get_mut(key) else {
            return false;
        };
        let before = *o;
        f(o);
        let changed = before.approved != o.approved
            || before.denied != o.denied
            || before.failed != o.failed
            || before.has_certificate != o.has_certificate
            || before.arn != o.arn;
        if changed {
            o.version = v;
            o.updated = now;
            let (was, is) = (before.state(), o.state());
            if was != is {
                *self.counts.slot(was) -= 1;
                *self.counts.slot(is) += 1;
                self.failed_peak = self.failed_peak.max(self.counts.failed);
            }
        }
        true
    }

    /// Sets fields that are not part of the object's API state (waiter, owner flag).
    pub fn annotate(&mut self, key: ObjKey, f: impl FnOnce(&mut Obj)) {
        if let Some(o) = self.get_mut(key) {
            f(o);
        }
    }

    /// Deletes it; returns the record if it was there.
    pub fn delete(&mut self, key: ObjKey) -> Option<Obj> {
        let o = self.get_mut(key)?;
        let copy = *o;
        o.live = false;
        o.waiter = None;
        *self.counts.slot(copy.state()) -= 1;
        self.free.push(key as u32);
        Some(copy)
    }

    /// Marks an informer delivery due for `key`; false if one is already scheduled
    /// (deliveries coalesce: the informer sends the state at delivery time).
    pub fn mark_informer_pending(&mut self, key: ObjKey) -> bool {
        match self.slots.get_mut(key as u32 as usize) {
            Some(o) if o.gen == (key >> 32) as u32 => {
                !std::mem::replace(&mut o.informer_pending, true)
            }
            _ => false,
        }
    }

    /// The delivery for `key` is due: its view if it is still there (`None`: deleted).
    pub fn take_informer_delivery(&mut self, key: ObjKey) -> Option<ObjectView> {
        let o = self.slots.get_mut(key as u32 as usize)?;
        if o.gen != (key >> 32) as u32 {
            return None; // deleted, the slot reused
        }
        o.informer_pending = false;
        o.live.then(|| o.view())
    }

    /// Counts by state.
    pub fn counts(&self) -> &StateCounts {
        &self.counts
    }

    /// The most Failed objects present at once.
    pub fn failed_peak(&self) -> u64 {
        self.failed_peak
    }

    /// Keys of live objects for which `pick` holds, in slot order.
    pub fn select(&self, mut pick: impl FnMut(&Obj) -> bool) -> Vec<ObjKey> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, o)| o.live && pick(o))
            .map(|(i, o)| ((o.gen as u64) << 32) | i as u64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_conditions_and_stale_keys_miss() {
        let mut s = ObjectStore::default();
        let t = SimTime::from_secs(1);
        let a = s.create(t, true);
        assert_eq!(s.counts().pending, 1);
        assert!(s.update(a, t, |o| o.approved = true));
        assert_eq!((s.counts().pending, s.counts().approved), (0, 1));
        let v = s.get(a).unwrap().version;
        assert!(s.update(a, t, |o| o.approved = true));
        assert_eq!(
            s.get(a).unwrap().version,
            v,
            "a no-op write changes nothing"
        );
        assert!(s.update(a, t, |o| o.failed = true));
        assert_eq!(s.get(a).unwrap().state(), ObjState::Failed);
        assert_eq!((s.counts().failed, s.failed_peak()), (1, 1));
        assert!(s.delete(a).is_some());
        assert_eq!(s.counts().total(), 0);
        let b = s.create(t, true);
        assert_eq!(b as u32, a as u32, "slot reused");
        assert!(s.get(a).is_none() && s.get(b).is_some());
        assert!(!s.update(a, t, |o| o.has_certificate = true));
    }
}
