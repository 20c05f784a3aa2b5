package lib

# Sub-unit suffixes divide: multiplying by 0.001 would not be exact.
_divisors := {"n": 1000000000, "u": 1000000, "m": 1000}

# Suffix multipliers of Kubernetes resource quantities (binary SI, decimal SI).
_suffixes := {
	"": 1,
	"k": 1000,
	"M": 1000000,
	"G": 1000000000,
	"T": 1000000000000,
	"P": 1000000000000000,
	"E": 1000000000000000000,
	"Ki": 1024,
	"Mi": 1048576,
	"Gi": 1073741824,
	"Ti": 1099511627776,
	"Pi": 1125899906842624,
	"Ei": 1152921504606846976,
}

_quantity_pattern := concat("", [
	`^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))`,
	`(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$`,
])

# METADATA
# scope: document
# description: |
#   The value of a Kubernetes resource quantity ("500m", "2", "128Mi", "1Gi", "1e3")
#   as a number in base units; a JSON number is taken as it is. Undefined for
#   anything else, so callers can tell an invalid quantity apart.
quantity(q) := q if is_number(q)

quantity(q) := value if {
	is_string(q)
	parts := regex.find_all_string_submatch_n(_quantity_pattern, trim_space(q), 1)[0]
	value := _scaled(parts[1], parts[2], parts[3])
}

# A decimal exponent: the mantissa and exponent together form a JSON number.
_scaled(mantissa, exponent, _) := to_number(concat("", [_json_mantissa(mantissa), exponent])) if exponent != ""

_scaled(mantissa, "", suffix) := to_number(_json_mantissa(mantissa)) * _suffixes[suffix]

_scaled(mantissa, "", suffix) := to_number(_json_mantissa(mantissa)) / _divisors[suffix]

# JSON numbers want a digit on both sides of the point and no leading plus sign.
_json_mantissa(m) := n if {
	unsigned := trim_prefix(m, "+")
	with_lead := regex.replace(unsigned, `^(-?)\.`, "${1}0.")
	n := regex.replace(with_lead, `\.$`, "")
}
