//go:build tools

// Package tools pins sigs.k8s.io/kwok for `go build sigs.k8s.io/kwok/cmd/kwok`: the kwok
// controller that simulates the sandbox's nodes and the pods scheduled onto them.
//
// Why v0.6.1: it is the last release of the line built against the Kubernetes 1.30 client
// libraries (its go.mod requires k8s.io/* v0.30.4; v0.5.x is on v0.29, v0.7.0 moved to
// v0.33 and Go 1.24), so kwok talks to the v1.30.14 control plane with clients of the same
// minor release, the skew client-go supports. go.mod raises those k8s.io modules to
// v0.30.14, the control plane's patch release; nothing else moved. kwok's other
// requirements (grpc 1.64, prometheus client 1.19, controller-runtime 0.18...) are newer
// than Kubernetes 1.30.14's, which is why kwok has a module of its own: tools/kubernetes'
// go.sum stays exactly the control plane's.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
