"""The local topology as native processes: what ``make run``/``make up`` and the tests start
instead of containers (OPA, a sandbox kube-apiserver, a fake Palette API)."""
