"""Client compatibility: psycopg 3 against a started TinkerDB node.

Usage: python3 tests/psycopg/test_psycopg.py postgresql://root@HOST:PORT/tinkerdb
Prints one line per check and a closing "N passed, N failed" line; exits non-zero on failure.
"""

import sys
import traceback

import psycopg

URL = sys.argv[1]
results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print(f"ok   {fn.__name__}")
    except Exception:  # noqa: BLE001 - every failure is reported
        results.append((fn.__name__, traceback.format_exc()))
        print(f"FAIL {fn.__name__}\n{traceback.format_exc()}")
    return fn


def connect():
    return psycopg.connect(URL, autocommit=True)


@check
def prepares_after_the_default_threshold():
    with connect() as conn:
        assert conn.prepare_threshold == 5
        conn.execute("DROP TABLE IF EXISTS pt")
        conn.execute("CREATE TABLE pt (id INT PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO pt VALUES (1, 'one'), (2, 'two')")
        for i in range(12):
            key = 1 + i % 2
            row = conn.execute("SELECT v FROM pt WHERE id = %s", (key,)).fetchone()
            assert row == (("one", "two")[key - 1],), row
        # psycopg prepared the statement on the server after its fifth execution.
        assert conn._prepared._names, "nothing was prepared"


@check
def ddl_between_prepared_executions():
    with connect() as conn:
        conn.execute("DROP TABLE IF EXISTS dt")
        conn.execute("CREATE TABLE dt (id INT PRIMARY KEY, v INT)")
        conn.execute("INSERT INTO dt VALUES (1, 10)")
        query = "SELECT v FROM dt WHERE id = %s"
        for _ in range(8):
            assert conn.execute(query, (1,)).fetchone() == (10,)
        # DDL: psycopg forgets its prepared statements and sends DEALLOCATE ALL.
        conn.execute("CREATE TABLE dt_other (id INT PRIMARY KEY)")
        for _ in range(8):
            assert conn.execute(query, (1,)).fetchone() == (10,)
        conn.execute("DROP TABLE dt_other")
        conn.execute("UPDATE dt SET v = 11 WHERE id = %s", (1,))
        for _ in range(8):
            assert conn.execute(query, (1,)).fetchone() == (11,)


@check
def executemany_inserts_every_row():
    with connect() as conn:
        conn.execute("DROP TABLE IF EXISTS em")
        conn.execute("CREATE TABLE em (id INT PRIMARY KEY, v TEXT)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO em VALUES (%s, %s)", [(i, f"r{i}") for i in range(200)])
        assert conn.execute("SELECT count(*) FROM em").fetchone() == (200,)
        assert conn.execute("SELECT v FROM em WHERE id = %s", (150,)).fetchone() == ("r150",)


@check
def transactions_commit_and_roll_back():
    with psycopg.connect(URL) as conn:
        conn.execute("DROP TABLE IF EXISTS tx")
        conn.execute("CREATE TABLE tx (id INT PRIMARY KEY)")
        conn.commit()
        conn.execute("INSERT INTO tx VALUES (1)")
        conn.rollback()
        with conn.transaction():
            conn.execute("INSERT INTO tx VALUES (2)")
        assert conn.execute("SELECT id FROM tx").fetchall() == [(2,)]
        try:
            conn.execute("INSERT INTO tx VALUES (2)")
            raise AssertionError("duplicate key accepted")
        except psycopg.errors.UniqueViolation:
            conn.rollback()
        assert conn.execute("SELECT count(*) FROM tx").fetchone() == (1,)


@check
def fetchmany_returns_rows_in_order():
    with psycopg.connect(URL) as conn:
        conn.execute("DROP TABLE IF EXISTS sc")
        conn.execute("CREATE TABLE sc (id INT PRIMARY KEY)")
        conn.execute("INSERT INTO sc VALUES " + ", ".join(f"({i})" for i in range(10)))
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM sc ORDER BY id")
            assert [r[0] for r in cur.fetchmany(3)] == [0, 1, 2]
            assert [r[0] for r in cur.fetchall()] == list(range(3, 10))


failed = sum(1 for _, err in results if err)
print(f"psycopg: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
