//! `fleetsim import`: a cluster as `kubectl get -o json` lists it -> scenario text.
//!
//! The input of one cluster is the `v1 List` that
//! `kubectl get nodes,deployments,statefulsets,daemonsets,poddisruptionbudgets,namespaces,horizontalpodautoscalers -A -o json`
//! writes. What becomes of it:
//!
//! - **Node groups**: nodes by `eks.amazonaws.com/nodegroup` (an EKS managed node
//!   group), else `karpenter.sh/nodepool` (a Karpenter pool: `strategy = "karpenter"`),
//!   else one group `ungrouped` that is not upgraded (self-managed nodes, Fargate).
//!   `nodes` counts them; `max_pods` is the most common `status.allocatable.pods`; `azs`
//!   the distinct `topology.kubernetes.io/zone`s; `ami` the most common
//!   `eks.amazonaws.com/nodegroup-image` label, else `status.nodeInfo.osImage`.
//! - **Workloads**: each Deployment and StatefulSet with its replicas (none with 0
//!   replicas: the scenario needs >= 1); each DaemonSet as one pinned workload per node
//!   group it runs in, one replica per node it can run on (node selector, required node
//!   affinity, taints and tolerations), without a PDB (drains skip DaemonSet pods). A
//!   workload whose pods can run in exactly one of several node groups is pinned to it
//!   (`node_group`).
//! - **Sidecar injection** as Istio's webhook and injector decide: never in
//!   `kube-system`/`kube-public` nor with `hostNetwork`; not when the pod template says
//!   `sidecar.istio.io/inject: "false"` (label or annotation) or the namespace has
//!   `istio-injection=disabled`; yes when the namespace has `istio-injection=enabled` or
//!   an `istio.io/rev` label, or the pod template has the label
//!   `sidecar.istio.io/inject: "true"` or `istio.io/rev`.
//! - **PDBs**, matched to workloads by selector in their namespace, as the number of
//!   pods that may be unavailable (`maxUnavailable`, or replicas - `minAvailable`;
//!   percentages rounded up, as the disruption controller does). Several PDBs over one
//!   pod block its eviction (the eviction API refuses it): `pdb_max_unavailable = 0`.
//! - **istiod** (a Deployment running the `pilot` image): replicas, the HPA's range, its
//!   node group and PDB, the Istio release from the image tag, the CA mode from
//!   `EXTERNAL_CA` / `CA_ADDR` / an istio-csr Deployment, the signer from `K8S_SIGNER`;
//!   these control-plane keys go through [`control_plane_keys`].
//! - **One CA per cluster**, its capacity left at the documented defaults (nothing in
//!   kubectl's output says how fast the CA signs; `fleetsim ca fit` does).
//!
//! Every value written carries a comment naming where it came from. Objects of other
//! kinds, and malformed objects, are skipped with a warning naming them; input that is
//! not JSON or not a List is an [`ImportError`] naming the file and the object.

mod kube;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;

use serde_json::Value;

use crate::scenario;
use kube::{clean, describe, Hpa, Labels, Namespace, Node, Pdb, Workload, WorkloadKind};

/// The largest input read (256 MiB): a bigger file or stream is refused.
pub const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Whether the control-plane keys (`istiod.version`, `istiod.ca_mode`, `[signer] kind`,
/// `kubernetes.version`) are written as keys (`true`) or as comments (`false`, while
/// the scenario schema lacks them).
pub const EMIT_CONTROL_PLANE_KEYS: bool = true;

/// Labels naming a node's group.
const EKS_NODEGROUP: &str = "eks.amazonaws.com/nodegroup";
const EKS_IMAGE: &str = "eks.amazonaws.com/nodegroup-image";
const KARPENTER_POOL: &str = "karpenter.sh/nodepool";
/// Karpenter before v1beta1 (`v1alpha5` Provisioners).
const KARPENTER_PROVISIONER: &str = "karpenter.sh/provisioner-name";
const ZONE: &str = "topology.kubernetes.io/zone";
const ZONE_BETA: &str = "failure-domain.beta.kubernetes.io/zone";
const INJECT: &str = "sidecar.istio.io/inject";
const REV: &str = "istio.io/rev";
const MAX_NAME: usize = 100;

/// Input that cannot be imported: not JSON, not a List, too large, unreadable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ImportError {
    /// The file as the user named it (`-` is stdin).
    pub file: String,
    /// What is wrong, naming the object where there is one.
    pub message: String,
}

/// One cluster's input.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file as named (`-`: stdin).
    pub file: String,
    /// The cluster's name in the scenario (sanitised by [`import`]).
    pub cluster: String,
    /// The file's bytes (see [`read_limited`]).
    pub bytes: Vec<u8>,
}

/// What was imported of one cluster, for the summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    /// The cluster's table name.
    pub name: String,
    /// Nodes over all node groups.
    pub nodes: u64,
    /// Node groups.
    pub node_groups: usize,
    /// Workload pods (Deployments, StatefulSets, DaemonSets; istiod apart).
    pub pods: u64,
    /// Workloads with a PDB.
    pub pdbs: usize,
    /// istiod replicas.
    pub istiod_replicas: u32,
}

/// The scenario text and what the import noticed.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The scenario, TOML with comments.
    pub text: String,
    /// One line each: objects skipped, values guessed.
    pub warnings: Vec<String>,
    /// One per cluster, in order.
    pub clusters: Vec<ClusterSummary>,
}

/// Reads at most [`MAX_INPUT_BYTES`] from `reader`; more is an error, never read to the
/// end.
pub fn read_limited(reader: impl Read, file: &str) -> Result<Vec<u8>, ImportError> {
    read_limited_to(reader, file, MAX_INPUT_BYTES)
}

fn read_limited_to(reader: impl Read, file: &str, limit: u64) -> Result<Vec<u8>, ImportError> {
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImportError {
            file: file.into(),
            message: format!("cannot read: {e}"),
        })?;
    if bytes.len() as u64 > limit {
        return Err(ImportError {
            file: file.into(),
            message: format!("input is larger than {limit} bytes; import reads at most that much"),
        });
    }
    Ok(bytes)
}

/// The items of a `v1 List`; anything else is an error naming the file and the object.
pub fn list_items(file: &str, bytes: &[u8]) -> Result<Vec<Value>, ImportError> {
    let err = |message: String| ImportError {
        file: file.into(),
        message,
    };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        err(format!(
            "not JSON ({e}); expected the output of `kubectl get ... -o json`"
        ))
    })?;
    let Value::Object(top) = &doc else {
        return Err(err(format!(
            "not a v1 List: the document is {}, not an object",
            match doc {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )));
    };
    let kind = top.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "List" && !(kind.ends_with("List") && kind.len() > 4) {
        return Err(err(format!(
            "not a v1 List: the document is {} (`kubectl get KINDS -A -o json` writes a List)",
            if kind.is_empty() {
                "an object without a kind".to_string()
            } else {
                describe(&doc)
            }
        )));
    }
    match top.get("items") {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(_) => Err(err(format!("{}: items is not an array", clean(kind)))),
    }
}

/// Sanitises a name for a scenario table key: letters, digits, `-` and `_`, at most 100
/// characters.
pub fn table_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    if out.is_empty() {
        out.push_str("unnamed");
    }
    out
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unique table names within one scope.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn unique(&mut self, wanted: &str) -> String {
        let base = table_name(wanted);
        let mut name = base.clone();
        let mut i = 2;
        while self.0.contains(&name) {
            let suffix = format!("-{i}");
            let keep = base.len().min(MAX_NAME - suffix.len());
            name = format!("{}{suffix}", &base[..keep]);
            i += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

// ---------------------------------------------------------------------------------------
// One cluster's objects.

#[derive(Default)]
struct Objects {
    nodes: Vec<Node>,
    workloads: Vec<Workload>,
    namespaces: BTreeMap<String, Labels>,
    saw_namespaces: bool,
    pdbs: Vec<Pdb>,
    hpas: Vec<Hpa>,
}

fn objects(file: &str, items: &[Value], warnings: &mut Vec<String>) -> Objects {
    let mut o = Objects::default();
    for (i, item) in items.iter().enumerate() {
        let what = || format!("{file}: items[{i}] ({})", describe(item));
        if !item.is_object() {
            warnings.push(format!("{file}: items[{i}]: not an object; skipped"));
            continue;
        }
        let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
        let parsed: Result<(), String> = match kind {
            "Node" => Node::parse(item).map(|n| o.nodes.push(n)),
            "Deployment" | "StatefulSet" | "DaemonSet" => {
                let k = match kind {
                    "Deployment" => WorkloadKind::Deployment,
                    "StatefulSet" => WorkloadKind::StatefulSet,
                    _ => WorkloadKind::DaemonSet,
                };
                Workload::parse(k, item).map(|w| o.workloads.push(w))
            }
            "Namespace" => Namespace::parse(item).map(|n| {
                o.saw_namespaces = true;
                o.namespaces.insert(n.name, n.labels);
            }),
            "PodDisruptionBudget" => Pdb::parse(item).map(|p| o.pdbs.push(p)),
            "HorizontalPodAutoscaler" => Hpa::parse(item).map(|h| o.hpas.push(h)),
            "" => Err("no kind".into()),
            other => {
                warnings.push(format!(
                    "{}: kind {} is not used by import; skipped",
                    what(),
                    clean(other)
                ));
                continue;
            }
        };
        if let Err(problem) = parsed {
            warnings.push(format!("{}: {problem}; skipped", what()));
        }
    }
    o
}

// ---------------------------------------------------------------------------------------
// Node groups.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKind {
    Eks,
    Karpenter,
    Ungrouped,
}

struct Group {
    kind: GroupKind,
    /// The label value (or `ungrouped`).
    label: String,
    name: String,
    nodes: Vec<usize>,
}

fn group_of(n: &Node) -> (GroupKind, String) {
    if let Some(g) = n.labels.get(EKS_NODEGROUP) {
        (GroupKind::Eks, g.clone())
    } else if let Some(p) = n
        .labels
        .get(KARPENTER_POOL)
        .or_else(|| n.labels.get(KARPENTER_PROVISIONER))
    {
        (GroupKind::Karpenter, p.clone())
    } else {
        (GroupKind::Ungrouped, "ungrouped".into())
    }
}

fn groups(nodes: &[Node]) -> Vec<Group> {
    let mut by_key: BTreeMap<(GroupKind, String), Vec<usize>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        by_key.entry(group_of(n)).or_default().push(i);
    }
    let mut names = Names::default();
    by_key
        .into_iter()
        .map(|((kind, label), nodes)| Group {
            name: names.unique(&label),
            kind,
            label,
            nodes,
        })
        .collect()
}

/// The most common value and how many have it (ties: the smallest), with the others.
fn mode<T: Ord + Clone>(values: impl IntoIterator<Item = T>) -> Option<(T, usize, Vec<T>)> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let (best, n) = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(v, n)| (v.clone(), *n))?;
    let others = counts.into_keys().filter(|v| *v != best).collect();
    Some((best, n, others))
}

// ---------------------------------------------------------------------------------------
// Injection.

/// Whether Istio injects a sidecar into pods of `w` in a namespace with `ns` labels
/// (`None`: the namespace was not in the input), and why.
fn injection(w: &Workload, ns: Option<&Labels>) -> (bool, String) {
    let t = &w.template;
    let ns_name = clean(&w.namespace);
    if matches!(w.namespace.as_str(), "kube-system" | "kube-public") {
        return (
            false,
            format!("namespace {ns_name}: the injector ignores it"),
        );
    }
    if t.host_network {
        return (false, "hostNetwork pods are never injected".into());
    }
    for (what, map) in [("label", &t.labels), ("annotation", &t.annotations)] {
        if map.get(INJECT).is_some_and(|v| v == "false") {
            return (false, format!("pod template {what} {INJECT}: \"false\""));
        }
    }
    let empty = Labels::new();
    let labels = ns.unwrap_or(&empty);
    match labels.get("istio-injection").map(String::as_str) {
        Some("enabled") => {
            return (
                true,
                format!("namespace {ns_name} label istio-injection=enabled"),
            )
        }
        Some(other) => {
            return (
                false,
                format!("namespace {ns_name} label istio-injection={}", clean(other)),
            )
        }
        None => {}
    }
    if let Some(rev) = labels.get(REV) {
        return (
            true,
            format!("namespace {ns_name} label {REV}={}", clean(rev)),
        );
    }
    if t.labels.get(INJECT).is_some_and(|v| v == "true") {
        return (true, format!("pod template label {INJECT}: \"true\""));
    }
    if let Some(rev) = t.labels.get(REV) {
        return (true, format!("pod template label {REV}={}", clean(rev)));
    }
    let unknown = if ns.is_none() {
        " (the Namespace is not in the input)"
    } else {
        ""
    };
    let annotation = if t.annotations.get(INJECT).is_some_and(|v| v == "true") {
        format!("; the annotation {INJECT}: \"true\" alone does not select the webhook")
    } else {
        String::new()
    };
    (
        false,
        format!("namespace {ns_name} has no injection label{unknown}{annotation}"),
    )
}

// ---------------------------------------------------------------------------------------
// istiod and the CA path.

/// The control plane as found, each value with its source.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ControlPlane {
    /// `[cluster.X.istiod] version`.
    pub istio_version: Option<(String, String)>,
    /// `[cluster.X.istiod] ca_mode`.
    pub ca_mode: Option<(String, String)>,
    /// `[cluster.X.istiod] pilot_cert_provider` (only when not the default).
    pub pilot_cert_provider: Option<(String, String)>,
    /// `[cluster.X.signer] kind`.
    pub signer: Option<(String, String)>,
    /// `[cluster.X.kubernetes] version`.
    pub kubernetes_version: Option<(String, String)>,
}

/// The tables holding control-plane keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CpTable {
    /// Inside `[cluster.X.istiod]`: `version`, `ca_mode`.
    Istiod,
    /// `[cluster.X.signer]` with `kind` (the table header included).
    Signer,
    /// Inside `[cluster.X.kubernetes]`: `version`.
    Kubernetes,
}

/// The lines of the control-plane keys of `table`: keys when `emit`
/// ([`EMIT_CONTROL_PLANE_KEYS`]), else the same lines commented out, saying what the
/// schema needs first. The only place these keys are written.
pub(crate) fn control_plane_keys(
    table: CpTable,
    cp: &ControlPlane,
    cluster: &str,
    emit: bool,
) -> String {
    let mut out = String::new();
    let key = |out: &mut String, name: &str, path: &str, v: &Option<(String, String)>| {
        let Some((value, source)) = v else { return };
        if emit {
            let _ = writeln!(out, "{name} = {}  # {source}", toml_str(value));
        } else {
            let _ = writeln!(
                out,
                "# {name} = {}  # {source} (enable once the schema has {path})",
                toml_str(value)
            );
        }
    };
    match table {
        CpTable::Istiod => {
            key(&mut out, "version", "istiod.version", &cp.istio_version);
            key(&mut out, "ca_mode", "istiod.ca_mode", &cp.ca_mode);
            key(
                &mut out,
                "pilot_cert_provider",
                "istiod.pilot_cert_provider",
                &cp.pilot_cert_provider,
            );
        }
        CpTable::Signer => {
            if cp.signer.is_some() {
                let header = format!("[cluster.{cluster}.signer]");
                if emit {
                    let _ = writeln!(out, "\n{header}");
                } else {
                    let _ = writeln!(out, "\n# {header}");
                }
                key(&mut out, "kind", "signer.kind", &cp.signer);
            }
        }
        CpTable::Kubernetes => {
            key(
                &mut out,
                "version",
                "kubernetes.version",
                &cp.kubernetes_version,
            );
        }
    }
    out
}

/// Whether a container image is Istio's pilot (istiod): `.../pilot:TAG`.
fn is_pilot(image: &str) -> bool {
    image_repo(image).rsplit('/').next() == Some("pilot")
}

/// The image without its tag or digest.
fn image_repo(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The Istio release of an image tag: `1.20.3`, `1.20.3-distroless` -> `1.20.3`.
fn istio_release(image: &str) -> Option<String> {
    let repo = image_repo(image);
    let tag = image.get(repo.len()..)?.strip_prefix(':')?;
    let tag = tag.split('@').next()?;
    let version = tag.split('-').next()?;
    let parts: Vec<&str> = version.split('.').collect();
    (parts.len() >= 2
        && parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then(|| version.to_string())
}

fn is_istiod(w: &Workload) -> bool {
    w.kind == WorkloadKind::Deployment && w.template.containers.iter().any(|c| is_pilot(&c.image))
}

fn image_has(w: &Workload, needle: &str) -> bool {
    w.name.contains(needle)
        || w.template
            .containers
            .iter()
            .any(|c| c.image.contains(needle))
}

/// `1.29` of `v1.29.3-eks-ae9a62a`.
fn minor_version(kubelet: &str) -> Option<String> {
    let v = kubelet.strip_prefix('v').unwrap_or(kubelet);
    let mut parts = v.split('.');
    let major = parts.next()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && !minor.is_empty())
        .then(|| format!("{major}.{minor}"))
}

// ---------------------------------------------------------------------------------------
// The cluster.

struct Emitted {
    text: String,
    summary: ClusterSummary,
    /// The cluster runs istio-csr with aws-privateca-issuer: its CA is AWS Private CA.
    pca: bool,
}

/// Which node groups a template's pods can run in, and the nodes in each.
fn placement(t: &kube::PodTemplate, nodes: &[Node], groups: &[Group]) -> Vec<(usize, u32)> {
    groups
        .iter()
        .enumerate()
        .filter_map(|(g, group)| {
            let n = group.nodes.iter().filter(|&&i| t.fits(&nodes[i])).count() as u32;
            (n > 0).then_some((g, n))
        })
        .collect()
}

/// The `node_group` line (or a comment) for pods placed in `fit`.
fn pin_line(
    who: &str,
    fit: &[(usize, u32)],
    groups: &[Group],
    warnings: &mut Vec<String>,
    file: &str,
) -> String {
    match fit {
        [] => {
            warnings.push(format!(
                "{file}: {who}: no node can run its pods (node selector, affinity or taints); not pinned"
            ));
            "# node_group: no node can run its pods (node selector, affinity or taints): not pinned\n"
                .into()
        }
        [(g, _)] if groups.len() > 1 => format!(
            "node_group = {}  # its pods can run only in this group (node selector, affinity, taints)\n",
            toml_str(&groups[*g].name)
        ),
        _ if fit.len() == groups.len() => String::new(),
        _ => {
            let names: Vec<&str> = fit.iter().map(|(g, _)| groups[*g].name.as_str()).collect();
            format!(
                "# node_group: its pods can run in {} (a scenario pins to one group): not pinned\n",
                names.join(", ")
            )
        }
    }
}

fn cluster(
    source: &Source,
    cluster: &str,
    ca: &str,
    o: &Objects,
    emit_control_plane: bool,
    warnings: &mut Vec<String>,
) -> Result<Emitted, ImportError> {
    let file = source.file.as_str();
    if o.nodes.is_empty() {
        return Err(ImportError {
            file: file.into(),
            message: "no Node in the List: list nodes too (`kubectl get nodes,deployments,statefulsets,daemonsets,poddisruptionbudgets,namespaces,horizontalpodautoscalers -A -o json`)".into(),
        });
    }
    if !o.saw_namespaces {
        warnings.push(format!(
            "{file}: no Namespace in the List: injection by namespace label is unknown (taken as none)"
        ));
    }
    let mut out = String::new();
    let groups = groups(&o.nodes);

    // istiod: the Deployment named istiod in istio-system if there is one, else the first.
    let istiods: Vec<usize> = (0..o.workloads.len())
        .filter(|&i| is_istiod(&o.workloads[i]))
        .collect();
    let istiod = istiods
        .iter()
        .copied()
        .find(|&i| o.workloads[i].name == "istiod" && o.workloads[i].namespace == "istio-system")
        .or(istiods.first().copied());
    if istiods.len() > 1 {
        warnings.push(format!(
            "{file}: {} istiod Deployments (revisions?): {} is istiod, the others are plain workloads",
            istiods.len(),
            o.workloads[istiod.unwrap_or(0)].id()
        ));
    }
    let istio_csr = o
        .workloads
        .iter()
        .find(|w| w.kind == WorkloadKind::Deployment && image_has(w, "istio-csr"));
    let mut istio_csr_replicas: Option<(u32, String)> = None;
    let cert_manager = o.workloads.iter().find(|w| {
        w.kind == WorkloadKind::Deployment
            && w.template
                .containers
                .iter()
                .any(|c| c.image.contains("cert-manager-controller"))
    });

    let nodes_total = o.nodes.len() as u64;
    let _ = writeln!(
        out,
        "\n# Cluster {} from {}: {} nodes in {} node groups.",
        cluster,
        clean(file),
        nodes_total,
        groups.len()
    );
    let _ = writeln!(out, "[cluster.{cluster}]");
    let _ = writeln!(
        out,
        "ca = {}  # the CA of this cluster's istiod (one per imported cluster; point clusters that share a CA at one table)",
        toml_str(ca)
    );

    // --- istiod.
    let mut cp = ControlPlane::default();
    let _ = writeln!(out, "\n[cluster.{cluster}.istiod]");
    let mut istiod_replicas = 1;
    let mut pdb_ids: BTreeSet<String> = BTreeSet::new();
    let mut istiod_pdb = false;
    match istiod.map(|i| &o.workloads[i]) {
        None => {
            warnings.push(format!(
                "{file}: no istiod Deployment (an image named pilot): istiod keeps the scenario defaults"
            ));
            let _ = writeln!(
                out,
                "# No istiod Deployment (an image named pilot) in the input: the documented defaults apply."
            );
        }
        Some(w) => {
            let replicas = w.replicas.unwrap_or(1);
            let hpa = o.hpas.iter().find(|h| {
                h.namespace == w.namespace
                    && h.target_kind == "Deployment"
                    && h.target_name == w.name
            });
            let hpa_note = hpa.map_or(String::new(), |h| {
                format!(
                    "; HorizontalPodAutoscaler {}/{}: minReplicas {}, maxReplicas {}",
                    clean(&h.namespace),
                    clean(&h.name),
                    h.min,
                    h.max
                )
            });
            istiod_replicas = replicas.clamp(1, 1000);
            let given = if w.replicas_given {
                "spec.replicas"
            } else {
                "spec.replicas absent, the API default"
            };
            let _ = writeln!(
                out,
                "replicas = {istiod_replicas}  # {} {given}{hpa_note}{}",
                w.id(),
                if istiod_replicas != replicas {
                    format!(" ({replicas}, clamped to 1..=1000)")
                } else {
                    String::new()
                }
            );
            let covering: Vec<&Pdb> = o
                .pdbs
                .iter()
                .filter(|p| {
                    p.namespace == w.namespace
                        && p.selector
                            .as_ref()
                            .is_some_and(|s| s.matches(&w.template.labels))
                })
                .collect();
            istiod_pdb = !covering.is_empty();
            match covering.first() {
                Some(p) => {
                    pdb_ids.insert(p.id());
                    let _ = writeln!(
                        out,
                        "pdb = true  # PodDisruptionBudget {} ({}) selects istiod's pods; the model keeps minAvailable 1",
                        p.id(),
                        p.rule()
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "pdb = false  # no PodDisruptionBudget selects istiod's pods"
                    );
                }
            }
            let fit = placement(&w.template, &o.nodes, &groups);
            out.push_str(&pin_line(&w.id(), &fit, &groups, warnings, file));

            let discovery = w
                .template
                .containers
                .iter()
                .find(|c| is_pilot(&c.image))
                .expect("an istiod has a pilot container");
            let env = |k: &str| {
                discovery
                    .env
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
            };
            cp.istio_version = match istio_release(&discovery.image) {
                Some(v) => Some((v, format!("from image {}", clean(&discovery.image)))),
                None => {
                    warnings.push(format!(
                        "{file}: {}: no Istio release in the image tag {}",
                        w.id(),
                        clean(&discovery.image)
                    ));
                    None
                }
            };
            let external_ca = env("EXTERNAL_CA");
            let ca_addr = env("CA_ADDR");
            let k8s_signer = env("K8S_SIGNER");
            cp.ca_mode = Some(if external_ca == Some("ISTIOD_RA_KUBERNETES_API") {
                (
                    "kubernetes-ra".into(),
                    "from istiod env EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API".into(),
                )
            } else if let Some(addr) = ca_addr.filter(|a| a.contains("istio-csr")) {
                (
                    "istio-csr".into(),
                    format!("from istiod env CA_ADDR={}", clean(addr)),
                )
            } else if let Some(csr) = istio_csr {
                ("istio-csr".into(), format!("{} is present", csr.id()))
            } else {
                (
                    "istiod".into(),
                    "no EXTERNAL_CA or istio-csr CA_ADDR in istiod's env, no istio-csr: istiod's own CA".into(),
                )
            });
            // istiod's own certificate: through the CSR API only as an RA with a signer
            // (certcontroller.go); the chart's default `istiod` needs no key.
            let ra = cp.ca_mode.as_ref().is_some_and(|m| m.0 == "kubernetes-ra");
            cp.pilot_cert_provider = match env("PILOT_CERT_PROVIDER") {
                None | Some("istiod") => None,
                Some(v) if ra && v.len() > "k8s.io/".len() && v.starts_with("k8s.io/") => Some((
                    v.to_string(),
                    "from istiod env PILOT_CERT_PROVIDER (istiod's own certificate through the CSR API)".into(),
                )),
                Some(v) => {
                    warnings.push(format!(
                        "{file}: {}: PILOT_CERT_PROVIDER={} is not modelled{}: imported as istiod's own CA",
                        w.id(),
                        clean(v),
                        if ra { "" } else { " without EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API" }
                    ));
                    None
                }
            };
            cp.signer = match cp.ca_mode.as_ref().map(|m| m.0.as_str()) {
                Some("kubernetes-ra") => match k8s_signer {
                    // cert-manager's signer names: `issuers.cert-manager.io/NS.NAME`,
                    // `clusterissuers.cert-manager.io/NAME`, and external issuers'
                    // (`awspcaclusterissuers.awspca.cert-manager.io/NAME`).
                    Some(s)
                        if s
                            .split('/')
                            .next()
                            .is_some_and(|d| d.ends_with(".cert-manager.io")) =>
                    {
                        Some((
                            "cert-manager".into(),
                            format!(
                                "from istiod env K8S_SIGNER={}{}{}",
                                clean(s),
                                if s.contains("awspca") {
                                    " (an AWS Private CA issuer behind cert-manager's CSR controller)"
                                } else {
                                    ""
                                },
                                cert_manager.map_or(
                                    "; no cert-manager Deployment in the input".to_string(),
                                    |c| format!(", signed by {}", c.id())
                                )
                            ),
                        ))
                    }
                    Some(s) => Some((
                        "controller-runtime".into(),
                        format!(
                            "from istiod env K8S_SIGNER={} (not cert-manager's: a signer controller)",
                            clean(s)
                        ),
                    )),
                    None => {
                        warnings.push(format!(
                            "{file}: {}: EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API without K8S_SIGNER: the signer is unknown",
                            w.id()
                        ));
                        None
                    }
                },
                Some("istio-csr") => Some((
                    "istio-csr".into(),
                    format!(
                        "istio-csr signs through cert-manager{}",
                        cert_manager.map_or(String::new(), |c| format!(" ({})", c.id()))
                    ),
                )),
                _ => None,
            };
        }
    }
    // istio-csr is simulated with aws-privateca-issuer reconciling its
    // CertificateRequests (the only issuer the model routes behind it): with that
    // issuer the cluster is imported on istio-csr and an AWS Private CA; with another
    // one, on istiod's built-in CA, said in a comment and a warning.
    let pca_issuer = o
        .workloads
        .iter()
        .find(|w| w.kind == WorkloadKind::Deployment && image_has(w, "aws-privateca-issuer"));
    let mut pca = false;
    if cp.ca_mode.as_ref().is_some_and(|m| m.0 == "istio-csr") {
        match pca_issuer {
            Some(issuer) => {
                pca = true;
                cp.signer = Some((
                    "istio-csr".into(),
                    format!(
                        "istio-csr's CertificateRequests reconciled by aws-privateca-issuer ({})",
                        issuer.id()
                    ),
                ));
                if let Some(w) = istio_csr {
                    istio_csr_replicas = w.replicas.map(|r| (r.clamp(1, 1000), w.id()));
                }
            }
            None => {
                warnings.push(format!(
                    "{file}: cluster {cluster} uses istio-csr without aws-privateca-issuer (no Deployment with an aws-privateca-issuer image); the fleet model routes istio-csr only to aws-privateca-issuer: it is imported on istiod's built-in CA"
                ));
                cp.ca_mode = Some((
                    "istiod".into(),
                    "istio-csr found without aws-privateca-issuer, the only issuer the model routes behind it: istiod's built-in CA instead"
                        .into(),
                ));
                cp.signer = None;
            }
        }
    }
    // istiod's built-in CA calls no external CA: the cluster names none.
    if cp.ca_mode.as_ref().is_some_and(|m| m.0 == "istiod") {
        let line = format!(
            "ca = {}  # the CA of this cluster's istiod (one per imported cluster; point clusters that share a CA at one table)",
            toml_str(ca)
        );
        out = out.replacen(
            &line,
            &format!(
                "# ca = {}  # istiod signs with its built-in CA: no external CA",
                toml_str(ca)
            ),
            1,
        );
    }
    if let Some((v, _)) = &cp.ca_mode {
        if let Some(cm) = cert_manager.filter(|_| v == "istiod") {
            let _ = writeln!(out, "# {} is present, but istiod does not use it", cm.id());
        }
    }

    // --- Kubernetes version, from the kubelets.
    if let Some((v, n, others)) = mode(
        o.nodes
            .iter()
            .filter_map(|n| n.kubelet_version.as_deref().and_then(minor_version)),
    ) {
        cp.kubernetes_version = Some((
            v,
            format!(
                "the kubelet of {n} of {nodes_total} nodes (status.nodeInfo.kubeletVersion){}; the control plane may be newer",
                if others.is_empty() {
                    String::new()
                } else {
                    format!(", others {}", others.join(", "))
                }
            ),
        ));
    }
    out.push_str(&control_plane_keys(
        CpTable::Istiod,
        &cp,
        cluster,
        emit_control_plane,
    ));
    out.push_str(&control_plane_keys(
        CpTable::Signer,
        &cp,
        cluster,
        emit_control_plane,
    ));
    if let Some((n, id)) = &istio_csr_replicas {
        let line = format!("replicas = {n}  # spec.replicas of {id}");
        if emit_control_plane {
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
    if cp.kubernetes_version.is_some() {
        let _ = writeln!(out, "\n[cluster.{cluster}.kubernetes]");
        out.push_str(&control_plane_keys(
            CpTable::Kubernetes,
            &cp,
            cluster,
            emit_control_plane,
        ));
    }

    // --- Node groups.
    for g in &groups {
        let nodes: Vec<&Node> = g.nodes.iter().map(|&i| &o.nodes[i]).collect();
        let _ = writeln!(out, "\n[cluster.{cluster}.node_group.{}]", g.name);
        let origin = match g.kind {
            GroupKind::Eks => format!("nodes labelled {EKS_NODEGROUP}={}", clean(&g.label)),
            GroupKind::Karpenter => format!("nodes labelled {KARPENTER_POOL}={}", clean(&g.label)),
            GroupKind::Ungrouped => {
                format!("nodes with neither {EKS_NODEGROUP} nor {KARPENTER_POOL} (self-managed or Fargate)")
            }
        };
        let _ = writeln!(out, "nodes = {}  # {origin}", nodes.len());
        match mode(nodes.iter().filter_map(|n| n.allocatable_pods)) {
            Some((p, n, others)) => {
                let v = p.clamp(1, 1000);
                let _ = writeln!(
                    out,
                    "max_pods = {v}  # status.allocatable.pods of {n} of {} nodes{}{}",
                    nodes.len(),
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (others: {})",
                            others
                                .iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    if v != p {
                        format!(" ({p}, clamped to 1..=1000)")
                    } else {
                        String::new()
                    }
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "# max_pods: no node has status.allocatable.pods; the documented default applies"
                );
            }
        }
        let zones: BTreeSet<&str> = nodes
            .iter()
            .filter_map(|n| n.labels.get(ZONE).or_else(|| n.labels.get(ZONE_BETA)))
            .map(String::as_str)
            .collect();
        if zones.is_empty() {
            let _ = writeln!(
                out,
                "# azs: no node has {ZONE}; the documented default applies"
            );
        } else {
            let list: Vec<String> = zones.iter().map(|z| clean(z)).collect();
            let _ = writeln!(
                out,
                "azs = {}  # distinct {ZONE}: {}",
                zones.len().min(16),
                list.join(", ")
            );
        }
        let by_label = mode(
            nodes
                .iter()
                .filter_map(|n| n.labels.get(EKS_IMAGE).cloned())
                .filter(|s| !s.trim().is_empty()),
        );
        let (ami, from) = match by_label {
            Some(m) => (Some(m), format!("label {EKS_IMAGE}")),
            None => (
                mode(
                    nodes
                        .iter()
                        .filter_map(|n| n.os_image.clone())
                        .filter(|s| !s.trim().is_empty()),
                ),
                "status.nodeInfo.osImage".to_string(),
            ),
        };
        match ami {
            Some((raw, n, others)) => {
                // The schema's rule: 1 to 100 characters, no control characters.
                let ami: String = raw
                    .chars()
                    .map(|c| if c.is_control() { '_' } else { c })
                    .take(MAX_NAME)
                    .collect();
                let _ = writeln!(
                    out,
                    "ami = {}  # {from} of {n} of {} nodes{}",
                    toml_str(&ami),
                    nodes.len(),
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (others: {}; a rollout in progress?)",
                            others
                                .iter()
                                .map(|o| clean(o))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "# ami: no {EKS_IMAGE} label nor osImage; the documented default applies"
                );
            }
        }
        let _ = writeln!(
            out,
            "# target_ami: not in kubectl's output (the AMI to roll to); the documented default applies"
        );
        match g.kind {
            GroupKind::Eks => {
                let _ = writeln!(
                    out,
                    "# strategy, max_unavailable: the node group's update config is not in kubectl's output; the documented defaults apply (EKS DEFAULT, 1)"
                );
            }
            GroupKind::Karpenter => {
                let _ = writeln!(
                    out,
                    "strategy = \"karpenter\"  # a Karpenter NodePool ({})\n# max_unavailable_percent: the NodePool's disruption budget is not in kubectl's output; the documented default applies (10%)",
                    clean(&g.label)
                );
            }
            GroupKind::Ungrouped => {
                let _ = writeln!(
                    out,
                    "upgrade = false  # not an EKS managed node group nor a Karpenter pool: nothing upgrades it"
                );
            }
        }
    }

    // --- Workloads.
    let mut names = Names::default();
    let mut pods: u64 = 0;
    let mut pdb_workloads = 0usize;
    // Replicas per PDB over every Deployment and StatefulSet it selects.
    let selects = |p: &Pdb, w: &Workload| {
        p.namespace == w.namespace
            && p.selector
                .as_ref()
                .is_some_and(|s| s.matches(&w.template.labels))
    };
    for (i, w) in o.workloads.iter().enumerate() {
        if Some(i) == istiod {
            continue;
        }
        let (injected, why) = injection(w, o.namespaces.get(&w.namespace));
        let base = format!("{}-{}", w.namespace, w.name);
        let fit = placement(&w.template, &o.nodes, &groups);
        if w.kind == WorkloadKind::DaemonSet {
            if fit.is_empty() {
                let _ = writeln!(out, "\n# {}: no node can run its pods; left out", w.id());
                continue;
            }
            for &(g, n) in &fit {
                let name = if fit.len() == 1 {
                    names.unique(&base)
                } else {
                    names.unique(&format!("{base}-{}", groups[g].name))
                };
                pods += u64::from(n);
                let _ = writeln!(out, "\n[cluster.{cluster}.workload.{name}]");
                let _ = writeln!(
                    out,
                    "replicas = {n}  # {}: one pod per node of group {} it can run on",
                    w.id(),
                    groups[g].name
                );
                let _ = writeln!(
                    out,
                    "node_group = {}  # a DaemonSet's pods stay on their nodes",
                    toml_str(&groups[g].name)
                );
                let _ = writeln!(out, "injected = {injected}  # {why}");
                let _ = writeln!(out, "pdb = false  # drains skip DaemonSet pods");
            }
            continue;
        }
        let replicas = w.replicas.unwrap_or(1);
        if replicas == 0 {
            let _ = writeln!(out, "\n# {}: 0 replicas; left out", w.id());
            continue;
        }
        let name = names.unique(&base);
        pods += u64::from(replicas);
        let _ = writeln!(out, "\n[cluster.{cluster}.workload.{name}]");
        let _ = writeln!(
            out,
            "replicas = {replicas}  # {} {}",
            w.id(),
            if w.replicas_given {
                "spec.replicas"
            } else {
                "spec.replicas absent, the API default"
            }
        );
        out.push_str(&pin_line(&w.id(), &fit, &groups, warnings, file));
        let _ = writeln!(out, "injected = {injected}  # {why}");
        let covering: Vec<&Pdb> = o.pdbs.iter().filter(|p| selects(p, w)).collect();
        match covering.as_slice() {
            [] => {
                let _ = writeln!(
                    out,
                    "pdb = false  # no PodDisruptionBudget selects its pods"
                );
            }
            [p] => {
                pdb_workloads += 1;
                pdb_ids.insert(p.id());
                let shared: Vec<&Workload> = o
                    .workloads
                    .iter()
                    .enumerate()
                    .filter(|(j, x)| {
                        Some(*j) != istiod && x.kind != WorkloadKind::DaemonSet && selects(p, x)
                    })
                    .map(|(_, x)| x)
                    .collect();
                let total: u32 = shared.iter().map(|x| x.replicas.unwrap_or(1)).sum();
                let allowed = p.allowed_unavailable(total).min(replicas);
                let over = if shared.len() > 1 {
                    let others: Vec<String> = shared
                        .iter()
                        .filter(|x| !std::ptr::eq(**x, w))
                        .map(|x| x.id())
                        .collect();
                    format!(
                        " over {total} pods, shared with {} (the model keeps a budget per workload)",
                        others.join(", ")
                    )
                } else {
                    format!(" over {total} pods")
                };
                let _ = writeln!(
                    out,
                    "pdb = true  # PodDisruptionBudget {}\npdb_max_unavailable = {allowed}  # {}{over}{}",
                    p.id(),
                    p.rule(),
                    if allowed == 0 {
                        ": no eviction is allowed (drains wait for the drain timeout)"
                    } else {
                        ""
                    }
                );
            }
            many => {
                pdb_workloads += 1;
                let ids: Vec<String> = many.iter().map(|p| p.id()).collect();
                pdb_ids.extend(ids.iter().cloned());
                warnings.push(format!(
                    "{file}: {}: selected by {} PodDisruptionBudgets ({}): the eviction API refuses to evict its pods",
                    w.id(),
                    many.len(),
                    ids.join(", ")
                ));
                let _ = writeln!(
                    out,
                    "pdb = true  # PodDisruptionBudgets {}\npdb_max_unavailable = 0  # several PDBs select its pods: the eviction API refuses to evict them",
                    ids.join(", ")
                );
            }
        }
    }
    for p in &o.pdbs {
        if !pdb_ids.contains(&p.id()) {
            warnings.push(format!(
                "{file}: PodDisruptionBudget {}: selects no Deployment, StatefulSet or istiod pods; left out",
                p.id()
            ));
        }
    }
    if names.0.is_empty() {
        warnings.push(format!(
            "{file}: no Deployment or StatefulSet with replicas: the scenario's default workload applies"
        ));
    }
    Ok(Emitted {
        pca,
        text: out,
        summary: ClusterSummary {
            name: cluster.to_string(),
            nodes: nodes_total,
            node_groups: groups.len(),
            pods,
            pdbs: pdb_workloads + usize::from(istiod_pdb),
            istiod_replicas,
        },
    })
}

/// The documented CA defaults, as comments (`import::tests` checks them against the
/// scenario's).
const CA_DEFAULTS: &str = "\
# Its capacity is not in kubectl's output, so the documented defaults apply
# (docs/scenario.md): workers = 16, service_dist = \"exponential\",
# service_mean = \"100ms\", no rate limit, contention_sigma = 0, coherency_kappa = 0.
# Load-test the CA and fit it: `fleetsim ca fit LOADTEST.csv` prints this table.
";

const PCA_DEFAULTS: &str = "\
# Its quotas are not in kubectl's output, so the documented defaults apply
# (docs/scenario.md): IssueCertificate 25/s, GetCertificate 75/s per account and
# Region. Clusters whose issuers share an AWS account should name one account.
kind = \"aws-pca\"  # istio-csr's CertificateRequests are signed by aws-privateca-issuer
";

/// Imports every source into one scenario: one cluster per source, in order.
pub fn import(sources: &[Source]) -> Result<Imported, ImportError> {
    import_with(sources, EMIT_CONTROL_PLANE_KEYS)
}

/// [`import`], writing the control-plane keys as keys or as comments.
fn import_with(sources: &[Source], emit_control_plane: bool) -> Result<Imported, ImportError> {
    let mut warnings = Vec::new();
    let mut cluster_names = Names::default();
    let mut ca_names = Names::default();
    let mut clusters = Vec::new();
    let mut text = String::new();
    let files: Vec<String> = sources.iter().map(|s| clean(&s.file)).collect();
    let _ = writeln!(
        text,
        "# Written by `fleetsim import {}`: every value says where it came from;",
        files.join(" ")
    );
    let _ = writeln!(
        text,
        "# what kubectl's output cannot tell is left at the documented default (docs/scenario.md)."
    );
    let _ = writeln!(text, "\n[scenario]");
    let _ = writeln!(
        text,
        "description = {}  # the input files",
        toml_str(&format!("imported from {}", files.join(", ")))
    );
    let mut cas = String::new();
    let mut body = String::new();
    for s in sources {
        let items = list_items(&s.file, &s.bytes)?;
        let o = objects(&s.file, &items, &mut warnings);
        let name = cluster_names.unique(&s.cluster);
        if name != s.cluster {
            warnings.push(format!(
                "{}: the cluster is named {name} (a scenario name is 1-100 letters, digits, - or _, unique)",
                clean(&s.file)
            ));
        }
        let ca = ca_names.unique(&format!("{name}-ca"));
        let e = cluster(s, &name, &ca, &o, emit_control_plane, &mut warnings)?;
        if e.pca && emit_control_plane {
            let _ = write!(
                cas,
                "\n[ca.{ca}]\n# The AWS Private CA behind cluster {name}'s aws-privateca-issuer.\n{PCA_DEFAULTS}account = {}  # not in kubectl's output: one account per imported cluster\n",
                toml_str(&name)
            );
        } else {
            let _ = write!(
                cas,
                "\n[ca.{ca}]\n# The CA that signs cluster {name}'s workload certificates.\n{CA_DEFAULTS}"
            );
        }
        body.push_str(&e.text);
        clusters.push(e.summary);
    }
    text.push_str(&cas);
    text.push_str(&body);
    Ok(Imported {
        text,
        warnings,
        clusters,
    })
}

/// Loads `text` as the scenario `file` would be: its errors, one per line, if any.
pub fn check(file: &str, text: &str) -> Result<(), String> {
    scenario::load_str(file, text, &[])
        .map(|_| ())
        .map_err(|e| e.to_string())
}
