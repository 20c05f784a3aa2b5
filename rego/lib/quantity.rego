package lib

# Kubernetes quantity syntax: sign, digits with an optional fraction, then either a
# decimal exponent or one suffix. Validated here; units.parse does the arithmetic, since
# it accepts more than Kubernetes does (other cases, spaces, "GB").
# regal ignore:line-length
_quantity_pattern := `^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$`

_divisors := {"n": 1000000000, "u": 1000000}

# METADATA
# scope: document
# description: |
#   The value of a Kubernetes resource quantity ("500m", "2", "128Mi", "1Gi", "1e3")
#   as a number in base units; a JSON number is taken as it is. Undefined for
#   anything else, so callers can tell an invalid quantity apart.
quantity(q) := q if {
	is_number(q)
} else := value if {
	text := trim_space(q)
	regex.match(_quantity_pattern, text)

	# units.parse knows no nano and micro suffixes: the pattern allows at most one
	# suffix, so trimming "n" and "u" and dividing (exactly, unlike 0.001 *) handles
	# them in the one body every quantity passes through.
	value := units.parse(trim_right(text, "nu")) / object.get(_divisors, substring(text, count(text) - 1, 1), 1)
}
