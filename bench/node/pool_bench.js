// SPDX-License-Identifier: MIT
// node-postgres peer for bench/bench_postgres: a pg.Pool of CONCURRENCY connections and
// CONCURRENCY async loops running one named (server-side prepared) statement.
// usage: node pool_bench.js URL SQL_FILE PARAMS_JSON SECONDS CONCURRENCY
'use strict';
const fs = require('fs');
const { Pool } = require('pg');

async function main() {
  const [url, sqlFile, paramsJson, seconds, concurrency] = process.argv.slice(2);
  const text = fs.readFileSync(sqlFile, 'utf8');
  const values = JSON.parse(paramsJson);
  const n = Number(concurrency);
  const pool = new Pool({ connectionString: url, max: n });
  const query = { name: 'bench', text, values };
  let count = 0;
  let measuring = false;
  const warmEnd = Date.now() + 1000;
  const end = warmEnd + Number(seconds) * 1000;
  async function worker() {
    for (;;) {
      const now = Date.now();
      if (now >= end) return;
      await pool.query(query);
      if (measuring || (measuring = Date.now() >= warmEnd)) count++;
    }
  }
  await Promise.all(Array.from({ length: n }, worker));
  await pool.end();
  process.stdout.write(JSON.stringify({ tps: count / Number(seconds) }) + '\n');
}

main().catch((e) => { console.error(e.message); process.exit(1); });
