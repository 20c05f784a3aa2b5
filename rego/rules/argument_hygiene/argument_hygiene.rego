# METADATA
# title: Argument hygiene
# description: >-
#   Free-text arguments and target names must not carry shell metacharacters or
#   prompt-injection markers (regular expressions in data). Every string in args is
#   checked, at any depth, and so are object keys; so are the target fields listed in
#   data. The patterns leave label selector syntax (=, ==, !=, !, ",", "in (a,b)")
#   alone. Arguments that carry a configuration document (document_args in data, e.g.
#   Palette pack values YAML, where "|" and "#" are syntax) are checked for prompt-injection
#   markers only. The offending value is never echoed back.
# custom:
#   code: GW-ARGS-001
#   severity: high
#   mode: deny
#   reached_by: ["*"]
package rules.argument_hygiene

import data.lib

_params := data.params.rules.argument_hygiene

_reason := lib.reason_template(rego.metadata.chain())

# One alternation per kind: a single match per text instead of one per pattern; and
# one alternation of both, so a clean text (nearly every one) costs a single match. An
# empty list of patterns checks nothing of its kind.
_shell := lib.any_of(_params.shell_patterns)

_injection := lib.any_of(_params.injection_patterns)

# Built straight from data, not from the two rules above: each rule costs an evaluation
# of its own, and these two are needed only when a text matched.
_any := lib.any_of(array.concat(_params.shell_patterns, _params.injection_patterns))

# Document arguments (globs over the dotted argument path) are exempt from shell checks.
_document(where) if {
	some pattern in _params.document_args
	glob.match(pattern, ["."], where)
}

# Every distinct string in args (values and object keys) and the listed target fields,
# without paths: the same text (a name, a namespace, a kind) often comes twice, and
# nearly every text is clean, so one match per distinct text decides most actions.
_strings contains value if {
	walk(input.args, [_, value])
	is_string(value)
}

_strings contains key if {
	walk(input.args, [_, node])
	is_object(node)
	some key, _ in node
	is_string(key)
}

_strings contains value if {
	some field in _params.target_fields
	value := input.target[field]
	is_string(value)
}

_hits contains text if {
	some text in _strings
	regex.match(_any, text)
}

# [path, text] for every string in args (values and object keys) and the listed target
# fields, built only when some text matched. Paths stay arrays until a check fails:
# formatting them costs more than matching.
_texts contains [array.concat(["args"], path), node] if {
	walk(input.args, [path, node])
	is_string(node)
}

_texts contains [array.concat(["args"], path), key] if {
	walk(input.args, [path, node])
	is_object(node)
	some key, _ in node
	is_string(key)
}

_texts contains [["target", field], value] if {
	some field in _params.target_fields
	value := input.target[field]
	is_string(value)
}

# The texts that match either kind; only these are looked at again.
_suspects contains [path, text] if {
	count(_hits) > 0
	some [path, text] in _texts
	text in _hits
}

_where(path) := concat(".", [sprintf("%v", [part]) | some part in path])

violation contains reason if {
	some [path, text] in _suspects
	regex.match(_shell, text)
	where := _where(path)
	not _document(where)
	reason := object.union(_reason, {"message": sprintf("%s contains shell metacharacters", [where])})
}

violation contains reason if {
	some [path, text] in _suspects
	regex.match(_injection, text)
	msg := sprintf("%s contains a prompt-injection marker", [_where(path)])
	reason := object.union(_reason, {"message": msg})
}
