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
quantity(q) := value if {
	# Strings first (manifests carry quantities as strings): trim_space fails on
	# anything else, and the else-chain goes on.
	text := trim_space(q)
	regex.match(_quantity_pattern, text)
	value := units.parse(text)
} else := value if {
	# units.parse knows no nano and micro suffixes: it fails on them, and they divide
	# here (exactly, unlike 0.001 *). The pattern allows at most one suffix.
	text := trim_space(q)
	regex.match(_quantity_pattern, text)
	value := units.parse(trim_right(text, "nu")) / _divisors[substring(text, count(text) - 1, 1)]
} else := q if {
	is_number(q)
}
