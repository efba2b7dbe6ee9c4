#!/usr/bin/env python3
"""Regenerates the recorded AdmissionReview requests in this folder (the shape kube-apiserver
sends: admission.k8s.io/v1, request.object as stored after defaulting). Run from the repo root:
    python3 tests/data/admission/generate.py
"""
import copy
import json
import pathlib

import yaml

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parents[2]
PLUGIN = yaml.safe_load((ROOT / "plugins/production_payment_service/plugin.yaml").read_text())
SERVICE = yaml.safe_load((ROOT / "plugins/production_payment_service/payment-service.yaml").read_text())
GROUP, VERSION = "mmf.marty.dev", "v1alpha1"


def stored(obj, namespace, uid, generation=1):
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta["namespace"] = namespace
    meta["uid"] = uid
    meta["generation"] = generation
    meta["creationTimestamp"] = "2026-11-25T12:00:00Z"
    return obj


def review(uid, kind, plural, namespace, obj, operation="CREATE", old=None, dry_run=False,
           group=GROUP, version=VERSION):
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": plural}
    options = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}.get(operation, "DeleteOptions")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": (obj or old or {}).get("metadata", {}).get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"kind": options, "apiVersion": "meta.k8s.io/v1"},
        },
    }


def write(name, value):
    (HERE / name).write_text(json.dumps(value, indent=2) + "\n")


signed = stored(PLUGIN, "prod", "0b6f0e55-1111-4c1e-9e0a-000000000001")
write("plugin-create-compliant.json",
      review("7f1c9a52-0001-4d7e-8a11-3b2f00000001", "MmfPlugin", "mmfplugins", "prod", signed))

unsigned = copy.deepcopy(signed)
del unsigned["spec"]["signature"]
unsigned["spec"]["image"] = "ghcr.io/marty-framework/plugins/production-payment:1.0.0"
write("plugin-create-unsigned.json",
      review("7f1c9a52-0002-4d7e-8a11-3b2f00000002", "MmfPlugin", "mmfplugins", "prod", unsigned))
write("plugin-create-unsigned-dev.json",
      review("7f1c9a52-0003-4d7e-8a11-3b2f00000003", "MmfPlugin", "mmfplugins", "dev", unsigned))
write("plugin-create-unsigned-dry-run.json",
      review("7f1c9a52-0004-4d7e-8a11-3b2f00000004", "MmfPlugin", "mmfplugins", "prod", unsigned,
             dry_run=True))

tampered = copy.deepcopy(signed)
tampered["spec"]["config"]["fraud_detection"]["review_threshold"] = 999999
write("plugin-create-tampered.json",
      review("7f1c9a52-0005-4d7e-8a11-3b2f00000005", "MmfPlugin", "mmfplugins", "prod", tampered))

updated = copy.deepcopy(signed)
updated["metadata"]["generation"] = 2
updated["spec"]["description"] = "Payments, now with a different description"
write("plugin-update-tampered.json",
      review("7f1c9a52-0006-4d7e-8a11-3b2f00000006", "MmfPlugin", "mmfplugins", "prod", updated,
             operation="UPDATE", old=signed))

relabelled = copy.deepcopy(unsigned)
relabelled["metadata"]["labels"]["team"] = "payments"
write("plugin-update-labels-only.json",
      review("7f1c9a52-0007-4d7e-8a11-3b2f00000007", "MmfPlugin", "mmfplugins", "prod", relabelled,
             operation="UPDATE", old=unsigned))

service = stored(SERVICE, "prod", "0b6f0e55-1111-4c1e-9e0a-000000000002")
write("service-create-compliant.json",
      review("7f1c9a52-0008-4d7e-8a11-3b2f00000008", "MmfService", "mmfservices", "prod", service))
big = copy.deepcopy(service)
big["spec"]["resources"]["limits"]["memory"] = "1Gi"
write("service-create-over-memory.json",
      review("7f1c9a52-0009-4d7e-8a11-3b2f00000009", "MmfService", "mmfservices", "prod", big))

deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "prod"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}
write("wrong-kind.json",
      review("7f1c9a52-0010-4d7e-8a11-3b2f00000010", "Deployment", "deployments", "prod", deployment,
             group="apps", version="v1"))

missing = review("7f1c9a52-0011-4d7e-8a11-3b2f00000011", "MmfPlugin", "mmfplugins", "prod", None)
missing["request"]["name"] = "production-payment"
write("missing-object.json", missing)

write("delete.json",
      review("7f1c9a52-0012-4d7e-8a11-3b2f00000012", "MmfPlugin", "mmfplugins", "prod", None,
             operation="DELETE", old=unsigned))

wrong_type = copy.deepcopy(signed)
wrong_type["spec"]["version"] = 3
write("plugin-create-wrong-type.json",
      review("7f1c9a52-0013-4d7e-8a11-3b2f00000013", "MmfPlugin", "mmfplugins", "prod", wrong_type))

write("plugin-create-unlabelled-namespace.json",
      review("7f1c9a52-0014-4d7e-8a11-3b2f00000014", "MmfPlugin", "mmfplugins", "fresh", unsigned))
write("plugin-create-unknown-environment.json",
      review("7f1c9a52-0015-4d7e-8a11-3b2f00000015", "MmfPlugin", "mmfplugins", "qa", signed))
write("plugin-create-unsigned-staging.json",
      review("7f1c9a52-0016-4d7e-8a11-3b2f00000016", "MmfPlugin", "mmfplugins", "stage", unsigned))
