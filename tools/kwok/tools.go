//go:build tools

// Package tools pins sigs.k8s.io/kwok for `go build sigs.k8s.io/kwok/cmd/kwok`: the kwok
// controller that simulates the sandbox's nodes and the pods scheduled onto them.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
