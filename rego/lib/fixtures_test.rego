package lib_test

# Fixtures the rule tests share: well-formed proposed actions that pass every rule (the
# restricted Pod Security profile included), which a test then bends in exactly one way.

sre := {"subject": "alice", "groups": ["sre"], "transport": "stdio", "authenticated": true}

good_container(name) := {
	"name": name,
	"image": "registry.example.com/team/app:1.2.3",
	"securityContext": {
		"runAsNonRoot": true,
		"allowPrivilegeEscalation": false,
		"capabilities": {"drop": ["ALL"]},
		"seccompProfile": {"type": "RuntimeDefault"},
	},
	"resources": {
		"requests": {"cpu": "250m", "memory": "128Mi"},
		"limits": {"cpu": "500m", "memory": "256Mi"},
	},
}

pod_spec(containers) := {"containers": containers}

deployment(name, spec) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": name, "namespace": "dev"},
	"spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
}

cronjob(name, spec) := {
	"apiVersion": "batch/v1",
	"kind": "CronJob",
	"metadata": {"name": name, "namespace": "dev"},
	"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}},
}

pod(name, spec) := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": name, "namespace": "dev"},
	"spec": spec,
}

# A Kubernetes write of obj by an SRE in the dev namespace of the sandbox.
k8s_write(tool, operation, obj) := {
	"version": 1,
	"id": "00000000-0000-0000-0000-000000000001",
	"tool": tool,
	"backend": "kubernetes",
	"operation": operation,
	"effect": "write",
	"target": {
		"cluster": "sandbox",
		"namespace": object.get(obj, ["metadata", "namespace"], null),
		"api_version": obj.apiVersion,
		"kind": obj.kind,
		"name": obj.metadata.name,
		"label_selector": null,
		"all_namespaces": false,
		"environment": "dev",
	},
	"args": {},
	"object": obj,
	"current": null,
	"principal": sre,
	"approvals": [],
	"time": "2026-01-01T12:00:00Z",
}

apply(obj) := k8s_write("k8s_apply", "apply", obj)

# A Kubernetes read of kind in the dev namespace.
k8s_read(tool, operation, kind) := {
	"version": 1,
	"id": "00000000-0000-0000-0000-000000000002",
	"tool": tool,
	"backend": "kubernetes",
	"operation": operation,
	"effect": "read",
	"target": {
		"cluster": "sandbox",
		"namespace": "dev",
		"api_version": "v1",
		"kind": kind,
		"name": "web",
		"label_selector": null,
		"all_namespaces": false,
		"environment": "dev",
	},
	"args": {},
	"object": null,
	"current": null,
	"principal": sre,
	"approvals": [],
	"time": "2026-01-01T12:00:00Z",
}

k8s_delete(kind, name) := {
	"version": 1,
	"id": "00000000-0000-0000-0000-000000000003",
	"tool": "k8s_delete",
	"backend": "kubernetes",
	"operation": "delete",
	"effect": "delete",
	"target": {
		"cluster": "sandbox",
		"namespace": "dev",
		"api_version": "apps/v1",
		"kind": kind,
		"name": name,
		"label_selector": null,
		"all_namespaces": false,
		"environment": "dev",
	},
	"args": {"name": name},
	"object": null,
	"current": {"kind": kind, "metadata": {"name": name, "namespace": "dev"}},
	"principal": sre,
	"approvals": [],
	"time": "2026-01-01T12:00:00Z",
}

# A Palette cluster create with the given machine pools.
palette_create(name, pools) := {
	"version": 1,
	"id": "00000000-0000-0000-0000-000000000004",
	"tool": "palette_create_cluster",
	"backend": "palette",
	"operation": "create_cluster",
	"effect": "write",
	"target": {"cluster": null, "namespace": null, "kind": "SpectroCluster", "name": name, "environment": "dev"},
	"args": {"name": name},
	"object": {
		"metadata": {"name": name, "labels": {"environment": "dev"}},
		"spec": {
			"cloudType": "aws",
			"cloudAccountUid": "acct-1",
			"cloudConfig": {"region": "us-east-1"},
			"machinepoolconfig": pools,
			"profiles": [{"uid": "profile-1"}],
		},
	},
	"current": null,
	"principal": sre,
	"approvals": [],
	"time": "2026-01-01T12:00:00Z",
}

pool(name, size, instance_type) := {
	"poolConfig": {"name": name, "size": size, "labels": [name], "isControlPlane": name == "control-plane"},
	"cloudConfig": {"instanceType": instance_type},
}

palette_delete(uid, environment) := {
	"version": 1,
	"id": "00000000-0000-0000-0000-000000000005",
	"tool": "palette_delete_cluster",
	"backend": "palette",
	"operation": "delete_cluster",
	"effect": "delete",
	"target": {"cluster": uid, "namespace": null, "kind": "SpectroCluster", "name": "edge-1", "environment": environment},
	"args": {"uid": uid},
	"object": null,
	"current": {"metadata": {"name": "edge-1", "uid": uid, "labels": {"environment": environment}}},
	"principal": sre,
	"approvals": [],
	"time": "2026-01-01T12:00:00Z",
}

# The codes of the reasons a rule package reports.
codes(violations) := {v.code | some v in violations}

# doc with the field at the JSON pointer path set to value.
with_field(doc, path, value) := json.patch(doc, [{"op": "add", "path": path, "value": value}])
