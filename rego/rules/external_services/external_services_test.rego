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

test_deny_node_port_service_needs_approval if {
	inp := _service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, {})
	reasons := external_services.violation with input as inp
	{r.message | some r in reasons} == {"Service 'web' of type NodePort opens 30080 on every node"}
	every r in reasons {
		r.effect == "needs_approval"
	}
}

test_deny_node_port_service_without_allocated_ports if {
	inp := _service({"type": "NodePort", "ports": [{"port": 80}]}, {})
	expected := {"Service 'web' of type NodePort opens its ports on every node"}
	{r.message | some r in external_services.violation} == expected with input as inp
}

test_deny_explicit_node_port_on_another_type if {
	inp := _service({"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30080}]}, {})
	{r.message | some r in external_services.violation} == {"Service 'web' sets nodePort 30080"} with input as inp
}

test_allow_internal_load_balancer_with_its_node_ports if {
	# The apiserver allocates node ports to every LoadBalancer: they are its plumbing.
	inp := _service(
		{"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 31000}]},
		{"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
	)
	count(external_services.violation) == 0 with input as inp
}

_ingress(rules, spec) := lib_test.apply({
	"apiVersion": "networking.k8s.io/v1",
	"kind": "Ingress",
	"metadata": {"name": "web", "namespace": "dev"},
	"spec": object.union({"rules": rules}, spec),
})

_backend := {"service": {"name": "web", "port": {"number": 80}}}

_rule(host) := {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": _backend}]}}

test_deny_ingress_publishing_a_new_host if {
	reasons := external_services.violation with input as _ingress([_rule("shop.example.com")], {})
	{r.message | some r in reasons} == {"Ingress 'web' publishes new host(s) shop.example.com"}
}

test_deny_ingress_rule_without_host_publishes_every_host if {
	rule := object.remove(_rule("x"), ["host"])
	expected := {"Ingress 'web' publishes new host(s) *"}
	{r.message | some r in external_services.violation} == expected with input as _ingress([rule], {})
}

test_deny_ingress_default_backend_publishes_every_host if {
	inp := _ingress([], {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}})
	{r.message | some r in external_services.violation} == {"Ingress 'web' publishes new host(s) *"} with input as inp
}

test_allow_ingress_changing_paths_of_a_published_host if {
	before := _ingress([_rule("shop.example.com")], {})
	after := json.patch(before, [
		{"op": "replace", "path": "/object/spec/rules/0/http/paths/0/path", "value": "/v2"},
		{"op": "replace", "path": "/current", "value": before.object},
	])
	count(external_services.violation) == 0 with input as after
}

test_deny_ingress_adding_a_host_to_published_ones if {
	before := _ingress([_rule("shop.example.com")], {})
	both := _ingress([_rule("shop.example.com"), _rule("admin.example.com")], {})
	after := json.patch(both, [{"op": "replace", "path": "/current", "value": before.object}])
	expected := {"Ingress 'web' publishes new host(s) admin.example.com"}
	{r.message | some r in external_services.violation} == expected with input as after
}

test_allow_ingress_of_an_internal_class if {
	inp := _ingress([_rule("shop.internal")], {"ingressClassName": "internal-nginx"})
	count(external_services.violation) == 0 with input as inp
		with data.params.rules.external_services.internal_ingress_classes as ["internal-nginx"]
	count(external_services.violation) == 1 with input as inp
	legacy := json.patch(_ingress([_rule("shop.internal")], {}), [{
		"op": "add", "path": "/object/metadata/annotations",
		"value": {"kubernetes.io/ingress.class": "internal-nginx"},
	}])
	count(external_services.violation) == 0 with input as legacy
		with data.params.rules.external_services.internal_ingress_classes as ["internal-nginx"]
}

_gateway_api(kind, spec) := lib_test.apply({
	"apiVersion": "gateway.networking.k8s.io/v1",
	"kind": kind,
	"metadata": {"name": "web", "namespace": "dev"},
	"spec": spec,
})

test_deny_gateway_listener_hostnames if {
	inp := _gateway_api("Gateway", {
		"gatewayClassName": "public",
		"listeners": [
			{"name": "https", "hostname": "shop.example.com", "port": 443, "protocol": "HTTPS"},
			{"name": "http", "port": 80, "protocol": "HTTP"},
		],
	})
	expected := {"Gateway 'web' publishes new host(s) *, shop.example.com"}
	{r.message | some r in external_services.violation} == expected with input as inp
}

test_deny_http_route_hostnames if {
	inp := _gateway_api("HTTPRoute", {"parentRefs": [{"name": "public"}], "hostnames": ["shop.example.com"]})
	expected := {"HTTPRoute 'web' publishes new host(s) shop.example.com"}
	{r.message | some r in external_services.violation} == expected with input as inp
}

test_deny_route_without_hostnames_when_created if {
	inp := _gateway_api("TCPRoute", {"parentRefs": [{"name": "public"}]})
	{r.message | some r in external_services.violation} == {"TCPRoute 'web' publishes new host(s) *"} with input as inp
}

test_allow_route_update_that_keeps_its_hostnames if {
	route := _gateway_api("HTTPRoute", {"parentRefs": [{"name": "public"}], "hostnames": ["shop.example.com"]})
	updated := json.patch(route, [
		{"op": "add", "path": "/object/spec/rules", "value": [{"backendRefs": [{"name": "web-v2", "port": 80}]}]},
		{"op": "replace", "path": "/current", "value": route.object},
	])
	count(external_services.violation) == 0 with input as updated
}

test_allow_gateway_of_another_api_group if {
	# Only Gateway API objects are judged here; other meshes' Gateways are out of scope.
	patch := {"op": "replace", "path": "/object/apiVersion", "value": "networking.istio.io/v1"}
	istio := json.patch(_gateway_api("Gateway", {"servers": []}), [patch])
	count(external_services.violation) == 0 with input as istio
}
