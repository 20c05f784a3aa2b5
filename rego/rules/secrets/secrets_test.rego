package rules.secrets_test

import data.lib_test
import data.rules.secrets

_secret := {
	"apiVersion": "v1",
	"kind": "Secret",
	"metadata": {"name": "db", "namespace": "dev"},
	"data": {"password": "sha256:0000"},
}

test_allow_read_of_secret_with_redaction if {
	count(secrets.violation) == 0 with input as lib_test.k8s_read("k8s_get", "get", "Secret")
	inp := lib_test.k8s_read("k8s_list", "list", "Secret")
	secrets.redact == {"/data", "/stringData", "/items/*/data", "/items/*/stringData"} with input as inp
}

test_allow_read_of_config_map_without_redaction if {
	count(secrets.redact) == 0 with input as lib_test.k8s_read("k8s_get", "get", "ConfigMap")
}

test_deny_secret_write_needs_approval if {
	some v in secrets.violation with input as lib_test.apply(_secret)
	v.code == "K8S-SECRET-001"
	v.effect == "needs_approval"
}

test_deny_secret_write_carries_no_redaction if {
	count(secrets.redact) == 0 with input as lib_test.apply(_secret)
}

test_deny_secret_delete if {
	count(secrets.violation) == 1 with input as lib_test.k8s_delete("Secret", "db")
}

test_deny_secret_kind_from_object_when_target_has_none if {
	count(secrets.violation) == 1 with input as json.remove(lib_test.apply(_secret), ["target/kind"])
}
