//! The control plane on the certificate path, component by component, each built from
//! the real component's source (repository, path and tag in every module's docs and in
//! `docs/fidelity.md`).
//!
//! | module | real component |
//! |---|---|
//! | [`apiserver`] | kube-apiserver's API Priority and Fairness (APF): priority levels, seats, borrowing, queues, shuffle sharding, 429s, Retry-After, work estimates |
//! | [`client`] | client-go: the REST client's token bucket and its 429 retries, workqueues and their rate limiters, `flowcontrol.Backoff` |
//! | [`informers`] | istiod's start-up: the informers `/ready` waits for, client-go's reflector back-off, the readiness probe |
//! | [`chiron`] | istiod's Kubernetes-CSR RA flow (`security/pkg/k8s/chiron`) per Istio release group |
//! | [`kubelet`] | the kubelet's container restart back-off (CrashLoopBackOff) and the istio-proxy kill paths |
//! | [`rotation`] | istio-agent's certificate rotation time |
//! | [`signer`] | signer controllers: cert-manager's CSR controller, a controller-runtime CSR signer, istio-csr with aws-privateca-issuer |
//! | [`issuer`] | the CAs behind them: AWS Private CA, Google CAS, Vault, and the load-tested USL CA of [`crate::ca`] |
//! | [`version`] | Istio and Kubernetes release numbers, and which behaviour each release has |
//!
//! # Layering
//! These are model components like [`crate::ca`]: they depend only on [`crate::engine`]
//! (and `ca` for the `usl` issuer) and know nothing of the fleet, scenario files or
//! metrics. A component that needs time schedules its own event type through
//! [`Schedule`](crate::engine::Schedule); the owner wraps it in its event enum
//! (`impl From<ApiServerEvent> for Event`) and routes it back. Components report what
//! happened through an outcomes vector the owner passes in. Pure state machines
//! ([`chiron::ChironFlow`], [`kubelet::RestartBackoff`], [`rotation`]) schedule nothing:
//! they answer with the action to take and the owner keeps time.
//!
//! Randomness: a component that draws gets its own [`RngStream`](crate::engine::RngStream)
//! from the owner, one per role (e.g. `signer/{cluster}/workqueue-jitter`), never shared.
//! Nothing here iterates a `HashMap` or uses floats as keys.

pub mod apiserver;
pub mod certificates;
pub mod chiron;
pub mod client;
pub mod informers;
pub mod issuer;
pub mod kubelet;
pub mod rotation;
pub mod signer;
pub mod version;
