// Command kube-controller-manager builds the upstream controller manager from the Go
// module proxy, pinned with kube-apiserver in this module's go.sum, so the sandbox runs
// the same release's controllers (Deployments roll out, namespaces are finalized).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
