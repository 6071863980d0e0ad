// node-postgres (npm `pg`) as its users use it, against the server whose port
// is argv[2]: untyped parameters, `= ANY($1)` with a JS array, RETURNING,
// a Pool with concurrent clients, a transaction, an error that keeps the
// connection. Exits non-zero (an assertion) on the first difference.
'use strict';
const assert = require('node:assert/strict');
const { Client, Pool } = require('pg');
const Cursor = require('pg-cursor');

const config = {
  host: '127.0.0.1', port: Number(process.argv[2]), user: 'tester', database: 'quackml',
  connectionTimeoutMillis: 10000,
};

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    if (err && err.code) console.log(`  sqlstate ${err.code}`);
    process.exitCode = 1;
  }
}

async function main() {
  const client = new Client(config);
  await client.connect();

  await step('untyped parameters', async () => {
    // pg sends every parameter as text with type 0: the server infers them.
    let r = await client.query('SELECT $1::int + 1 AS n', [41]);
    assert.equal(r.rows[0].n, 42);
    r = await client.query('SELECT $1 AS s', ['untyped']);
    assert.equal(r.rows[0].s, 'untyped');
    r = await client.query('SELECT count(*)::int AS n FROM customers WHERE tenure > $1', [60]);
    assert.ok(r.rows[0].n > 0);
  });

  await step('types of results', async () => {
    const r = await client.query(
      "SELECT 1::int AS i, 2::bigint AS b, 1.5::float8 AS f, 'x'::varchar AS v, true AS t, "
      + "DATE '2024-01-02' AS d, 12.50::numeric(10,2) AS n, NULL::int AS z");
    const row = r.rows[0];
    assert.equal(row.i, 1);
    assert.equal(row.b, '2');          // int8 comes back as a string in pg
    assert.equal(row.f, 1.5);
    assert.equal(row.v, 'x');
    assert.equal(row.t, true);
    assert.ok(row.d instanceof Date && row.d.getFullYear() === 2024);
    assert.equal(row.n, '12.50');
    assert.equal(row.z, null);
    assert.deepEqual(r.fields.map((f) => f.name), ['i', 'b', 'f', 'v', 't', 'd', 'n', 'z']);
  });

  await step('parameter types', async () => {
    await client.query('CREATE OR REPLACE TABLE node_types (ts TIMESTAMPTZ, d DATE, b BLOB, '
                       + 'j JSON, flag BOOLEAN, f DOUBLE, n DECIMAL(12,3), z INTEGER)');
    const when = new Date('2024-01-02T03:04:05.678Z');
    await client.query('INSERT INTO node_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
                       [when, '2024-02-29', Buffer.from([1, 2, 255]), { a: [1, 'x'] }, true,
                        1.5, '1234.567', null]);
    const r = await client.query('SELECT * FROM node_types');
    const row = r.rows[0];
    assert.equal(row.ts.getTime(), when.getTime());
    assert.ok(Buffer.isBuffer(row.b));
    assert.deepEqual([...row.b], [1, 2, 255]);
    assert.equal(row.flag, true);
    assert.equal(row.f, 1.5);
    assert.equal(row.n, '1234.567');
    assert.equal(row.z, null);
    const d = await client.query("SELECT d::VARCHAR AS d FROM node_types WHERE ts = $1", [when]);
    assert.deepEqual(d.rows, [{ d: '2024-02-29' }]);
  });

  await step('json column parsed', async () => {
    // pg parses json (OID 114) and jsonb values into objects
    const r = await client.query('SELECT j FROM node_types');
    assert.deepEqual(r.rows[0].j, { a: [1, 'x'] });
  });

  await step('multi-statement simple query', async () => {
    // without values pg sends a simple Query: one result per statement
    const results = await client.query('SELECT 1 AS a; SELECT 2 AS b, 3 AS c');
    assert.equal(results.length, 2);
    assert.deepEqual(results[0].rows, [{ a: 1 }]);
    assert.deepEqual(results[1].rows, [{ b: 2, c: 3 }]);
  });

  await step('create, insert with RETURNING', async () => {
    await client.query('DROP TABLE IF EXISTS node_items');
    await client.query('CREATE TABLE node_items (id INTEGER PRIMARY KEY, name VARCHAR, '
                       + 'price DOUBLE, tags VARCHAR[])');
    const r = await client.query(
      'INSERT INTO node_items VALUES ($1, $2, $3, $4) RETURNING id, name', [1, 'a', 2.5, ['x', 'y']]);
    assert.equal(r.command, 'INSERT');
    assert.equal(r.rowCount, 1);
    assert.deepEqual(r.rows, [{ id: 1, name: 'a' }]);
    for (const [id, name] of [[2, 'b'], [3, "it's"], [4, null]]) {
      await client.query('INSERT INTO node_items (id, name, price) VALUES ($1, $2, $3)',
                         [id, name, id * 1.25]);
    }
    const u = await client.query('UPDATE node_items SET price = price * 2 WHERE id > $1 '
                                 + 'RETURNING id, price', [2]);
    assert.equal(u.command, 'UPDATE');
    assert.equal(u.rowCount, 2);
    assert.deepEqual(u.rows.map((x) => x.id).sort(), [3, 4]);
    const t = await client.query('SELECT tags FROM node_items WHERE id = $1', [1]);
    assert.deepEqual(t.rows[0].tags, ['x', 'y']);
  });

  await step('= ANY($1) with an array', async () => {
    let r = await client.query('SELECT id FROM node_items WHERE id = ANY($1) ORDER BY id',
                               [[1, 3, 99]]);
    assert.deepEqual(r.rows.map((x) => x.id), [1, 3]);
    r = await client.query('SELECT id FROM node_items WHERE name = ANY($1) ORDER BY id',
                           [["a", "it's"]]);
    assert.deepEqual(r.rows.map((x) => x.id), [1, 3]);
  });

  await step('DELETE RETURNING and rowCount', async () => {
    const r = await client.query('DELETE FROM node_items WHERE id = $1 RETURNING name', [4]);
    assert.equal(r.command, 'DELETE');
    assert.equal(r.rowCount, 1);
    assert.deepEqual(r.rows, [{ name: null }]);
  });

  await step('named prepared statement reused', async () => {
    for (const id of [1, 2, 3]) {
      const r = await client.query({ name: 'node_by_id', text: 'SELECT name FROM node_items '
                                     + 'WHERE id = $1', values: [id] });
      assert.equal(r.rows.length, 1);
    }
  });

  await step('rowMode array', async () => {
    const r = await client.query({ text: 'SELECT 1 AS a, 2 AS a', rowMode: 'array' });
    assert.deepEqual(r.rows, [[1, 2]]);
  });

  await step('error keeps the connection', async () => {
    await assert.rejects(client.query('SELECT * FROM node_no_such_table'),
                         (err) => err.code === '42P01');
    await assert.rejects(client.query('SELECT $1::int', ['nope']), (err) => err.code === '22P02');
    const r = await client.query('SELECT 1 AS one');
    assert.equal(r.rows[0].one, 1);
  });

  await step('pg-cursor reads in batches', async () => {
    // Execute with a row limit: PortalSuspended until the rows run out, then Close
    const cursor = client.query(new Cursor('SELECT range AS i FROM range($1::int)', [25]));
    const sizes = [];
    let seen = [];
    for (;;) {
      const rows = await cursor.read(10);
      if (rows.length === 0) break;
      sizes.push(rows.length);
      seen = seen.concat(rows.map((r) => Number(r.i)));
    }
    await cursor.close();
    assert.deepEqual(sizes, [10, 10, 5]);
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i));
    const early = client.query(new Cursor('SELECT range AS i FROM range(1000)'));
    assert.equal((await early.read(3)).length, 3);
    await early.close();   // closed before the end
    const r = await client.query('SELECT 1 AS one');
    assert.equal(r.rows[0].one, 1);
  });

  await step('transaction rollback', async () => {
    await client.query('BEGIN');
    await client.query('INSERT INTO node_items (id, name) VALUES ($1, $2)', [50, 'tx']);
    await client.query('ROLLBACK');
    const r = await client.query('SELECT count(*)::int AS n FROM node_items WHERE id = $1', [50]);
    assert.equal(r.rows[0].n, 0);
  });
  await client.end();

  await step('startup options', async () => {
    // pg sends these in the startup packet; statement_timeout cancels with 57014
    const c = new Client({ ...config, application_name: 'node-probe', statement_timeout: 300,
                           options: '-c search_path=main' });
    await c.connect();
    try {
      const r = await c.query("SELECT current_setting('application_name') AS a");
      assert.equal(r.rows[0].a, 'node-probe');
      await assert.rejects(c.query('SELECT count(*) FROM range(1000000000) a, range(10) b'),
                           (err) => err.code === '57014');
      assert.equal((await c.query('SELECT 2 AS two')).rows[0].two, 2);
    } finally {
      await c.end();
    }
  });

  await step('pool', async () => {
    const pool = new Pool({ ...config, max: 4 });
    try {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        pool.query('SELECT $1::int * 2 AS doubled, count(*)::int AS n FROM node_items', [i])));
      assert.deepEqual(results.map((r) => r.rows[0].doubled), Array.from({ length: 12 },
                                                                         (_, i) => i * 2));
      assert.ok(results.every((r) => r.rows[0].n === 3));
      const pc = await pool.connect();
      try {
        await pc.query('BEGIN');
        const r = await pc.query('INSERT INTO node_items (id, name) VALUES ($1, $2) '
                                 + 'RETURNING id', [10, 'pooled']);
        assert.deepEqual(r.rows, [{ id: 10 }]);
        await pc.query('COMMIT');
      } finally {
        pc.release();
      }
      const r = await pool.query('SELECT name FROM node_items WHERE id = $1', [10]);
      assert.equal(r.rows[0].name, 'pooled');
    } finally {
      await pool.end();
    }
  });
  if (!process.exitCode) console.log('OK');
}

main().catch((err) => {
  console.log(`FAIL main: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
