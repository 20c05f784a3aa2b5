// Command kube-scheduler builds the upstream scheduler from the Go module proxy, pinned
// with kube-apiserver in this module's go.sum, so sandbox pods are really scheduled (or
// really left Pending when nothing fits).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
