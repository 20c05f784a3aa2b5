package lib

# METADATA
# scope: document
# description: The action changes something (write or delete), on any backend.
change if input.effect in {"write", "delete"}

# METADATA
# scope: document
# description: A Kubernetes write that carries the object as it would be written.
k8s_object_write if {
	input.backend == "kubernetes"
	input.effect == "write"
	is_object(input.object)
}

# METADATA
# scope: document
# description: A Kubernetes write or delete.
k8s_change if {
	input.backend == "kubernetes"
	change
}

# METADATA
# scope: document
# description: |
#   The kind this action is about, from the target or else the object, compared
#   case-insensitively because discovery and manifests may spell it differently.
kind := lower(input.target.kind) if is_string(input.target.kind)

else := lower(input.object.kind) if is_string(input.object.kind)

# METADATA
# description: |
#   The target names a kind. Rules negate this rule rather than writing
#   `not is_string(input.target.kind)`: OPA evaluates a missing field inside a negated
#   call as undefined, so that expression would never be true.
has_target_kind if is_string(input.target.kind)

# METADATA
# scope: document
# description: |
#   The target is in a production environment: the target's environment (from the
#   namespace label or Palette cluster tag), the environment label on the object or
#   the live object, or the environment data.params.clusters gives the target's
#   cluster matches one of data.params.production.environments. Any one of them
#   makes it production: the most restrictive wins.
production if lower(input.target.environment) in _production_environments

production if cluster_production

production if lower(input.object.metadata.labels[data.params.production.environment_label]) in _production_environments

production if lower(input.current.metadata.labels[data.params.production.environment_label]) in _production_environments

_production_environments contains lower(env) if some env in data.params.production.environments

# METADATA
# scope: document
# description: The target's name for messages, or a placeholder when it has none.
default target_name := "<unnamed>"

target_name := input.target.name if is_string(input.target.name)

# METADATA
# scope: document
# description: |
#   Glob match where "*" matches any run of characters, "/" and "." included: null
#   delimiters, since [] would mean ".".
matches(pattern, value) if glob.match(pattern, null, value)

# METADATA
# scope: document
# description: A string as a regular expression that matches it literally.
regex_literal(text) := regex.replace(text, `[.\\+*?()|\[\]{}^$]`, `\$0`)

# METADATA
# scope: document
# description: |
#   One regular expression that matches where any of the patterns matches, and that
#   matches nothing when there are none: joined as they are, no patterns would give the
#   empty expression, which matches everything.
any_of(patterns) := concat("", ["(?:", concat(")|(?:", patterns), ")"]) if count(patterns) > 0

else := `[^\x00-\x{10FFFF}]`
