# METADATA
# title: Shared helpers
# description: |
#   Helpers every rule uses: reasons built from a rule's METADATA, enforcement modes,
#   approval requirements, quantities, image references and workload traversal.
package lib

# The modes a rule may run in; an unknown override falls back to the strictest.
modes := {"deny", "needs_approval", "warn", "dryrun"}

# METADATA
# scope: document
# description: |
#   The reason a rule reports, built from the first METADATA block in the rule's
#   annotation chain that carries custom.code: code, severity and default mode come
#   from there, the rule name is the package's last path segment.
reason(chain, msg) := {
	"code": meta.annotations.custom.code,
	"rule": name,
	"severity": meta.annotations.custom.severity,
	"effect": mode(name, meta.annotations.custom.mode),
	"message": msg,
} if {
	meta := _rule_meta(chain)
	name := meta.path[count(meta.path) - 1]
}

# METADATA
# scope: document
# description: |
#   A reason that also states what approval it needs; overrides (min_approvals,
#   ttl_seconds, allow_self_approval) sharpen the defaults in data.params.approval.
approval_reason(chain, msg, overrides) := object.union(
	reason(chain, msg),
	{"approval": object.union(_approval_defaults, _approval_overrides(overrides))},
)

# Broken approval data must not make approval reasons vanish (that would allow):
# the reason stays, and the incomplete requirement fails the decision closed.
_approval_defaults := data.params.approval if _approval_data_given

_approval_defaults := {} if not _approval_data_given

_approval_data_given if is_object(data.params.approval)

_approval_overrides(overrides) := overrides if is_object(overrides)

_approval_overrides(overrides) := {} if not is_object(overrides)

_rule_meta(chain) := [entry |
	some entry in chain
	entry.annotations.custom.code
][0]

# METADATA
# scope: document
# description: |
#   The enforcement mode of a rule: data.params.modes[rule] when set, else the
#   default from the rule's METADATA. A value that is not a mode means deny.
mode(name, default_mode) := _valid_mode(default_mode) if not _overridden(name)

mode(name, _) := _valid_mode(_overrides[name]) if _overridden(name)

_overrides := data.params.modes if _modes_given

_overrides := {} if not _modes_given

_modes_given if is_object(data.params.modes)

_overridden(name) if name in object.keys(_overrides)

_valid_mode(value) := value if value in modes

_valid_mode(value) := "deny" if not value in modes
