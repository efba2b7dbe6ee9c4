"""Drives the real Helm v4 engine (PyPI helm-python-sdk, which bundles libhelm_c) offline for
tests/chart_*.rs. Prints exactly one JSON object on stdout.

Usage:
  helm_engine.py lint      CHART [--values FILE]... [--set-json JSON]...
  helm_engine.py render    CHART [--name NAME] [--namespace NS] [--values FILE]... [--set-json JSON]...
  helm_engine.py install   CHART --kubeconfig FILE [--name NAME] [--namespace NS] [--values ...] [--set-json ...]
  helm_engine.py upgrade   CHART --kubeconfig FILE [--name NAME] [--namespace NS] [--values ...] [--set-json ...]
  helm_engine.py uninstall CHART --kubeconfig FILE [--name NAME] [--namespace NS]

install/upgrade/uninstall talk to the cluster of KUBECONFIG (the end-to-end tests' test API
server) and wait for the release's resources like `helm --wait`.

Values files and --set-json objects are merged in order like `helm -f a -f b --set-json ...`
(maps deep-merged, anything else replaced). A Helm error prints {"error": "..."} and exits 2.
"""
import argparse
import json
import sys

import helm_python as helm


def merge(into, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["lint", "render", "install", "upgrade", "uninstall"])
    parser.add_argument("--kubeconfig")
    parser.add_argument("chart")
    parser.add_argument("--name", default="mmf-operator")
    parser.add_argument("--namespace", default="mmf-system")
    parser.add_argument("--values", action="append", default=[])
    parser.add_argument("--set-json", action="append", default=[])
    args = parser.parse_args()

    values = {}
    for path in args.values:
        with open(path, encoding="utf-8") as f:
            merge(values, helm.values_from_yaml(f.read()))
    for document in args.set_json:
        merge(values, json.loads(document))

    try:
        if args.step in ("install", "upgrade", "uninstall"):
            with helm.Config(kubeconfig_path=args.kubeconfig, namespace=args.namespace) as cfg:
                if args.step == "install":
                    rel = cfg.install(args.chart, args.name, values, wait="watcher", timeout=60)
                elif args.step == "upgrade":
                    rel = cfg.upgrade(args.chart, args.name, values, wait="watcher", timeout=60)
                else:
                    rel = cfg.uninstall(args.name, wait="watcher", timeout=60)
            if isinstance(rel, dict):
                rel = {k: v for k, v in rel.items() if k in ("name", "revision", "status", "info", "release")}
            out = rel
        elif args.step == "lint":
            out = helm.lint(args.chart, values, strict=True, namespace=args.namespace,
                            kube_version="v1.33.0")
        else:
            with helm.Chart.load(args.chart) as chart:
                # An install validates the values against values.schema.json first; do the same.
                chart.validate_schema(values)
                manifests = chart.render(values, name=args.name, namespace=args.namespace,
                                         is_install=True)
                out = {"manifests": manifests, "crds": chart.crds}
    except helm.HelmError as error:
        print(json.dumps({"error": str(error), "type": type(error).__name__}))
        sys.exit(2)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
