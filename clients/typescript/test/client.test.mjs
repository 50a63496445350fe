// SPDX-License-Identifier: MIT
// modelrepo-client against a real `modelrepo serve` (MODELREPO_CLI), with a read and a
// write token: every call, its errors, and changes() across a serve restart. With
// MODELREPO_TLS_CERT and MODELREPO_TLS_KEY serve speaks HTTPS (node trusts the CA through
// NODE_EXTRA_CA_CERTS, as a service would).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ModelrepoClient, ModelrepoError } from "../dist/index.js";

const cli = process.env.MODELREPO_CLI;
if (!cli) throw new Error("MODELREPO_CLI is not set (the meson test sets it)");

const dir = mkdtempSync(join(tmpdir(), "modelrepo-client-"));
const writeToken = "w-Client-" + Math.random().toString(36).slice(2);
const readToken = "r-Client-" + Math.random().toString(36).slice(2);
writeFileSync(join(dir, "writers"), writeToken + "\n");
writeFileSync(join(dir, "readers"), readToken + "\n");

/** Starts serve on `listen`; resolves with the process and its base URL. */
function startServe(listen = "127.0.0.1:0") {
  const tls = process.env.MODELREPO_TLS_CERT
    ? ["--tls-cert", process.env.MODELREPO_TLS_CERT, "--tls-key", process.env.MODELREPO_TLS_KEY]
    : [];
  const child = spawn(
    cli,
    ["--source", "builtin:", "serve", "--listen", listen,
     "--token-file", join(dir, "writers"), "--read-token-file", join(dir, "readers"), ...tls],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (https?:\/\/\S+)/);
      if (m) resolve({ child, base: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.on("exit", resolve);
    child.kill("SIGTERM");
  });
}

const status = (health, availability) => ({
  model: "gpt-4o", health, availability, latency_ms: 120, error_rate: 1 - availability,
  region: "eu", checked_at: new Date().toISOString(),
});

/** Waits until serve has exactly `n` change streams open (its /metrics says), 10 s at most. */
async function streamsOpen(n) {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const r = await fetch(serve.base + "/metrics", {
      headers: { Authorization: "Bearer " + readToken },
    });
    const m = (await r.text()).match(/^modelrepo_serve_streams (\d+)/m);
    if (m && Number(m[1]) === n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`serve never had ${n} change streams open`);
}

/** `promise`, or a clear failure after 20 s: a lost event fails fast, not at the test's limit. */
async function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not come within 20 s`)), 20_000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

let serve;
before(async () => { serve = await startServe(); });
after(async () => { if (serve) await stop(serve.child); });

test("the scheme serve was started with", () => {
  assert.equal(serve.base.startsWith("https://"), Boolean(process.env.MODELREPO_TLS_CERT));
});

test("reads with a read token: stats, models in the order asked, one model, statuses", async () => {
  const client = new ModelrepoClient({ baseUrl: serve.base, token: readToken });
  const stats = await client.stats();
  assert.ok(stats.models > 0);
  assert.equal(stats.backup, false);
  const some = await client.models(["gpt-5", "gpt-4o"]);
  assert.deepEqual(some.models.map((m) => m.slug), ["gpt-5", "gpt-4o"]);
  assert.equal((await client.models()).models.length, stats.models);
  const one = await client.model("gpt-4o");
  assert.equal(one?.provider?.slug, "openai");
  assert.equal(await client.model("no-such-model"), null);
  const outages = await client.statuses({ health: "outage" });
  assert.ok(outages.statuses.every((s) => s.health === "outage"));
});

test("errors: no token, a wrong one, a reader writing, a bad query", async () => {
  await assert.rejects(new ModelrepoClient({ baseUrl: serve.base }).stats(),
    (e) => e instanceof ModelrepoError && e.status === 401 && e.code === "auth_failed");
  await assert.rejects(new ModelrepoClient({ baseUrl: serve.base, token: "nope" }).stats(),
    (e) => e instanceof ModelrepoError && e.status === 401);
  const reader = new ModelrepoClient({ baseUrl: serve.base, token: readToken });
  await assert.rejects(reader.putStatuses([status("outage", 0.5)]),
    (e) => e instanceof ModelrepoError && e.status === 403 && e.code === "forbidden"
      && !e.message.includes(readToken));
  await assert.rejects(reader.statuses({ health: "sideways" }),
    (e) => e instanceof ModelrepoError && e.status === 400 && e.code === "invalid_argument");
});

test("writes with a write token: the receipt, then the change in changes()", async () => {
  const writer = new ModelrepoClient({ baseUrl: serve.base, token: writeToken });
  const controller = new AbortController();
  const changes = writer.changes({ signal: controller.signal });
  const first = changes.next(); // connects
  await streamsOpen(1);
  const receipt = await writer.putStatuses([status("degraded", 0.9)]);
  assert.equal(receipt.applied, 1);
  assert.equal(receipt.queued, 0);
  const { value } = await within(first, "the change written");
  assert.equal(value.kind, "status");
  assert.equal(value.slug, "gpt-4o");
  assert.ok(value.id);
  controller.abort();
  assert.equal((await within(changes.next(), "the end of changes()")).done, true);
  await streamsOpen(0); // serve saw it go
});

test("changes() across a serve restart: it reconnects with Last-Event-ID and gets a resync, " +
     "then the changes after it", async () => {
  const port = new URL(serve.base).port;
  const reader = new ModelrepoClient({ baseUrl: serve.base, token: readToken });
  const writer = new ModelrepoClient({ baseUrl: serve.base, token: writeToken });
  const controller = new AbortController();
  const changes = reader.changes({ signal: controller.signal });
  const first = changes.next();
  await streamsOpen(1);
  await writer.putStatuses([status("outage", 0.25)]);
  const before = (await within(first, "the change written")).value;
  assert.equal(before.kind, "status");

  await stop(serve.child);
  serve = await startServe("127.0.0.1:" + port); // the same address
  // A new process never saw that version: one resync, then what happens next.
  const resync = (await within(changes.next(), "the resync after the restart")).value;
  assert.equal(resync.kind, "resync");
  const next = changes.next();
  await streamsOpen(1); // it did connect: the resync came on it
  await writer.putStatuses([status("operational", 0.999)]);
  const after = (await within(next, "the change after the resync")).value;
  assert.equal(after.kind, "status");
  assert.equal(after.slug, "gpt-4o");
  controller.abort();
});
