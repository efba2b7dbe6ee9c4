//go:build tools

// Package tools keeps the upstream main packages of the control plane in this module's graph;
// build.sh builds them straight from k8s.io/kubernetes, so no main.go of ours is involved.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
