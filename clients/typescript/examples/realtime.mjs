// SPDX-License-Identifier: MIT
// The platform's realtime server on modelrepo-client: instead of polling the database
// every 30 s, it pushes the global stats to its clients (server-sent events on
// GET /stats) on each change of the catalogue, and after a resync.
//
//   MODELREPO_URL=http://127.0.0.1:8080 MODELREPO_TOKEN=… node examples/realtime.mjs [--listen 3001] [--count N]
import http from "node:http";
import { ModelrepoClient } from "../dist/index.js";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const client = new ModelrepoClient({
  baseUrl: process.env.MODELREPO_URL ?? "http://127.0.0.1:8080",
  token: process.env.MODELREPO_TOKEN,
});
const listeners = new Set();
let latest = await client.stats();

const server = http.createServer((req, res) => {
  if (req.url !== "/stats") return res.writeHead(404).end();
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  res.write(`data: ${JSON.stringify(latest)}\n\n`);
  listeners.add(res);
  req.on("close", () => listeners.delete(res));
});
server.listen(Number(option("--listen", "3001")), "127.0.0.1", () =>
  console.log(`realtime: pushing stats on http://127.0.0.1:${server.address().port}/stats`));

let left = Number(option("--count", "Infinity"));
const controller = new AbortController();
for await (const change of client.changes({ signal: controller.signal })) {
  latest = await client.stats(); // one read per change (or resync), never a poll
  for (const res of listeners) res.write(`data: ${JSON.stringify(latest)}\n\n`);
  console.log(`pushed stats after ${change.kind} ${change.slug ?? ""}`.trim() +
    ` (source ${latest.source}${latest.backup ? ", a backup" : ""})`);
  if (--left <= 0) controller.abort();
}
server.close();
for (const res of listeners) res.end();
