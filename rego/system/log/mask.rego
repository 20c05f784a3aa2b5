# METADATA
# title: Decision log masking
# description: >-
#   Defence in depth: the gateway already replaces Secret values by digests before
#   they reach OPA, and OPA still removes data and stringData of the object and the
#   live object from every decision log entry.
package system.log

mask contains "/input/object/data"

mask contains "/input/object/stringData"

mask contains "/input/current/data"

mask contains "/input/current/stringData"
