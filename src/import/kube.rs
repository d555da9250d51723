//! The Kubernetes objects `import` reads, taken out of `serde_json::Value`s field by
//! field: only what the scenario needs, each field's problem reported as
//! `FIELD: PROBLEM` so that the caller can name the object and skip it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// `metadata.labels`, `spec.nodeSelector` and the like.
pub(crate) type Labels = BTreeMap<String, String>;

/// What went wrong with one field.
pub(crate) type FieldResult<T> = Result<T, String>;

/// `kind namespace/name` (or `kind name`) of an item, for warnings.
pub(crate) fn describe(item: &Value) -> String {
    let kind = item.get("kind").and_then(Value::as_str).unwrap_or("object");
    let meta = item.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(no name)");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{} {}/{}", clean(kind), clean(ns), clean(name)),
        None => format!("{} {}", clean(kind), clean(name)),
    }
}

/// Text from the input made safe for a one-line message or a TOML comment: control
/// characters escaped, at most 200 characters.
pub(crate) fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if s.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, path: &str) -> FieldResult<Option<&'a Map<String, Value>>> {
    match get(v, path) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(format!(
            "{path}: expected an object, got {}",
            kind_of(other)
        )),
    }
}

fn array<'a>(v: &'a Value, path: &str) -> FieldResult<&'a [Value]> {
    match get(v, path) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!("{path}: expected an array, got {}", kind_of(other))),
    }
}

fn string(v: &Value, path: &str) -> FieldResult<Option<String>> {
    match get(v, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{path}: expected a string, got {}", kind_of(other))),
    }
}

fn required_string(v: &Value, path: &str) -> FieldResult<String> {
    string(v, path)?.ok_or_else(|| format!("{path}: missing"))
}

fn count(v: &Value, path: &str) -> FieldResult<Option<u32>> {
    match get(v, path) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{path}: expected a count >= 0, got {n}")),
        Some(other) => Err(format!(
            "{path}: expected an integer, got {}",
            kind_of(other)
        )),
    }
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("\"{}\"", clean(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn labels(v: &Value, path: &str) -> FieldResult<Labels> {
    let Some(m) = object(v, path)? else {
        return Ok(Labels::new());
    };
    m.iter()
        .map(|(k, val)| match val {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!(
                "{path}.{}: expected a string, got {}",
                clean(k),
                kind_of(other)
            )),
        })
        .collect()
}

/// `metadata.namespace` and `metadata.name`.
fn meta(v: &Value) -> FieldResult<(String, String)> {
    let name = required_string(v, "metadata.name")?;
    let namespace = string(v, "metadata.namespace")?.unwrap_or_else(|| "default".into());
    Ok((namespace, name))
}

// ---------------------------------------------------------------------------------------
// Selectors.

/// One requirement of a label selector or a node selector term.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// The operators of `matchExpressions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Requirement {
    fn parse(v: &Value, path: &str, node: bool) -> FieldResult<Requirement> {
        let key = required_string(v, "key").map_err(|e| format!("{path}.{e}"))?;
        let op = match required_string(v, "operator")
            .map_err(|e| format!("{path}.{e}"))?
            .as_str()
        {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" if node => Op::Gt,
            "Lt" if node => Op::Lt,
            other => {
                return Err(format!(
                    "{path}.operator: unknown operator \"{}\"",
                    clean(other)
                ))
            }
        };
        let values = array(v, "values")
            .map_err(|e| format!("{path}.{e}"))?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{path}.values: expected strings"))
            })
            .collect::<FieldResult<Vec<_>>>()?;
        Ok(Requirement { key, op, values })
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A `metav1.LabelSelector`: `matchLabels` and `matchExpressions`, all must hold (an
/// empty selector matches everything).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Selector {
    pub match_labels: Labels,
    pub expressions: Vec<Requirement>,
}

impl Selector {
    fn parse(v: &Value, path: &str) -> FieldResult<Selector> {
        let match_labels = labels(v, "matchLabels").map_err(|e| format!("{path}.{e}"))?;
        let expressions = array(v, "matchExpressions")
            .map_err(|e| format!("{path}.{e}"))?
            .iter()
            .enumerate()
            .map(|(i, r)| Requirement::parse(r, &format!("{path}.matchExpressions[{i}]"), false))
            .collect::<FieldResult<_>>()?;
        Ok(Selector {
            match_labels,
            expressions,
        })
    }

    /// Whether `labels` satisfy every part of the selector.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|r| r.matches(labels))
    }
}

// ---------------------------------------------------------------------------------------
// Nodes.

/// A node taint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

/// What the scenario needs of a Node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub name: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    /// `status.allocatable.pods`.
    pub allocatable_pods: Option<u32>,
    /// `status.nodeInfo.osImage`.
    pub os_image: Option<String>,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: Option<String>,
}

impl Node {
    pub fn parse(v: &Value) -> FieldResult<Node> {
        let name = required_string(v, "metadata.name")?;
        let labels = labels(v, "metadata.labels")?;
        let taints = array(v, "spec.taints")?
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let p = format!("spec.taints[{i}]");
                Ok(Taint {
                    key: required_string(t, "key").map_err(|e| format!("{p}.{e}"))?,
                    value: string(t, "value")
                        .map_err(|e| format!("{p}.{e}"))?
                        .unwrap_or_default(),
                    effect: required_string(t, "effect").map_err(|e| format!("{p}.{e}"))?,
                })
            })
            .collect::<FieldResult<_>>()?;
        // A quantity: kubectl writes "110"; a plain integer is accepted too.
        let allocatable_pods = match get(v, "status.allocatable.pods") {
            None => None,
            Some(Value::String(s)) => Some(s.trim().parse::<u32>().map_err(|_| {
                format!(
                    "status.allocatable.pods: expected a whole number of pods, got \"{}\"",
                    clean(s)
                )
            })?),
            Some(_) => count(v, "status.allocatable.pods")?,
        };
        Ok(Node {
            name,
            labels,
            taints,
            allocatable_pods,
            os_image: string(v, "status.nodeInfo.osImage")?,
            kubelet_version: string(v, "status.nodeInfo.kubeletVersion")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Pod templates and workloads.

/// A toleration of a pod template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Toleration {
    /// Empty with `Exists`: tolerates every taint.
    pub key: String,
    pub exists: bool,
    pub value: String,
    /// Empty: every effect.
    pub effect: String,
}

impl Toleration {
    fn tolerates(&self, t: &Taint) -> bool {
        (self.effect.is_empty() || self.effect == t.effect)
            && (self.key.is_empty() && self.exists
                || self.key == t.key && (self.exists || self.value == t.value))
    }
}

/// A container: its name, image and literal env values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Container {
    pub name: String,
    pub image: String,
    pub env: Vec<(String, String)>,
}

/// What the scenario needs of a pod template.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PodTemplate {
    pub labels: Labels,
    pub annotations: Labels,
    pub node_selector: Labels,
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`: any term,
    /// every requirement of it (`matchExpressions` on labels; `matchFields` on
    /// `metadata.name` as a label of that name).
    pub node_terms: Vec<Vec<Requirement>>,
    pub tolerations: Vec<Toleration>,
    pub host_network: bool,
    pub containers: Vec<Container>,
}

/// The label key under which a node's name is matched (`matchFields`).
const NODE_NAME_FIELD: &str = "metadata.name";

impl PodTemplate {
    fn parse(v: &Value) -> FieldResult<PodTemplate> {
        let p = "spec.template";
        let t = get(v, p).ok_or_else(|| format!("{p}: missing"))?;
        let at = |e: String| format!("{p}.{e}");
        let mut node_terms = Vec::new();
        let terms = array(
            t,
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
        )
        .map_err(at)?;
        for (i, term) in terms.iter().enumerate() {
            let tp = format!("{p}.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]");
            let mut reqs = Vec::new();
            for (field, label) in [("matchExpressions", None), ("matchFields", Some(()))] {
                for (j, r) in array(term, field)
                    .map_err(|e| format!("{tp}.{e}"))?
                    .iter()
                    .enumerate()
                {
                    let mut req = Requirement::parse(r, &format!("{tp}.{field}[{j}]"), true)?;
                    if label.is_some() {
                        if req.key != NODE_NAME_FIELD {
                            return Err(format!(
                                "{tp}.{field}[{j}].key: only metadata.name is a node field, got \"{}\"",
                                clean(&req.key)
                            ));
                        }
                        req.key = NODE_NAME_FIELD.into();
                    }
                    reqs.push(req);
                }
            }
            node_terms.push(reqs);
        }
        let tolerations = array(t, "spec.tolerations")
            .map_err(at)?
            .iter()
            .enumerate()
            .map(|(i, tol)| {
                let tp = format!("{p}.spec.tolerations[{i}]");
                let s = |f: &str| {
                    string(tol, f)
                        .map(Option::unwrap_or_default)
                        .map_err(|e| format!("{tp}.{e}"))
                };
                let op = s("operator")?;
                Ok(Toleration {
                    key: s("key")?,
                    exists: op == "Exists",
                    value: s("value")?,
                    effect: s("effect")?,
                })
            })
            .collect::<FieldResult<_>>()?;
        let containers = array(t, "spec.containers")
            .map_err(at)?
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cp = format!("{p}.spec.containers[{i}]");
                let env = array(c, "env")
                    .map_err(|e| format!("{cp}.{e}"))?
                    .iter()
                    .filter_map(|e| {
                        Some((
                            e.get("name")?.as_str()?.to_string(),
                            e.get("value")?.as_str()?.to_string(),
                        ))
                    })
                    .collect();
                Ok(Container {
                    name: string(c, "name")
                        .map_err(|e| format!("{cp}.{e}"))?
                        .unwrap_or_default(),
                    image: string(c, "image")
                        .map_err(|e| format!("{cp}.{e}"))?
                        .unwrap_or_default(),
                    env,
                })
            })
            .collect::<FieldResult<_>>()?;
        Ok(PodTemplate {
            labels: labels(t, "metadata.labels").map_err(at)?,
            annotations: labels(t, "metadata.annotations").map_err(at)?,
            node_selector: labels(t, "spec.nodeSelector").map_err(at)?,
            node_terms,
            tolerations,
            host_network: match get(t, "spec.hostNetwork") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "{p}.spec.hostNetwork: expected true or false, got {}",
                        kind_of(other)
                    ))
                }
            },
            containers,
        })
    }

    /// Whether a pod of this template can run on `node`: its node selector, its
    /// required node affinity, and its tolerations of the node's `NoSchedule` and
    /// `NoExecute` taints.
    pub fn fits(&self, node: &Node) -> bool {
        let selected = self
            .node_selector
            .iter()
            .all(|(k, v)| node.labels.get(k) == Some(v));
        let mut with_name = node.labels.clone();
        with_name.insert(NODE_NAME_FIELD.into(), node.name.clone());
        let affine = self.node_terms.is_empty()
            || self
                .node_terms
                .iter()
                .any(|term| !term.is_empty() && term.iter().all(|r| r.matches(&with_name)));
        let tolerated = node
            .taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .all(|t| self.tolerations.iter().any(|tol| tol.tolerates(t)));
        selected && affine && tolerated
    }
}

/// The kinds of workload the scenario models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }
}

/// A Deployment, StatefulSet or DaemonSet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// `spec.replicas` (default 1); `None` for a DaemonSet.
    pub replicas: Option<u32>,
    /// Whether `spec.replicas` was written (false: the API default 1).
    pub replicas_given: bool,
    pub template: PodTemplate,
}

impl Workload {
    pub fn parse(kind: WorkloadKind, v: &Value) -> FieldResult<Workload> {
        let (namespace, name) = meta(v)?;
        let (replicas, replicas_given) = if kind == WorkloadKind::DaemonSet {
            (None, false)
        } else {
            let r = count(v, "spec.replicas")?;
            (Some(r.unwrap_or(1)), r.is_some())
        };
        Ok(Workload {
            kind,
            namespace,
            name,
            replicas,
            replicas_given,
            template: PodTemplate::parse(v)?,
        })
    }

    /// `Kind namespace/name`.
    pub fn id(&self) -> String {
        format!(
            "{} {}/{}",
            self.kind.name(),
            clean(&self.namespace),
            clean(&self.name)
        )
    }
}

// ---------------------------------------------------------------------------------------
// Namespaces, PDBs, HPAs.

/// A Namespace's name and labels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Namespace {
    pub name: String,
    pub labels: Labels,
}

impl Namespace {
    pub fn parse(v: &Value) -> FieldResult<Namespace> {
        Ok(Namespace {
            name: required_string(v, "metadata.name")?,
            labels: labels(v, "metadata.labels")?,
        })
    }
}

/// A count or a percentage (`intstr.IntOrString`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum IntOrPercent {
    Count(u32),
    Percent(u32),
}

impl IntOrPercent {
    fn parse(v: &Value, path: &str) -> FieldResult<Option<IntOrPercent>> {
        match get(v, path) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let bad = || {
                    format!(
                        "{path}: expected a count or a percentage such as \"25%\", got \"{}\"",
                        clean(s)
                    )
                };
                match s.strip_suffix('%') {
                    Some(p) => {
                        let p: u32 = p.parse().map_err(|_| bad())?;
                        if p > 100 {
                            return Err(format!(
                                "{path}: a percentage above 100%: \"{}\"",
                                clean(s)
                            ));
                        }
                        Ok(Some(IntOrPercent::Percent(p)))
                    }
                    // The API server accepts "3" as a count.
                    None => s
                        .parse()
                        .map(|c| Some(IntOrPercent::Count(c)))
                        .map_err(|_| bad()),
                }
            }
            Some(_) => Ok(count(v, path)?.map(IntOrPercent::Count)),
        }
    }

    /// The value for `total` pods, rounding a percentage up (as the disruption
    /// controller does for both `minAvailable` and `maxUnavailable`).
    pub fn scaled(self, total: u32) -> u32 {
        match self {
            IntOrPercent::Count(c) => c,
            IntOrPercent::Percent(p) => (u64::from(p) * u64::from(total)).div_ceil(100) as u32,
        }
    }

    /// As written: `2` or `"25%"`.
    pub fn text(self) -> String {
        match self {
            IntOrPercent::Count(c) => c.to_string(),
            IntOrPercent::Percent(p) => format!("{p}%"),
        }
    }
}

/// A PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pdb {
    pub namespace: String,
    pub name: String,
    /// `None`: a null selector, which matches no pod.
    pub selector: Option<Selector>,
    pub max_unavailable: Option<IntOrPercent>,
    pub min_available: Option<IntOrPercent>,
}

impl Pdb {
    pub fn parse(v: &Value) -> FieldResult<Pdb> {
        let (namespace, name) = meta(v)?;
        let selector = match object(v, "spec.selector")? {
            None => None,
            Some(_) => Some(Selector::parse(
                get(v, "spec.selector").unwrap_or(&Value::Null),
                "spec.selector",
            )?),
        };
        let max_unavailable = IntOrPercent::parse(v, "spec.maxUnavailable")?;
        let min_available = IntOrPercent::parse(v, "spec.minAvailable")?;
        if max_unavailable.is_some() && min_available.is_some() {
            return Err("spec: gives both minAvailable and maxUnavailable".into());
        }
        Ok(Pdb {
            namespace,
            name,
            selector,
            max_unavailable,
            min_available,
        })
    }

    /// Pods of `total` that may be unavailable at once under this budget.
    pub fn allowed_unavailable(&self, total: u32) -> u32 {
        match (self.max_unavailable, self.min_available) {
            (Some(m), _) => m.scaled(total).min(total),
            (None, Some(m)) => total.saturating_sub(m.scaled(total)),
            // Neither: the API defaults minAvailable to 1.
            (None, None) => total.saturating_sub(1),
        }
    }

    /// `maxUnavailable: 25%` / `minAvailable: 2` / `minAvailable: 1 (the default)`.
    pub fn rule(&self) -> String {
        match (self.max_unavailable, self.min_available) {
            (Some(m), _) => format!("maxUnavailable: {}", m.text()),
            (None, Some(m)) => format!("minAvailable: {}", m.text()),
            (None, None) => "minAvailable: 1 (the default)".into(),
        }
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", clean(&self.namespace), clean(&self.name))
    }
}

/// A HorizontalPodAutoscaler (autoscaling/v1 or v2: the fields read are the same).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hpa {
    pub namespace: String,
    pub name: String,
    pub target_kind: String,
    pub target_name: String,
    pub min: u32,
    pub max: u32,
}

impl Hpa {
    pub fn parse(v: &Value) -> FieldResult<Hpa> {
        let (namespace, name) = meta(v)?;
        Ok(Hpa {
            namespace,
            name,
            target_kind: required_string(v, "spec.scaleTargetRef.kind")?,
            target_name: required_string(v, "spec.scaleTargetRef.name")?,
            min: count(v, "spec.minReplicas")?.unwrap_or(1),
            max: count(v, "spec.maxReplicas")?.ok_or("spec.maxReplicas: missing")?,
        })
    }
}
