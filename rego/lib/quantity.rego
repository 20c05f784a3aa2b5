package lib

# Kubernetes quantity syntax: sign, digits with an optional fraction, then either a
# decimal exponent or one suffix. Validated here; units.parse does the arithmetic, since
# it accepts more than Kubernetes does (other cases, spaces, "GB").
# regal ignore:line-length
_quantity_pattern := `^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$`

# units.parse knows no nano and micro suffixes: they divide (exactly, unlike 0.001 *).
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
	is_string(q)
	text := trim_space(q)
	regex.match(_quantity_pattern, text)
	value := _value(text, substring(text, count(text) - 1, 1))
}

# Else-chains, not separate bodies: OPA evaluates every body of a function.
_value(text, last) := units.parse(trim_suffix(text, last)) / divisor if {
	divisor := _divisors[last]
} else := units.parse(text)
