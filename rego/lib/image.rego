package lib

# An image reference: [domain[:port]/]path[:tag][@algorithm:hex]. The first group may
# also be a path component; _image_parts tells the two apart the way Docker does.
_domain_part := `[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`

_path_part := `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`

_image_pattern := concat("", [
	`^(?:(`, _domain_part, `(?:\.`, _domain_part, `)*(?::[0-9]+)?)/)?`,
	`(`, _path_part, `(?:/`, _path_part, `)*)`,
	`(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?`,
	`(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$`,
])

# METADATA
# scope: document
# description: |
#   An image reference split into {registry, repository, tag, digest}, normalised like
#   the container runtime does: no registry means docker.io, a single-segment Docker Hub
#   path gets "library/", the registry is lower-cased. Undefined for an invalid reference.
image(ref) := parsed if {
	is_string(ref)
	groups := regex.find_all_string_submatch_n(_image_pattern, ref, 1)[0]
	parsed := _image_parts(groups[1], groups[2], groups[3], groups[4])
}

_image_parts(first, rest, tag, digest) := {
	"registry": _hub_alias(lower(first)),
	"repository": _hub_repository(_hub_alias(lower(first)), rest),
	"tag": tag,
	"digest": digest,
} if {
	_is_registry(first)
}

_image_parts(first, rest, tag, digest) := {
	"registry": "docker.io",
	"repository": _hub_repository("docker.io", _joined(first, rest)),
	"tag": tag,
	"digest": digest,
} if {
	not _is_registry(first)
	regex.match(concat("", [`^`, _path_part, `(?:/`, _path_part, `)*$`]), _joined(first, rest))
}

# Docker's rule: the first segment names a registry only with a dot, a port or "localhost".
_is_registry(first) if contains(first, ".")

_is_registry(first) if contains(first, ":")

_is_registry("localhost")

_joined("", rest) := rest

_joined(first, rest) := concat("/", [first, rest]) if first != ""

_hub_alias("index.docker.io") := "docker.io"

_hub_alias(registry) := registry if registry != "index.docker.io"

_hub_repository(registry, path) := concat("/", ["library", path]) if {
	registry == "docker.io"
	not contains(path, "/")
}

_hub_repository(registry, path) := path if registry != "docker.io"

_hub_repository(_, path) := path if contains(path, "/")

# METADATA
# scope: document
# description: |
#   Whether a parsed image comes from an approved location. An entry is a registry
#   ("registry.example.com") or a registry and repository prefix ("ghcr.io/acme"); it
#   matches whole path segments only, so "registry.example.com.evil.io" and
#   "ghcr.io/acme-evil" do not match.
image_from(parsed, entry) if {
	location := concat("/", [parsed.registry, parsed.repository])
	startswith(location, concat("", [_normalised_entry(entry), "/"]))
}

_normalised_entry(entry) := trim_suffix(lower(trim_space(entry)), "/")
