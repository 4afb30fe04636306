CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score BIGINT);
INSERT INTO t VALUES (1, 'a', 10), (2, 'b', 20);
SELECT * FROM t WHERE id = 2;
EXPLAIN SELECT * FROM t WHERE id >= 1 AND id < 5;
SHOW transaction_isolation;
BEGIN;
UPDATE t SET score = score + 1 WHERE id = 1;
SELECT nosuchcolumn FROM t;
SELECT 1;
ROLLBACK;
SELECT id, name, score FROM t ORDER BY id;
DROP TABLE t;
-- COPY FROM STDIN with inline data ended by \. (text and CSV), \copy TO STDOUT, a bad line.
CREATE TABLE c (id INT PRIMARY KEY, name TEXT, score BIGINT);
COPY c FROM STDIN;
1	one	10
2	\N	20
\.
COPY c FROM STDIN WITH (FORMAT csv, HEADER);
id,name,score
3,"three, quoted",30
\.
\copy c TO STDOUT WITH (FORMAT csv, HEADER)
\copy (SELECT id, name FROM c WHERE score > 10 ORDER BY id) TO STDOUT
COPY c FROM STDIN;
4	four	40
x	bad	50
\.
SELECT count(*) FROM c;
DROP TABLE c;
