"""Drives the real Helm v4 engine (helm-python-sdk) against the mmf-e2e test API server.

Usage: drive.py KUBECONFIG CHART_DIR STEP [VALUES_JSON]
The namespace is $MMF_E2E_NAMESPACE (default: "default").
STEP is install | upgrade | rollback | uninstall | history. Prints one JSON object.
"""
import json
import os
import sys

import helm_python as helm

kubeconfig, chart, step = sys.argv[1], sys.argv[2], sys.argv[3]
values = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None

with helm.Config(kubeconfig_path=kubeconfig, namespace=os.environ.get("MMF_E2E_NAMESPACE", "default")) as cfg:
    if step == "install":
        rel = cfg.install(chart, "demo", values, wait="watcher", timeout=60)
    elif step == "upgrade":
        rel = cfg.upgrade(chart, "demo", values, wait="watcher", timeout=60)
    elif step == "rollback":
        cfg.rollback("demo", version=1, wait="watcher", timeout=60)
        rel = cfg.status("demo")
    elif step == "uninstall":
        rel = cfg.uninstall("demo", wait="watcher", timeout=60)
    elif step == "history":
        rel = {"revisions": [[r["revision"], r["status"]] for r in cfg.history("demo")]}
    else:
        raise SystemExit(f"unknown step {step}")
    if isinstance(rel, dict):
        rel = {k: v for k, v in rel.items() if k in ("name", "revision", "status", "info", "revisions", "release")}
    print(json.dumps(rel, default=str))
