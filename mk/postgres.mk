# PostgreSQL: the second database backend (GATEWAY_DATABASE_URL). The tests and benchmarks
# start a real server from Debian's packages (scripts/system-packages.sh installs them; see
# gateway/local/postgres.py); nothing here needs Docker.
BENCH_TARGETS += bench-replicas
.PHONY: bench-replicas bench-pg-drivers

bench-replicas: setup bundle ## decisions/s with 1 and 3 gateway replicas on PostgreSQL (and 1 on SQLite), interleaved rounds
	$(PY) -m bench.replicas

bench-pg-drivers: python-env ## psycopg 3 vs asyncpg on the queue's statements (installs psycopg into the venv first)
	$(PY) -m pip install --quiet --disable-pip-version-check 'psycopg[binary]>=3.2,<4'
	$(PY) -m bench.pg_drivers
