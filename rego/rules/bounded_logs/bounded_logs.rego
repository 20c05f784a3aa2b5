# METADATA
# title: Bounded logs
# description: >-
#   Log reads carry a max_log_lines obligation (data) so a log dump cannot flood the
#   model's context or carry more than it needs. Asking for more lines than the cap
#   is allowed (the cap applies) with a warning.
# custom:
#   code: OPS-LOGS-001
#   severity: info
#   mode: warn
#   reached_by: [k8s_logs]
package rules.bounded_logs

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

_cap := data.params.rules.bounded_logs.max_log_lines

# The argument names a log tool may use for its line count.
_line_args := ["tail_lines", "tail", "lines", "max_lines", "limit"]

# METADATA
# description: The most log lines a result may carry.
max_log_lines := _cap if input.operation == "logs"

violation contains reason if {
	input.operation == "logs"
	some name in _line_args
	asked := input.args[name]
	is_number(asked)
	asked > _cap
	msg := sprintf("asked for %v log lines; the result is capped at %v", [asked, _cap])
	reason := object.union(_reason, {"message": msg})
}
