// Command kube-apiserver is a thin wrapper that builds the upstream API server
// from the Go module proxy, so tests get a real apiserver without Docker.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
