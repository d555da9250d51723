//! The roles that draw random numbers in the fleet model: one stream per role and entity,
//! named by the rule of [`crate::engine::rng`] (`ROLE/ENTITY`).
//!
//! A new role (an apiserver's jitter, a signer's worker pick, certificate rotation) is a
//! variant here and its name; the component that draws builds its stream with
//! [`Role::stream`] from the names of what it belongs to.

use crate::engine::{rng, RngStream};

/// What a stream's draws are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A new node's launch-to-Ready time; entity: cluster, node group.
    NodeLaunch,
    /// The istiod replica an agent's request goes to; entity: cluster.
    IstiodPick,
    /// istio-agent's retry jitter; entity: cluster.
    AgentJitter,
    /// A CA's service times; entity: the CA.
    CaService,
    /// A signer's retry jitter (the AWS SDK's back-off); entity: cluster.
    SignerRetry,
    /// The kubelet's pod-worker requeue jitter; entity: cluster.
    KubeletSync,
    /// istio-agent's rotation grace-ratio jitter (1.24+); entity: cluster.
    RotationJitter,
    /// istiod's informers' reflector back-off jitter (client-go); entity: cluster.
    IstiodReflector,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::NodeLaunch,
        Role::IstiodPick,
        Role::AgentJitter,
        Role::CaService,
        Role::SignerRetry,
        Role::KubeletSync,
        Role::RotationJitter,
        Role::IstiodReflector,
    ];

    /// The role's part of a stream name.
    pub fn name(self) -> &'static str {
        match self {
            Role::NodeLaunch => "node-launch",
            Role::IstiodPick => "istiod-pick",
            Role::AgentJitter => "agent-jitter",
            Role::CaService => "ca-service",
            Role::SignerRetry => "signer-retry",
            Role::KubeletSync => "kubelet-sync",
            Role::RotationJitter => "rotation-jitter",
            Role::IstiodReflector => "istiod-reflector",
        }
    }

    /// The role's stream for `entity` (its scenario names, outermost first).
    pub fn stream(self, seed: u64, entity: &[&str]) -> RngStream {
        rng::role_stream(seed, self.name(), entity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn roles_have_distinct_kebab_case_names() {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{n}");
        }
    }

    #[test]
    fn streams_are_named_role_then_entity() {
        assert_eq!(
            rng::role_stream_name(Role::NodeLaunch.name(), &["payments", "apps"]),
            "node-launch/payments/apps"
        );
        let mut a = Role::AgentJitter.stream(1, &["payments"]);
        let mut b = rng::named_stream(1, "agent-jitter/payments");
        assert_eq!(a.next_u64(), b.next_u64());
        let mut c = Role::IstiodPick.stream(1, &["payments"]);
        assert_ne!(
            Role::AgentJitter.stream(1, &["payments"]).next_u64(),
            c.next_u64()
        );
    }
}
