package lib

# An image reference: [registry/]path[:tag][@algorithm:hex]. Docker's rule decides
# whether the first segment is a registry: only with a dot, a port or "localhost";
# "nginx/foo" is a Docker Hub path. The alternation encodes that rule, so one match
# splits the reference. Groups: 1 registry, 2 path, 3 tag, 4 digest.
# A constant, not concat() of named parts: a rule is evaluated again in every query.
# Parts: registry = localhost[:port] | domain with a dot [:port] | host:port; path =
# lower-case components separated by "/" (".", "_", "__", "-" inside); tag of at most 128
# characters; digest with 32 hex digits or more. The lengths are in the pattern, not
# checked after the match: measured in Go, the counted repetitions leave the match as
# fast, and each builtin call they replace costs OPA more than the whole match.
# regal ignore:line-length
_image_pattern := `^(?:(localhost(?::[0-9]+)?|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)+(?::[0-9]+)?|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?:[0-9]+)/)?([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$`

# METADATA
# scope: document
# description: |
#   An image reference split into {registry, repository, tag, digest, location},
#   normalised like the container runtime does: no registry means docker.io, a
#   single-segment Docker Hub path gets "library/", the registry is lower-cased;
#   location is registry/repository. Undefined for an invalid reference.
image(ref) := {
	"registry": registry,
	"repository": repository,
	"tag": tag,
	"digest": digest,
	"location": concat("/", [registry, repository]),
} if {
	is_string(ref)
	[_, host_text, path, tag, digest] := regex.find_all_string_submatch_n(_image_pattern, ref, 1)[0]

	# No registry, or Docker Hub's old index name, is Docker Hub; a single-segment
	# Docker Hub path is an official image under library/.
	host := lower(host_text)
	registry := object.get({"": "docker.io", "index.docker.io": "docker.io"}, host, host)
	repository := concat("", [object.get({"docker.io": {false: "library/"}}, [registry, contains(path, "/")], ""), path])
}

# METADATA
# scope: document
# description: |
#   Whether a parsed image comes from an approved location. An entry is a registry
#   ("registry.example.com") or a registry and repository prefix ("ghcr.io/acme"); it
#   matches whole path segments only, so "registry.example.com.evil.io" and
#   "ghcr.io/acme-evil" do not match.
image_from(parsed, entry) if startswith(parsed.location, approved_prefix(entry))

# METADATA
# scope: document
# description: |
#   What a location must start with to come from an approved entry: the entry
#   trimmed, lower-cased, with exactly one trailing "/". Rules compute these once per
#   decision and test each image against them.
approved_prefix(entry) := concat("", [trim_suffix(lower(trim_space(entry)), "/"), "/"])
