# METADATA
# title: Shared helpers
# description: |
#   Helpers every rule uses: reasons built from a rule's METADATA, enforcement modes,
#   approval requirements, quantities, image references and workload traversal.
package lib

# The modes a rule may run in; an unknown override falls back to the strictest.
modes := {"deny", "needs_approval", "warn", "dryrun"}

# The guard rules (custom.guard: true in their METADATA; a test holds the two together):
# they keep the policy itself sound, so they deny whatever data.params.modes says, and
# their findings never count as pre-existing.
guards := {"known_action", "policy_data"}

# METADATA
# scope: document
# description: |
#   The reason a rule reports, without its message, built from the first METADATA block
#   in the rule's annotation chain that carries custom.code: code, severity and default
#   mode come from there, the rule name is the package's last path segment. A rule binds
#   it once, `_reason := lib.reason_template(rego.metadata.chain())`, and reports
#   `object.union(_reason, {"message": msg})`: the template depends on METADATA and data
#   only, so the optimizing bundle build evaluates it, and a reason costs one union
#   instead of ~60 µs of lookups per decision. A rule without a coded METADATA block
#   gets a critical GW-META-001 denial: an undefined template would make its reasons,
#   and so its denials, vanish.
reason_template(chain) := {
	"code": meta.annotations.custom.code,
	"rule": name,
	"severity": meta.annotations.custom.severity,
	"effect": _effect(name, meta.annotations.custom),
} if {
	meta := _rule_meta(chain)
	name := meta.path[count(meta.path) - 1]
} else := {
	"code": "GW-META-001",
	"rule": concat(".", chain[0].path),
	"severity": "critical",
	"effect": "deny",
}

# METADATA
# scope: document
# description: |
#   A reason template that also states what approval the reason needs; overrides
#   (min_approvals, ttl_seconds, allow_self_approval) sharpen the defaults in
#   data.params.approval.
approval_template(chain, overrides) := object.union(
	reason_template(chain),
	{"approval": object.union(_approval_defaults, _approval_overrides(overrides))},
)

# Broken approval data must not make approval reasons vanish (that would allow):
# the reason stays, and the incomplete requirement fails the decision closed.
# Else-chains here and below: OPA evaluates every body of a function or rule, and the
# negated bodies would each test again what the first one tested.
default _approval_defaults := {}

_approval_defaults := data.params.approval if is_object(data.params.approval)

_approval_overrides(overrides) := overrides if is_object(overrides)

else := {}

_rule_meta(chain) := [entry |
	some entry in chain
	entry.annotations.custom.code
][0]

# A guard (custom.guard: true: known_action, policy_data) keeps the policy itself sound:
# it denies whatever data.params.modes says, since a guard in warn or dryrun would let
# malformed actions or data through to rules that cannot judge them.
_effect(name, custom) := "deny" if custom.guard == true

else := mode(name, custom.mode)

# METADATA
# scope: document
# description: |
#   The enforcement mode of a rule: data.params.modes[rule] when set, else the
#   default from the rule's METADATA. A value that is not a mode means deny.
mode(name, default_mode) := _valid_mode(value) if {
	value := _overrides[name]
} else := _valid_mode(default_mode)

default _overrides := {}

_overrides := data.params.modes if is_object(data.params.modes)

_valid_mode(value) := value if value in modes

else := "deny"
