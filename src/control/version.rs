//! Istio and Kubernetes release numbers, and the release boundaries the components
//! depend on.
//!
//! # Istio (`istiod.version`)
//! Accepted: `"1.MINOR.PATCH"` (a leading `v` and a pre-release suffix such as
//! `-rc.0` are allowed; the suffix is ignored), or a bare `"1.MINOR"`, which means "any
//! patch of that minor" and is accepted only where no behaviour modelled here changes
//! within the minor. **1.14 and 1.15 must carry their patch**: istiod's CSR watch timeout
//! went from 5 s to 60 s in the patch releases 1.14.6 and 1.15.4 (backports of
//! istio/istio#41649: 5edd832961f, 448e8ba93b8), so the wait for the signer is ~10 s on
//! 1.15.0-1.15.3 and ~65 s on 1.15.4+; a bare `"1.15"` is refused with a message asking
//! for the patch.
//!
//! The range is what was read in source (istio/istio tags 1.10.0 ... 1.30.3, and master
//! `86c9f01fd7` = the 1.31 pre-releases): minors below 10 and above 31 are refused.
//! 1.11 behaves as 1.10 on the CSR path (`git diff 1.10.6 1.11.8 --
//! security/pkg/k8s/chiron/utils.go` only adds the signer name; `security/pkg/pki/ra/k8s_ra.go`
//! still uses `certificates/v1beta1`), so it is accepted in group G0.
//!
//! # Kubernetes (`kubernetes.version`)
//! `"1.MINOR"` or `"1.MINOR.PATCH"`, minors 27 ... 36 (kubernetes/apiserver and
//! kubernetes/client-go tags v0.27.0 ... v0.36.0 were read); others are refused.

use std::fmt;

/// An Istio release, `1.minor[.patch]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IstioVersion {
    /// The minor release (10 ... 31).
    pub minor: u32,
    /// The patch; `None` for a bare minor (only where the patch does not matter).
    pub patch: Option<u32>,
}

/// istiod's Kubernetes-CSR RA flow groups (see [`crate::control::chiron`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChironGroup {
    /// 1.10.x-1.11.x: v1beta1 only, no defer, explicit Deletes (two on failure paths),
    /// a failed success-path Delete fails the request; 5 s watch + 10 Gets.
    G0,
    /// 1.12.x-1.13.x: deferred Delete, 3 Creates, 5 s watch (no List) + 10 Gets.
    G1,
    /// 1.14.0-1.14.5, 1.15.0-1.15.3: List then Watch (5 s) + 10 Gets.
    G2,
    /// 1.14.6, 1.15.4+, 1.16.x-1.18.x: List then Watch (60 s) + 10 Gets.
    G3,
    /// 1.19.x-1.25.x: one Create, List then Watch (60 s), no Gets; watcher never stopped.
    G4,
    /// 1.26.x-1.30.x: G4 plus `defer watcher.Stop()`.
    G5,
    /// 1.31 pre-releases / master: Watch first, then List, then wait (60 s).
    G6,
}

impl ChironGroup {
    /// `G0` ... `G6`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChironGroup::G0 => "G0",
            ChironGroup::G1 => "G1",
            ChironGroup::G2 => "G2",
            ChironGroup::G3 => "G3",
            ChironGroup::G4 => "G4",
            ChironGroup::G5 => "G5",
            ChironGroup::G6 => "G6",
        }
    }
}

/// Oldest and newest Istio minor read in source.
pub const ISTIO_MINOR_MIN: u32 = 10;
/// Newest Istio minor read (master at 86c9f01fd7 carries the 1.31 pre-releases).
pub const ISTIO_MINOR_MAX: u32 = 31;

impl IstioVersion {
    /// A release with a patch.
    pub const fn new(minor: u32, patch: u32) -> IstioVersion {
        IstioVersion {
            minor,
            patch: Some(patch),
        }
    }

    /// Parses `istiod.version`; the message says what is wrong and what to write.
    pub fn parse(text: &str) -> Result<IstioVersion, String> {
        let (major, minor, patch) = parse_release(text)?;
        if major != 1 {
            return Err(format!(
                "Istio version {text:?}: only 1.x releases exist, got major {major}"
            ));
        }
        if !(ISTIO_MINOR_MIN..=ISTIO_MINOR_MAX).contains(&minor) {
            return Err(format!(
                "Istio version {text:?}: no source was read for 1.{minor}; supported are 1.{ISTIO_MINOR_MIN} ... 1.{ISTIO_MINOR_MAX}"
            ));
        }
        if patch.is_none() && (minor == 14 || minor == 15) {
            let cut = if minor == 14 { 6 } else { 4 };
            return Err(format!(
                "Istio version {text:?} is ambiguous: istiod waits ~10 s for the signer on 1.{minor}.0-1.{minor}.{} and ~65 s from 1.{minor}.{cut} (the 60 s watch was backported); give the patch, e.g. \"1.{minor}.{}\" or \"1.{minor}.{cut}\"",
                cut - 1,
                cut - 1
            ));
        }
        Ok(IstioVersion { minor, patch })
    }

    /// The CSR RA flow group of this release.
    pub fn chiron_group(self) -> ChironGroup {
        let p = self.patch.unwrap_or(0);
        match self.minor {
            10 | 11 => ChironGroup::G0,
            12 | 13 => ChironGroup::G1,
            14 if p < 6 => ChironGroup::G2,
            15 if p < 4 => ChironGroup::G2,
            14..=18 => ChironGroup::G3,
            19..=25 => ChironGroup::G4,
            26..=30 => ChironGroup::G5,
            _ => ChironGroup::G6,
        }
    }

    /// Whether the sidecar injection template carries the startupProbe
    /// (`periodSeconds 1`, `failureThreshold 600`) by default: from 1.20.0
    /// (istio/istio 4a7831a2972, #47207).
    pub fn has_sidecar_startup_probe(self) -> bool {
        self.minor >= 20
    }

    /// Whether istio-agent jitters the rotation grace ratio (±0.01): from 1.24.0
    /// (istio/istio e023232ad20, #52102; absent in every 1.22.x and 1.23.x tag).
    pub fn has_rotation_jitter(self) -> bool {
        self.minor >= 24
    }

    /// Whether the agent's outer back-off turns into a flat 60 s after 15 minutes
    /// (Istio's `pkg/backoff` wrapper, from 1.16).
    pub fn has_flat_outer_backoff(self) -> bool {
        self.minor >= 16
    }

    /// istio-agent's CSR retry policy on this release: 5 calls 100 ms x 2^n ±10 %, then
    /// the outer 500 ms x 1.5 ±50 % capped at 60 s; flat 60 s after 15 min from 1.16.
    pub fn agent_backoff(self) -> crate::ca::retry::AgentBackoff {
        if self.has_flat_outer_backoff() {
            crate::ca::retry::AgentBackoff::with_flat_after_15_min()
        } else {
            crate::ca::retry::AgentBackoff::default()
        }
    }

    /// Whether the agent re-dials istiod after any CSR error (1.21+, e76467c1a99).
    pub fn reconnects_on_error(self) -> bool {
        self.minor >= 21
    }

    /// Whether the RA can work at all on Kubernetes `kube`: 1.10/1.11 use only the
    /// `certificates.k8s.io/v1beta1` CSR API, which Kubernetes removed in 1.22.
    pub fn check_kubernetes(self, kube: KubeVersion) -> Result<(), String> {
        if self.chiron_group() == ChironGroup::G0 && kube.minor >= 22 {
            return Err(format!(
                "Istio {self} cannot run its Kubernetes-CSR RA on Kubernetes {kube}: it uses only certificates.k8s.io/v1beta1, removed in Kubernetes 1.22 (every Create would return NotFound)"
            ));
        }
        Ok(())
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "1.{}.{}", self.minor, p),
            None => write!(f, "1.{}", self.minor),
        }
    }
}

/// A Kubernetes release (control plane or kubelet), `1.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// The minor release (27 ... 36).
    pub minor: u32,
}

/// Oldest Kubernetes minor read (kubernetes/apiserver v0.27.0).
pub const KUBE_MINOR_MIN: u32 = 27;
/// Newest Kubernetes minor read (v0.36.0).
pub const KUBE_MINOR_MAX: u32 = 36;

impl KubeVersion {
    /// A release by minor.
    pub const fn new(minor: u32) -> KubeVersion {
        KubeVersion { minor }
    }

    /// Parses `kubernetes.version` (`"1.29"` or `"1.29.3"`).
    pub fn parse(text: &str) -> Result<KubeVersion, String> {
        let (major, minor, _) = parse_release(text)?;
        if major != 1 || !(KUBE_MINOR_MIN..=KUBE_MINOR_MAX).contains(&minor) {
            return Err(format!(
                "Kubernetes version {text:?}: supported are 1.{KUBE_MINOR_MIN} ... 1.{KUBE_MINOR_MAX} (the releases read in source)"
            ));
        }
        Ok(KubeVersion { minor })
    }

    /// APF's Retry-After is the per-level dropped-requests tracker from 1.28
    /// (kubernetes/apiserver v0.28.0); 1.27 sends a fixed `Retry-After: 1`.
    pub fn has_dynamic_retry_after(self) -> bool {
        self.minor >= 28
    }

    /// The bootstrap FlowSchemas `endpoint-controller` and `workload-leader-election`
    /// exist up to 1.33 and are gone from 1.34 (kubernetes cd728bc91).
    pub fn has_legacy_leader_election_schemas(self) -> bool {
        self.minor <= 33
    }

    /// The kubelet's back-off entry expires after a fixed 600 s from 1.32 (its
    /// `HasExpiredFunc`); before, after 2 x the maximum (also 600 s with the defaults).
    pub fn kubelet_fixed_backoff_expiry(self) -> bool {
        self.minor >= 32
    }

    /// The `ReduceDefaultCrashLoopBackOffDecay` gate (KEP-4603, 1 s / 60 s) exists from 1.33
    /// (alpha, off by default).
    pub fn has_reduced_crashloop_gate(self) -> bool {
        self.minor >= 33
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

/// `[v]MAJOR.MINOR[.PATCH][-pre]` into numbers.
fn parse_release(text: &str) -> Result<(u32, u32, Option<u32>), String> {
    let t = text.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let core = t.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let num = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "version {text:?}: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. \"1.15.3\""
            ));
        }
        s.parse::<u32>()
            .map_err(|_| format!("version {text:?}: number out of range"))
    };
    match parts.as_slice() {
        [ma, mi] => Ok((num(ma)?, num(mi)?, None)),
        [ma, mi, pa] => Ok((num(ma)?, num(mi)?, Some(num(pa)?))),
        _ => Err(format!(
            "version {text:?}: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. \"1.15.3\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> ChironGroup {
        IstioVersion::parse(s).unwrap().chiron_group()
    }

    #[test]
    fn release_groups_follow_the_backports() {
        assert_eq!(g("1.10.6"), ChironGroup::G0);
        assert_eq!(g("1.11"), ChironGroup::G0);
        assert_eq!(g("1.12.9"), ChironGroup::G1);
        assert_eq!(g("1.13"), ChironGroup::G1);
        assert_eq!(g("1.14.0"), ChironGroup::G2);
        assert_eq!(g("1.14.5"), ChironGroup::G2);
        assert_eq!(g("1.14.6"), ChironGroup::G3);
        assert_eq!(g("1.15.0"), ChironGroup::G2);
        assert_eq!(g("1.15.3"), ChironGroup::G2);
        assert_eq!(g("1.15.4"), ChironGroup::G3);
        assert_eq!(g("1.15.0-rc.0"), ChironGroup::G2);
        assert_eq!(g("1.16"), ChironGroup::G3);
        assert_eq!(g("1.18.7"), ChironGroup::G3);
        assert_eq!(g("1.19.0"), ChironGroup::G4);
        assert_eq!(g("v1.22.3"), ChironGroup::G4);
        assert_eq!(g("1.25"), ChironGroup::G4);
        assert_eq!(g("1.26.0"), ChironGroup::G5);
        assert_eq!(g("1.30.3"), ChironGroup::G5);
        assert_eq!(g("1.31.0-rc.0"), ChironGroup::G6);
    }

    #[test]
    fn bare_1_14_and_1_15_are_refused_with_the_patch_boundary() {
        let e = IstioVersion::parse("1.15").unwrap_err();
        assert!(e.contains("1.15.3") && e.contains("1.15.4"), "{e}");
        let e = IstioVersion::parse("1.14").unwrap_err();
        assert!(e.contains("1.14.5") && e.contains("1.14.6"), "{e}");
    }

    #[test]
    fn versions_without_source_are_refused() {
        for bad in ["1.9.9", "1.32.0", "2.0.0", "1", "1.x", "", "1.15.3.1"] {
            assert!(IstioVersion::parse(bad).is_err(), "{bad}");
        }
        assert!(KubeVersion::parse("1.26").is_err());
        assert!(KubeVersion::parse("1.37").is_err());
        assert_eq!(KubeVersion::parse("1.29.3").unwrap().minor, 29);
    }

    #[test]
    fn istio_1_10_cannot_use_v1beta1_on_kubernetes_1_22_and_later() {
        let v = IstioVersion::parse("1.10.6").unwrap();
        let e = v.check_kubernetes(KubeVersion::new(29)).unwrap_err();
        assert!(e.contains("v1beta1"), "{e}");
        let v = IstioVersion::parse("1.12.9").unwrap();
        assert!(v.check_kubernetes(KubeVersion::new(29)).is_ok());
    }

    #[test]
    fn release_boundaries() {
        let v = |s| IstioVersion::parse(s).unwrap();
        assert!(!v("1.19.0").has_sidecar_startup_probe());
        assert!(v("1.20.0").has_sidecar_startup_probe());
        assert!(!v("1.23").has_rotation_jitter());
        assert_eq!(v("1.15.7").agent_backoff().flat_after, None);
        assert!(v("1.16.0").agent_backoff().flat_after.is_some());
        assert!(v("1.24.0").has_rotation_jitter());
        assert!(!KubeVersion::new(27).has_dynamic_retry_after());
        assert!(KubeVersion::new(28).has_dynamic_retry_after());
        assert!(KubeVersion::new(33).has_legacy_leader_election_schemas());
        assert!(!KubeVersion::new(34).has_legacy_leader_election_schemas());
    }
}
