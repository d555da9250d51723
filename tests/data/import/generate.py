#!/usr/bin/env python3
"""Writes the `fleetsim import` fixtures of this directory: what

    kubectl get nodes,deployments,statefulsets,daemonsets,poddisruptionbudgets,namespaces,horizontalpodautoscalers -A -o json

prints for clusters of several shapes, with the fields a real cluster fills in
(uids, resource versions, statuses, the EKS and Karpenter node labels). Deterministic:
run it again and the files do not change. tests/import.rs checks every object against
the Kubernetes OpenAPI schema (kubernetes-validate) where the validator is installed.

    eks-managed.json      EKS managed node groups, istiod 2 replicas with an HPA and
                          EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API (cert-manager signer),
                          count PDBs, a StatefulSet, DaemonSets on every node
    karpenter.json        a managed system group plus Karpenter NodePools (one tainted
                          for GPUs), node affinity, a GPU DaemonSet, istiod's own CA
    mixed-injection.json  injection by namespace label, revision label, pod label and
                          annotation opt-out; percentage PDBs; istio-csr; self-managed nodes
    malformed-object.json a small cluster with a Deployment whose replicas is a string, a
                          PDB with a bad percentage and a Service (a kind import ignores)
"""
import json
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
T0 = "2024-05-20T08:12:33Z"
T1 = "2024-06-03T14:02:10Z"
RV = [4_000_000]


def rv():
    RV[0] += 1379
    return str(RV[0])


def uid(*parts):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def meta(kind, name, ns=None, labels=None, annotations=None, generation=None):
    m = {"creationTimestamp": T0}
    if generation is not None:
        m["generation"] = generation
    if labels:
        m["labels"] = labels
    if annotations:
        m["annotations"] = annotations
    m["name"] = name
    if ns:
        m["namespace"] = ns
    m["resourceVersion"] = rv()
    m["uid"] = uid(kind, ns or "", name)
    return m


def cond(type_, status="True", reason=None, message=None):
    c = {"lastTransitionTime": T0, "status": status, "type": type_}
    if reason:
        c["reason"] = reason
    if message is not None:
        c["message"] = message
    return c


def node(name, zone, pods, *, nodegroup=None, image=None, nodepool=None, itype="m5.xlarge",
         os_image="Amazon Linux 2", kubelet="v1.29.3-eks-ae9a62a", taints=None, cpu="4", mem="16083916Ki"):
    region = zone[:-1]
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": itype,
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": itype,
        "topology.ebs.csi.aws.com/zone": zone,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
    }
    if nodegroup:
        labels["eks.amazonaws.com/capacityType"] = "ON_DEMAND"
        labels["eks.amazonaws.com/nodegroup"] = nodegroup
        labels["eks.amazonaws.com/sourceLaunchTemplateId"] = "lt-0" + uid("lt", nodegroup)[:16].replace("-", "")
        labels["eks.amazonaws.com/sourceLaunchTemplateVersion"] = "1"
        if image:
            labels["eks.amazonaws.com/nodegroup-image"] = image
    if nodepool:
        labels["karpenter.k8s.aws/instance-category"] = itype[0]
        labels["karpenter.k8s.aws/instance-family"] = itype.split(".")[0]
        labels["karpenter.k8s.aws/instance-size"] = itype.split(".")[1]
        labels["karpenter.sh/capacity-type"] = "spot" if nodepool == "default" else "on-demand"
        labels["karpenter.sh/initialized"] = "true"
        labels["karpenter.sh/nodepool"] = nodepool
        labels["karpenter.sh/registered"] = "true"
    ip = "10.0.%d.%d" % (int(uid(name)[:2], 16) % 200, int(uid(name)[2:4], 16) % 250 + 2)
    instance = "i-0" + uid("i", name).replace("-", "")[:16]
    spec = {"providerID": "aws:///%s/%s" % (zone, instance)}
    if taints:
        spec["taints"] = taints
    conditions = [
        dict(cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"), lastHeartbeatTime=T1),
        dict(cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"), lastHeartbeatTime=T1),
        dict(cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"), lastHeartbeatTime=T1),
        dict(cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"), lastHeartbeatTime=T1),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta("Node", name, labels=labels, annotations={
            "alpha.kubernetes.io/provided-node-ip": ip,
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        }),
        "spec": spec,
        "status": {
            "addresses": [
                {"address": ip, "type": "InternalIP"},
                {"address": name, "type": "InternalDNS"},
                {"address": name, "type": "Hostname"},
            ],
            "allocatable": {"cpu": str(int(cpu) * 1000 - 80) + "m", "ephemeral-storage": "95551679124",
                            "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": mem, "pods": str(pods)},
            "capacity": {"cpu": cpu, "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0",
                         "hugepages-2Mi": "0", "memory": mem, "pods": str(pods)},
            "conditions": conditions,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": uid("boot", name),
                "containerRuntimeVersion": "containerd://1.7.11",
                "kernelVersion": "5.10.213-201.855.amzn2.x86_64" if os_image == "Amazon Linux 2" else "6.1.84-99.169.amzn2023.x86_64",
                "kubeProxyVersion": kubelet,
                "kubeletVersion": kubelet,
                "machineID": uid("machine", name).replace("-", ""),
                "operatingSystem": "linux",
                "osImage": os_image,
                "systemUUID": uid("sys", name),
            },
        },
    }


def container(name, image, *, env=None, ports=None, cpu="100m", memory="128Mi", args=None):
    c = {"image": image, "imagePullPolicy": "IfNotPresent", "name": name}
    if args:
        c["args"] = args
    if env:
        c["env"] = env
    if ports:
        c["ports"] = [{"containerPort": p, "name": n, "protocol": "TCP"} for n, p in ports]
    c["resources"] = {"requests": {"cpu": cpu, "memory": memory}}
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    return c


def pod_spec(containers, *, node_selector=None, affinity=None, tolerations=None, host_network=False,
             service_account=None, priority_class=None):
    s = {"containers": containers, "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst"}
    if host_network:
        s["hostNetwork"] = True
    if node_selector:
        s["nodeSelector"] = node_selector
    if affinity:
        s["affinity"] = affinity
    if priority_class:
        s["priorityClassName"] = priority_class
    s["restartPolicy"] = "Always"
    s["schedulerName"] = "default-scheduler"
    s["securityContext"] = {}
    if service_account:
        s["serviceAccount"] = service_account
        s["serviceAccountName"] = service_account
    s["terminationGracePeriodSeconds"] = 30
    if tolerations:
        s["tolerations"] = tolerations
    return s


def template(labels, spec, annotations=None):
    m = {"creationTimestamp": None, "labels": labels}
    if annotations:
        m["annotations"] = annotations
    return {"metadata": m, "spec": spec}


def deployment(ns, name, replicas, labels, spec, *, tpl_annotations=None, extra_tpl_labels=None, obj_labels=None):
    tl = dict(labels, **(extra_tpl_labels or {}))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("Deployment", name, ns, labels=obj_labels or dict(labels),
                         annotations={"deployment.kubernetes.io/revision": "3"}, generation=3),
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": labels},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
            "template": template(tl, spec, tpl_annotations),
        },
        "status": {
            "availableReplicas": replicas,
            "conditions": [
                dict(cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."), lastUpdateTime=T1),
                dict(cond("Progressing", "True", "NewReplicaSetAvailable", 'ReplicaSet "%s-6d4cf56db6" has successfully progressed.' % name), lastUpdateTime=T1),
            ],
            "observedGeneration": 3,
            "readyReplicas": replicas,
            "replicas": replicas,
            "updatedReplicas": replicas,
        },
    }


def statefulset(ns, name, replicas, labels, spec, *, tpl_annotations=None, storage="10Gi"):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta("StatefulSet", name, ns, labels=dict(labels), generation=2),
        "spec": {
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "podManagementPolicy": "OrderedReady",
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": labels},
            "serviceName": name + "-headless",
            "template": template(labels, spec, tpl_annotations),
            "updateStrategy": {"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"},
            "volumeClaimTemplates": [{
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"creationTimestamp": None, "name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}},
                         "storageClassName": "gp3", "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"},
            }],
        },
        "status": {
            "availableReplicas": replicas,
            "collisionCount": 0,
            "currentReplicas": replicas,
            "currentRevision": name + "-7b9c5d8f4",
            "observedGeneration": 2,
            "readyReplicas": replicas,
            "replicas": replicas,
            "updateRevision": name + "-7b9c5d8f4",
            "updatedReplicas": replicas,
        },
    }


def daemonset(ns, name, labels, spec, scheduled):
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("DaemonSet", name, ns, labels=dict(labels),
                         annotations={"deprecated.daemonset.template.generation": "1"}, generation=1),
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": labels},
            "template": template(labels, spec),
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}, "type": "RollingUpdate"},
        },
        "status": {
            "currentNumberScheduled": scheduled,
            "desiredNumberScheduled": scheduled,
            "numberAvailable": scheduled,
            "numberMisscheduled": 0,
            "numberReady": scheduled,
            "observedGeneration": 1,
            "updatedNumberScheduled": scheduled,
        },
    }


def pdb(ns, name, selector, expected, *, max_unavailable=None, min_available=None):
    spec = {}
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if min_available is not None:
        spec["minAvailable"] = min_available
    spec["selector"] = selector

    def scaled(v):
        if isinstance(v, str) and v.endswith("%"):
            return -(-int(v[:-1]) * expected // 100)
        return int(v)

    if max_unavailable is not None:
        desired = max(expected - scaled(max_unavailable), 0)
    else:
        desired = scaled(min_available)
    allowed = max(expected - desired, 0)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta("PodDisruptionBudget", name, ns, generation=1),
        "spec": spec,
        "status": {
            "conditions": [dict(cond("DisruptionAllowed", "True" if allowed else "False",
                                     "SufficientPods" if allowed else "InsufficientPods", ""),
                                observedGeneration=1)],
            "currentHealthy": expected,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
            "observedGeneration": 1,
        },
    }


def hpa(ns, name, target, lo, hi, current):
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta("HorizontalPodAutoscaler", name, ns),
        "spec": {
            "maxReplicas": hi,
            "metrics": [{"resource": {"name": "cpu", "target": {"averageUtilization": 80, "type": "Utilization"}},
                         "type": "Resource"}],
            "minReplicas": lo,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        },
        "status": {
            "conditions": [
                cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
                cond("ScalingActive", "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"),
                cond("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range"),
            ],
            "currentMetrics": [{"resource": {"current": {"averageUtilization": 12, "averageValue": "61m"}, "name": "cpu"},
                                "type": "Resource"}],
            "currentReplicas": current,
            "desiredReplicas": current,
        },
    }


def namespace(name, labels=None):
    l = {"kubernetes.io/metadata.name": name}
    l.update(labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta("Namespace", name, labels=l),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def env(**kv):
    return [{"name": k, "value": v} for k, v in kv.items()]


FIELD_ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
]


def istiod(version, replicas, extra_env, *, node_selector=None):
    labels = {"app": "istiod", "istio": "pilot"}
    tpl_labels = {"istio.io/rev": "default", "install.operator.istio.io/owning-resource": "unknown",
                  "sidecar.istio.io/inject": "false", "operator.istio.io/component": "Pilot"}
    e = env(REVISION="default", PILOT_CERT_PROVIDER="istiod") + FIELD_ENV + env(
        KUBECONFIG="/var/run/secrets/remote/config", PILOT_TRACE_SAMPLING="1",
        PILOT_ENABLE_ANALYSIS="false", CLUSTER_ID="Kubernetes") + extra_env
    spec = pod_spec([container("discovery", "docker.io/istio/pilot:" + version, env=e, cpu="500m", memory="2048Mi",
                               args=["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
                                     "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
                               ports=[("http-debug", 8080), ("grpc-xds", 15010), ("https-dns", 15012),
                                      ("https-webhook", 15017), ("http-monitoring", 15014)])],
                    node_selector=node_selector, service_account="istiod")
    return deployment("istio-system", "istiod", replicas, labels, spec, extra_tpl_labels=tpl_labels,
                      obj_labels={"app": "istiod", "istio": "pilot", "istio.io/rev": "default",
                                  "install.operator.istio.io/owning-resource": "unknown",
                                  "operator.istio.io/component": "Pilot", "release": "istio"},
                      tpl_annotations={"prometheus.io/port": "15014", "prometheus.io/scrape": "true",
                                       "sidecar.istio.io/inject": "false"})


TOLERATE_ALL = [{"operator": "Exists"}]


def aws_node(scheduled):
    return daemonset("kube-system", "aws-node", {"k8s-app": "aws-node"}, pod_spec(
        [container("aws-node", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.18.1-eksbuild.1",
                   env=env(AWS_VPC_K8S_CNI_LOGLEVEL="DEBUG", WARM_ENI_TARGET="1"), cpu="25m", memory="64Mi")],
        host_network=True, tolerations=TOLERATE_ALL, service_account="aws-node",
        priority_class="system-node-critical",
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                                  {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["fargate"]}]}]}}}),
        scheduled)


def kube_proxy(scheduled):
    return daemonset("kube-system", "kube-proxy", {"k8s-app": "kube-proxy"}, pod_spec(
        [container("kube-proxy", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/kube-proxy:v1.29.3-minimal-eksbuild.2",
                   cpu="100m", memory="64Mi")],
        host_network=True, tolerations=TOLERATE_ALL, service_account="kube-proxy",
        priority_class="system-node-critical"), scheduled)


def coredns(replicas=2):
    labels = {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}
    return deployment("kube-system", "coredns", replicas, labels, pod_spec(
        [container("coredns", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/coredns:v1.11.1-eksbuild.9",
                   ports=[("dns-tcp", 53), ("metrics", 9153)], cpu="100m", memory="70Mi")],
        tolerations=[{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"},
                     {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        service_account="coredns", priority_class="system-cluster-critical"))


def app(ns, name, replicas, image, **kw):
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": ns}
    tpl_ann = kw.pop("tpl_annotations", None)
    extra = kw.pop("extra_tpl_labels", None)
    return deployment(ns, name, replicas, labels, pod_spec([container(name, image, ports=[("http", 8080)])], **kw),
                      tpl_annotations=tpl_ann, extra_tpl_labels=extra)


def sel(name, ns):
    return {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": ns}}


def listing(items):
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def eks_managed():
    zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    nodes = []
    for i in range(3):
        nodes.append(node("ip-10-0-%d-%d.eu-west-1.compute.internal" % (10 + i, 31 + i), zones[i], 29,
                          nodegroup="system", image="ami-0c2b8ca1dad447f8a", itype="m5.large", cpu="2", mem="7869308Ki"))
    for i in range(6):
        nodes.append(node("ip-10-0-%d-%d.eu-west-1.compute.internal" % (20 + i % 3, 100 + i), zones[i % 3], 58,
                          nodegroup="apps-2024-05", image="ami-0c2b8ca1dad447f8a"))
    system = {"eks.amazonaws.com/nodegroup": "system"}
    items = nodes + [
        namespace("default"), namespace("kube-system"), namespace("kube-public"), namespace("kube-node-lease"),
        namespace("istio-system"), namespace("cert-manager"),
        namespace("shop", {"istio-injection": "enabled"}),
        namespace("payments", {"istio-injection": "enabled", "team": "payments"}),
        namespace("batch"),
        coredns(),
        istiod("1.20.3", 2, env(EXTERNAL_CA="ISTIOD_RA_KUBERNETES_API",
                                K8S_SIGNER="clusterissuers.cert-manager.io/istio-ca"), node_selector=system),
        deployment("cert-manager", "cert-manager", 1, {"app.kubernetes.io/component": "controller", "app.kubernetes.io/instance": "cert-manager", "app.kubernetes.io/name": "cert-manager"},
                   pod_spec([container("cert-manager-controller", "quay.io/jetstack/cert-manager-controller:v1.14.4",
                                       args=["--v=2", "--cluster-resource-namespace=$(POD_NAMESPACE)", "--leader-election-namespace=kube-system"],
                                       env=FIELD_ENV, ports=[("http-metrics", 9402)])], node_selector=system,
                            service_account="cert-manager")),
        deployment("cert-manager", "cert-manager-webhook", 1, {"app.kubernetes.io/component": "webhook", "app.kubernetes.io/instance": "cert-manager", "app.kubernetes.io/name": "webhook"},
                   pod_spec([container("cert-manager-webhook", "quay.io/jetstack/cert-manager-webhook:v1.14.4",
                                       ports=[("https", 10250)])], node_selector=system, service_account="cert-manager-webhook")),
        app("shop", "web", 6, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:2024.05.3",
            node_selector={"eks.amazonaws.com/nodegroup": "apps-2024-05"}),
        app("shop", "cart", 3, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/cart:2024.05.1"),
        statefulset("payments", "ledger", 3, {"app.kubernetes.io/name": "ledger", "app.kubernetes.io/part-of": "payments"},
                    pod_spec([container("ledger", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/ledger:4.2.0",
                                        ports=[("grpc", 9090)], cpu="500m", memory="1Gi")])),
        app("batch", "reports", 2, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/batch/reports:1.9.0"),
        aws_node(9), kube_proxy(9),
        pdb("kube-system", "coredns", {"matchLabels": {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}}, 2, max_unavailable=1),
        pdb("istio-system", "istiod", {"matchLabels": {"app": "istiod", "istio": "pilot"}}, 2, min_available=1),
        pdb("shop", "web", sel("web", "shop"), 6, max_unavailable=1),
        pdb("shop", "cart", sel("cart", "shop"), 3, min_available=2),
        pdb("payments", "ledger", sel("ledger", "payments"), 3, max_unavailable=1),
        hpa("istio-system", "istiod", "istiod", 2, 5, 2),
    ]
    return listing(items)


def karpenter():
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    al2023 = "Amazon Linux 2023.4.20240528"
    nodes = [node("ip-192-168-%d-%d.ec2.internal" % (10 + i, 40 + i), zones[i % 2], 29, nodegroup="karpenter-system",
                  image="ami-05e1ef9b8ed5b0d4f", itype="m6i.large", os_image=al2023, kubelet="v1.30.0-eks-036c24b",
                  cpu="2", mem="7869308Ki",
                  taints=[{"effect": "NoSchedule", "key": "CriticalAddonsOnly", "value": "true"}]) for i in range(2)]
    for i, itype in enumerate(["c6i.2xlarge", "m6i.2xlarge", "c6a.2xlarge", "m6a.2xlarge", "c6i.2xlarge"]):
        nodes.append(node("ip-192-168-%d-%d.ec2.internal" % (30 + i % 3, 120 + i), zones[i % 3], 58, nodepool="default",
                          itype=itype, os_image=al2023, kubelet="v1.30.0-eks-036c24b", cpu="8", mem="31695248Ki"))
    nodes.append(node("ip-192-168-40-17.ec2.internal", "us-east-1b", 58, nodepool="gpu", itype="g5.2xlarge",
                      os_image=al2023, kubelet="v1.30.0-eks-036c24b", cpu="8", mem="32210156Ki",
                      taints=[{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "true"}]))
    critical = [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
    on_system = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "eks.amazonaws.com/nodegroup", "operator": "In", "values": ["karpenter-system"]}]}]}}}
    karp_labels = {"app.kubernetes.io/instance": "karpenter", "app.kubernetes.io/name": "karpenter"}
    items = nodes + [
        namespace("default"), namespace("kube-system"), namespace("kube-public"), namespace("kube-node-lease"),
        namespace("istio-system"), namespace("karpenter"),
        namespace("storefront", {"istio-injection": "enabled"}),
        namespace("ml", {"istio-injection": "enabled"}),
        coredns(),
        deployment("karpenter", "karpenter", 2, karp_labels, pod_spec(
            [container("controller", "public.ecr.aws/karpenter/controller:1.0.1",
                       env=env(CLUSTER_NAME="shop-us-east-1", BATCH_MAX_DURATION="10s") + FIELD_ENV,
                       ports=[("http-metrics", 8080), ("webhook-metrics", 8001)], cpu="1", memory="1Gi")],
            affinity=on_system, tolerations=critical, service_account="karpenter",
            priority_class="system-cluster-critical")),
        istiod("1.22.1-distroless", 1, [], node_selector=None),
        app("storefront", "frontend", 8, "ghcr.io/example/storefront/frontend:3.14.0"),
        app("storefront", "catalog", 4, "ghcr.io/example/storefront/catalog:3.14.0"),
        statefulset("storefront", "redis", 3, {"app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "storefront"},
                    pod_spec([container("redis", "docker.io/library/redis:7.2.4", ports=[("redis", 6379)])]),
                    storage="8Gi"),
        app("ml", "trainer", 1, "ghcr.io/example/ml/trainer:0.9.2",
            node_selector={"karpenter.sh/nodepool": "gpu"},
            tolerations=[{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]),
        aws_node(8), kube_proxy(8),
        daemonset("kube-system", "nvidia-device-plugin", {"name": "nvidia-device-plugin-ds"}, pod_spec(
            [container("nvidia-device-plugin-ctr", "nvcr.io/nvidia/k8s-device-plugin:v0.15.0", cpu="10m", memory="32Mi")],
            node_selector={"karpenter.sh/nodepool": "gpu"},
            tolerations=[{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}],
            priority_class="system-node-critical"), 1),
        pdb("kube-system", "coredns", {"matchLabels": {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}}, 2, max_unavailable=1),
        pdb("karpenter", "karpenter", {"matchLabels": karp_labels}, 2, max_unavailable=1),
        pdb("storefront", "frontend", sel("frontend", "storefront"), 8, max_unavailable="25%"),
        pdb("storefront", "redis", sel("redis", "storefront"), 3, min_available=2),
        hpa("istio-system", "istiod", "istiod", 1, 5, 1),
        hpa("storefront", "frontend", "frontend", 4, 20, 8),
    ]
    return listing(items)


def mixed_injection():
    zones = ["ap-southeast-2a", "ap-southeast-2b"]
    nodes = [node("ip-172-31-%d-%d.ap-southeast-2.compute.internal" % (1 + i % 2, 10 + i), zones[i % 2], 110,
                  nodegroup="general", image="ami-0f2d7b1a3c9e84d65", itype="m6i.xlarge", kubelet="v1.28.8-eks-ae9a62a")
             for i in range(4)]
    # Self-managed nodes (an Auto Scaling group of their own): no node group label.
    nodes += [node("ip-172-31-9-%d.ap-southeast-2.compute.internal" % (200 + i), zones[i], 58, itype="r5.large",
                   kubelet="v1.28.8-eks-ae9a62a", cpu="2", mem="15896904Ki") for i in range(2)]
    istio_csr_labels = {"app": "cert-manager-istio-csr"}
    items = nodes + [
        namespace("default"), namespace("kube-system"), namespace("kube-public"), namespace("kube-node-lease"),
        namespace("istio-system"), namespace("cert-manager"),
        namespace("checkout", {"istio-injection": "enabled"}),
        namespace("search", {"istio.io/rev": "default"}),
        namespace("legacy", {"istio-injection": "disabled"}),
        namespace("tools"),
        coredns(),
        istiod("1.21.2", 2, env(ENABLE_CA_SERVER="false",
                                CA_ADDR="cert-manager-istio-csr.cert-manager.svc:443")),
        deployment("cert-manager", "cert-manager", 1, {"app.kubernetes.io/instance": "cert-manager", "app.kubernetes.io/name": "cert-manager"},
                   pod_spec([container("cert-manager-controller", "quay.io/jetstack/cert-manager-controller:v1.14.4",
                                       env=FIELD_ENV, ports=[("http-metrics", 9402)])], service_account="cert-manager")),
        deployment("cert-manager", "cert-manager-istio-csr", 2, istio_csr_labels, pod_spec(
            [container("cert-manager-istio-csr", "quay.io/jetstack/cert-manager-istio-csr:v0.9.0",
                       args=["--log-level=1", "--certificate-namespace=istio-system", "--issuer-name=istio-ca",
                             "--issuer-kind=AWSPCAIssuer", "--issuer-group=awspca.cert-manager.io"],
                       ports=[("grpc", 6443), ("metrics", 9402)])], service_account="cert-manager-istio-csr")),
        # istio-csr's CertificateRequests are signed by AWS Private CA.
        deployment("cert-manager", "aws-privateca-issuer", 1, {"app.kubernetes.io/name": "aws-privateca-issuer"},
                   pod_spec([container("aws-privateca-issuer", "public.ecr.aws/k1n1h4h4/cert-manager-aws-privateca-issuer:v1.9.1",
                                       ports=[("http", 8080)])], service_account="aws-privateca-issuer")),
        # Injected by the namespace label, one opting out by annotation.
        app("checkout", "api", 4, "registry.example.com/checkout/api:5.1.0"),
        app("checkout", "migrations", 1, "registry.example.com/checkout/migrations:5.1.0",
            tpl_annotations={"sidecar.istio.io/inject": "false"}),
        # A revision label on the namespace.
        app("search", "indexer", 3, "registry.example.com/search/indexer:2.0.7"),
        statefulset("search", "opensearch", 3, {"app.kubernetes.io/name": "opensearch", "app.kubernetes.io/part-of": "search"},
                    pod_spec([container("opensearch", "docker.io/opensearchproject/opensearch:2.13.0",
                                        ports=[("http", 9200), ("transport", 9300)], cpu="1", memory="4Gi")],
                             node_selector={"node.kubernetes.io/instance-type": "r5.large"}), storage="100Gi"),
        # Injection disabled by the namespace, whatever the pod says.
        app("legacy", "monolith", 2, "registry.example.com/legacy/monolith:11.4",
            extra_tpl_labels={"sidecar.istio.io/inject": "true"}),
        # No namespace label: the pod label selects the webhook.
        app("tools", "grafana", 1, "docker.io/grafana/grafana:10.4.2",
            extra_tpl_labels={"sidecar.istio.io/inject": "true"}),
        app("tools", "prometheus", 1, "quay.io/prometheus/prometheus:v2.51.2"),
        aws_node(6), kube_proxy(6),
        daemonset("tools", "node-exporter", {"app.kubernetes.io/name": "node-exporter"}, pod_spec(
            [container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.0", ports=[("metrics", 9100)])],
            host_network=True, tolerations=TOLERATE_ALL), 6),
        pdb("kube-system", "coredns", {"matchLabels": {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}}, 2, max_unavailable=1),
        pdb("istio-system", "istiod", {"matchLabels": {"app": "istiod", "istio": "pilot"}}, 2, min_available=1),
        pdb("checkout", "api", sel("api", "checkout"), 4, min_available="50%"),
        pdb("search", "indexer", sel("indexer", "search"), 3, max_unavailable="34%"),
        pdb("search", "opensearch",
            {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["opensearch"]}]},
            3, max_unavailable="20%"),
        pdb("cert-manager", "cert-manager-istio-csr", {"matchLabels": istio_csr_labels}, 2, min_available=1),
        hpa("istio-system", "istiod", "istiod", 2, 10, 2),
    ]
    return listing(items)


def malformed_object():
    nodes = [node("ip-10-1-0-%d.eu-central-1.compute.internal" % (10 + i), "eu-central-1a", 58, nodegroup="main",
                  image="ami-0a1b2c3d4e5f60718") for i in range(2)]
    bad = app("web", "broken", 1, "nginx:1.25")
    bad["spec"]["replicas"] = "three"
    bad_pdb = pdb("web", "site", sel("site", "web"), 2, max_unavailable="1")
    bad_pdb["spec"]["maxUnavailable"] = "half"
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta("Service", "site", "web", labels={"app.kubernetes.io/name": "site"}),
        "spec": {"clusterIP": "172.20.14.7", "clusterIPs": ["172.20.14.7"], "internalTrafficPolicy": "Cluster",
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                 "selector": sel("site", "web")["matchLabels"], "sessionAffinity": "None", "type": "ClusterIP"},
        "status": {"loadBalancer": {}},
    }
    items = nodes + [
        namespace("default"), namespace("kube-system"), namespace("istio-system"),
        namespace("web", {"istio-injection": "enabled"}),
        istiod("1.19.10", 1, []),
        app("web", "site", 2, "nginx:1.25"),
        bad,
        service,
        bad_pdb,
        kube_proxy(2),
    ]
    return listing(items)


def main():
    for name, f in [("eks-managed", eks_managed), ("karpenter", karpenter),
                    ("mixed-injection", mixed_injection), ("malformed-object", malformed_object)]:
        RV[0] = 4_000_000
        path = HERE / (name + ".json")
        path.write_text(json.dumps(f(), indent=4) + "\n")
        print("wrote", path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path, file=sys.stderr)


if __name__ == "__main__":
    main()
