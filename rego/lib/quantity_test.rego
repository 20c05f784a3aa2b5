package lib_test

import data.lib

test_allow_plain_numbers_and_strings if {
	lib.quantity(2) == 2
	lib.quantity("2") == 2
	lib.quantity("0.5") == 0.5
	lib.quantity(".5") == 0.5
	lib.quantity("+3") == 3
	lib.quantity("1.") == 1
}

test_allow_decimal_suffixes if {
	lib.quantity("500m") == 0.5
	lib.quantity("250u") == 0.00025
	lib.quantity("100n") == 0.0000001
	lib.quantity("2k") == 2000
	lib.quantity("1M") == 1000000
	lib.quantity("1G") == 1000000000
	lib.quantity("1T") == 1000000000000
	lib.quantity("1P") == 1000000000000000
	lib.quantity("1E") == 1000000000000000000
}

test_allow_binary_suffixes if {
	lib.quantity("128Mi") == 134217728
	lib.quantity("1Gi") == 1073741824
	lib.quantity("1Ki") == 1024
	lib.quantity("1Ti") == 1099511627776
	lib.quantity("1Pi") == 1125899906842624
	lib.quantity("1Ei") == 1152921504606846976
	lib.quantity("1.5Gi") == 1610612736
}

test_allow_exponents if {
	lib.quantity("1e3") == 1000
	lib.quantity("1E3") == 1000
	lib.quantity("2e-3") == 0.002
	lib.quantity("1.5e+2") == 150
}

test_allow_surrounding_space if {
	lib.quantity(" 1Gi ") == 1073741824
}

test_deny_invalid_quantities if {
	not lib.quantity("")
	not lib.quantity("abc")
	not lib.quantity("1GB")
	not lib.quantity("1 Gi")
	not lib.quantity("1gi")
	not lib.quantity("--1")
	not lib.quantity("1e")
	not lib.quantity(".")
	not lib.quantity(true)
	not lib.quantity(null)
	not lib.quantity(["1"])
}

test_allow_comparisons_across_units if {
	lib.quantity("1Gi") > lib.quantity("1G")
	lib.quantity("1000m") == lib.quantity("1")
}
