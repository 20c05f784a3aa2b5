package system.log_test

import data.system.log

test_allow_masks_secret_values_of_object_and_current if {
	log.mask == {"/input/object/data", "/input/object/stringData", "/input/current/data", "/input/current/stringData"}
}
