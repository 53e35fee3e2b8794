#!/usr/bin/env python3
"""Validates deploy/*.yaml offline.

Kubernetes kinds: against the OpenAPI schemas that the `kubernetes-validate` package (PyPI)
bundles, strictly (an unknown field is an error), for the oldest and newest Kubernetes versions
we claim. The Prometheus Operator kinds (PodMonitor, ServiceMonitor) have no schema there: they
are checked against the subset of their CRD schema that the manifests use (written from
prometheus-operator's `monitoring.coreos.com_podmonitors.yaml` and
`monitoring.coreos.com_servicemonitors.yaml`, v1), with unknown fields refused. Then the
manifests are checked against each other: selectors match the DaemonSet's pod labels, ports
name a container port, the Job and the DaemonSet add the same capabilities.

Usage: validate-deploy.py [DIR]   (run with the Python of a venv holding kubernetes-validate;
scripts/test.sh makes one)
"""

import glob
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

VERSIONS = ["1.29.0", "1.37.0"]

RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "targetLabel": {"type": "string"},
        "action": {"type": "string"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
    },
}
ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port"],
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
        "scrapeTimeout": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
        "relabelings": {"type": "array", "items": RELABEL},
    },
}
SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def monitor(kind, endpoints_key):
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", endpoints_key],
                "properties": {
                    "selector": SELECTOR,
                    endpoints_key: {"type": "array", "minItems": 1, "items": ENDPOINT},
                },
            },
        },
    }


CRDS = {
    "PodMonitor": monitor("PodMonitor", "podMetricsEndpoints"),
    "ServiceMonitor": monitor("ServiceMonitor", "endpoints"),
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "deploy")
    docs = []
    errors = []
    for path in sorted(glob.glob(os.path.join(root, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((os.path.basename(path), doc))
    if not docs:
        errors.append(f"no manifests in {root}")
    for name, doc in docs:
        kind = doc.get("kind")
        if kind in CRDS:
            for e in jsonschema.Draft7Validator(CRDS[kind]).iter_errors(doc):
                errors.append(f"{name}: {kind}: {'.'.join(map(str, e.path))}: {e.message}")
            continue
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{name}: {kind} (Kubernetes {version}): {'.'.join(map(str, e.path))}: {e.message}")
            except Exception as e:  # no schema for the kind: a typo in apiVersion or kind
                errors.append(f"{name}: {kind} (Kubernetes {version}): {e}")
    by_kind = {}
    for name, doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append((name, doc))
    ds = by_kind.get("DaemonSet", [(None, None)])[0][1]
    if ds is None:
        errors.append("no DaemonSet")
    else:
        pod = ds["spec"]["template"]
        labels = pod["metadata"]["labels"]
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        if ds["spec"]["selector"]["matchLabels"].items() - labels.items():
            errors.append("daemonset.yaml: the selector does not match the pod labels")
        for kind, key in [("PodMonitor", "podMetricsEndpoints"), ("ServiceMonitor", "endpoints")]:
            for name, doc in by_kind.get(kind, []):
                if doc["spec"]["selector"]["matchLabels"].items() - labels.items():
                    errors.append(f"{name}: the selector matches no exporter pod")
                for ep in doc["spec"].get(key, []):
                    if ep["port"] not in ports and kind == "PodMonitor":
                        errors.append(f"{name}: port {ep['port']} is not a container port ({ports})")
        for name, svc in by_kind.get("Service", []):
            if svc["spec"]["selector"].items() - labels.items():
                errors.append(f"{name}: the Service selects no exporter pod")
            for p in svc["spec"]["ports"]:
                if p.get("targetPort") not in ports:
                    errors.append(f"{name}: targetPort {p.get('targetPort')} is not a container port")
        caps = lambda d: [c["securityContext"]["capabilities"] for c in d["spec"]["template"]["spec"]["containers"]]
        for name, job in by_kind.get("Job", []):
            if caps(job) != caps(ds):
                errors.append(f"{name}: capabilities differ from the DaemonSet's: {caps(job)} vs {caps(ds)}")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"deploy: {len(docs)} manifests valid (Kubernetes {', '.join(VERSIONS)}; PodMonitor/ServiceMonitor against the CRD subset)")


if __name__ == "__main__":
    main()
