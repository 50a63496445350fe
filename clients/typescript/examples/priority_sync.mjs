// SPDX-License-Identifier: MIT
// The platform's priority sync on modelrepo-client: every 5 minutes it writes fresh
// statuses of the priority models. While the database is down, serve's outbox keeps them
// (HTTP 202) and this says "queued"; without an outbox it says why the write failed.
//
//   MODELREPO_URL=… MODELREPO_TOKEN=<a write token> node examples/priority_sync.mjs [--once]
import { ModelrepoClient, ModelrepoError } from "../dist/index.js";

const priority = ["gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro"];
const client = new ModelrepoClient({
  baseUrl: process.env.MODELREPO_URL ?? "http://127.0.0.1:8080",
  token: process.env.MODELREPO_TOKEN,
});

/** Stands in for the platform's probe of each model. */
const probe = (slug) => ({
  model: slug, health: "operational", availability: 0.999, latency_ms: 180, error_rate: 0.001,
  region: "global", checked_at: new Date().toISOString(),
});

async function once() {
  try {
    const receipt = await client.putStatuses(priority.map(probe));
    if (receipt.queued > 0)
      console.log(`queued ${receipt.queued} in the outbox (${receipt.outbox}): ` +
        `${receipt.deferred_because?.message ?? "the database is down"}`);
    else console.log(`applied ${receipt.applied}` +
      (receipt.ignored ? `, ${receipt.ignored} older than stored` : ""));
    return 0;
  } catch (e) {
    if (!(e instanceof ModelrepoError)) throw e;
    console.error(`not written: ${e.status} ${e.code}: ${e.message}`);
    return 1;
  }
}

if (process.argv.includes("--once")) process.exit(await once());
for (;;) {
  await once();
  await new Promise((r) => setTimeout(r, 5 * 60_000));
}
