//go:build tools

// Package tools pins the kwok controller in this module's graph, so its go.sum is committed and
// build.sh builds exactly these versions.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
