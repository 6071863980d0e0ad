// Runs the cases of the JSON file argv[3] (a list of {text, values, binary})
// through node-postgres against the server on port argv[2] (user and database
// argv[4], argv[5]) and prints one JSON line per case: what the application
// sees (rows as pg parsed them, field type OIDs and formats, command and
// rowCount) or the error's SQLSTATE. tests/test_clients_node.py compares the
// lines of QuackML with those of PostgreSQL 15.
'use strict';
const fs = require('node:fs');
const { Client } = require('pg');

function plain(value) {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return { buffer: value.toString('hex') };
  if (value instanceof Date) {
    return { date: Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString(),
             usec: value.usec === undefined ? null : value.usec };
  }
  if (typeof value === 'bigint') return { bigint: value.toString() };
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) {
      if (typeof value[key] !== 'function') out[key] = plain(value[key]);
    }
    return out;
  }
  return value;
}

async function main() {
  const [port, file, user, database] = process.argv.slice(2);
  const cases = JSON.parse(fs.readFileSync(file, 'utf8'));
  const client = new Client({ host: '127.0.0.1', port: Number(port), user, database });
  await client.connect();
  for (const c of cases) {
    try {
      const r = await client.query({ text: c.text, values: c.values, binary: c.binary,
                                     rowMode: 'array' });
      console.log(JSON.stringify({
        command: r.command, rowCount: r.rowCount, rows: plain(r.rows),
        fields: r.fields.map((f) => [f.name, f.dataTypeID, f.format]),
      }));
    } catch (err) {
      console.log(JSON.stringify({ error: err.code || String(err) }));
    }
  }
  await client.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
