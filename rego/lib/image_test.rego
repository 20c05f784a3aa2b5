package lib_test

import data.lib

test_allow_docker_hub_short_names if {
	lib.image("nginx:1.27") == {
		"registry": "docker.io",
		"repository": "library/nginx",
		"tag": "1.27",
		"digest": "",
		"location": "docker.io/library/nginx",
	}
	lib.image("bitnami/redis").location == "docker.io/bitnami/redis"
	lib.image("index.docker.io/nginx").repository == "library/nginx"
}

test_allow_registry_with_port_and_digest if {
	digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	parsed := lib.image(concat("@", ["Registry.Example.com:5000/team/app:v1", digest]))
	parsed.registry == "registry.example.com:5000"
	parsed.repository == "team/app"
	parsed.tag == "v1"
	parsed.digest == digest
}

test_allow_localhost_registry if {
	lib.image("localhost/app:1").registry == "localhost"
}

test_deny_invalid_references if {
	not lib.image("")
	not lib.image("UPPER/case:1")
	not lib.image("registry.example.com/app:")
	not lib.image("registry.example.com/../app:1")
	not lib.image("registry.example.com/app@sha256:short")
	not lib.image("app name:1")
	not lib.image(42)
}

test_allow_image_from_matching_entries if {
	lib.image_from(lib.image("registry.example.com/team/app:1"), "registry.example.com")
	lib.image_from(lib.image("ghcr.io/acme/app:1"), "ghcr.io/acme")
	lib.image_from(lib.image("ghcr.io/acme/app:1"), "GHCR.io/acme/")
	lib.image_from(lib.image("nginx:1.27"), "docker.io/library")
}

test_deny_image_from_prefix_tricks if {
	not lib.image_from(lib.image("registry.example.com.evil.io/x:1"), "registry.example.com")
	not lib.image_from(lib.image("registry.example.com:5000/x:1"), "registry.example.com")
	not lib.image_from(lib.image("ghcr.io/acme-evil/app:1"), "ghcr.io/acme")
	not lib.image_from(lib.image("evil.io/registry.example.com/app:1"), "registry.example.com")
	not lib.image_from(lib.image("bitnami/redis:7"), "docker.io/library")
}

test_allow_dotless_registry_with_port if {
	lib.image("buildhost:5000/app:1") == {
		"registry": "buildhost:5000",
		"repository": "app",
		"tag": "1",
		"digest": "",
		"location": "buildhost:5000/app",
	}
}

test_allow_longest_tag_and_shortest_digest if {
	lib.image(concat(":", ["registry.example.com/app", _letters(128)])).tag == _letters(128)
	digest := "sha256:0123456789abcdef0123456789abcdef"
	lib.image(concat("@", ["registry.example.com/app", digest])).digest == digest
}

test_deny_overlong_tag_and_short_digest if {
	not lib.image(concat(":", ["registry.example.com/app", _letters(129)]))
	not lib.image("registry.example.com/app@sha256:0123456789abcdef")
}

test_allow_tag_of_128_characters if {
	lib.image(concat(":", ["registry.example.com/app", _letters(128)])).tag == _letters(128)
}

_letters(n) := concat("", ["a" | some _ in numbers.range(1, n)])
