//go:build tools

// Package tools pins promtool in this module's graph, so its go.sum is committed and
// e2e/tools/build.sh builds exactly this version.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
