package rules.external_services_test

import data.lib_test
import data.rules.external_services

_service(spec, annotations) := lib_test.apply({
	"apiVersion": "v1",
	"kind": "Service",
	"metadata": {"name": "web", "namespace": "dev", "annotations": annotations},
	"spec": spec,
})

test_allow_cluster_ip_service if {
	count(external_services.violation) == 0 with input as _service({"type": "ClusterIP", "ports": [{"port": 80}]}, {})
}

test_allow_internal_load_balancer if {
	inp := _service({"type": "LoadBalancer"}, {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"})
	count(external_services.violation) == 0 with input as inp
}

test_deny_public_load_balancer_needs_approval if {
	some v in external_services.violation with input as _service({"type": "LoadBalancer"}, {})
	v.code == "K8S-NET-001"
	v.effect == "needs_approval"
	v.approval.min_approvals == 1
}

test_deny_load_balancer_with_wrong_annotation_value if {
	inp := _service({"type": "LoadBalancer"}, {"service.beta.kubernetes.io/aws-load-balancer-internal": "false"})
	count(external_services.violation) == 1 with input as inp
}

test_deny_external_ips_even_when_internal if {
	inp := _service(
		{"type": "LoadBalancer", "externalIPs": ["203.0.113.7"]},
		{"networking.gke.io/load-balancer-type": "Internal"},
	)
	count(external_services.violation) == 1 with input as inp
}
