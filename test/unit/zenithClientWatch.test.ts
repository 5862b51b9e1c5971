import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Output } from "../../src/commands/common.js";
import { watchZenithClient } from "../../src/commands/zenithClientWatch.js";
import type { ContainerHealth } from "../../src/effects/podman.js";

function recorder(): Output & { said: string[]; warned: string[] } {
  const said: string[] = [];
  const warned: string[] = [];
  return { said, warned, say: (l) => said.push(l), progress: () => {}, warn: (l) => warned.push(l) };
}

/** A container whose successive inspections give these states, the last one repeating. */
function states(...seq: Array<ContainerHealth | undefined>) {
  let i = 0;
  return async () => seq[Math.min(i++, seq.length - 1)];
}

const running = (restarts = 0): ContainerHealth => ({ name: "c", status: "running", restarts });

/**
 * Watches through a long window a client whose inspections give `seq`, its log `log`; what was
 * said, the answer, and that it returned well before the window's end.
 */
async function watchUntilRestart(seq: Array<ContainerHealth | undefined>, log: string) {
  const out = recorder();
  const started = Date.now();
  const ok = await watchZenithClient("c", out, { since: started, windowMs: 60_000, intervalMs: 5, health: states(...seq), logs: async () => log });
  assert.ok(Date.now() - started < 5000, "does not wait out the window once it has restarted");
  return { ok, out };
}

describe("watching the Zenith client after up", () => {
  it("is content when the client runs without restarting through the window", async () => {
    const out = recorder();
    const ok = await watchZenithClient("c", out, { since: Date.now(), windowMs: 30, intervalMs: 5, health: states(running()), logs: async () => "" });
    assert.equal(ok, true);
    assert.deepEqual(out.warned, []);
    assert.match(out.said[0]!, /c running, no restart/);
  });

  it("warns, with the client's log, as soon as it restarts", async () => {
    const { ok, out } = await watchUntilRestart([running(), running(2)], "zenith@10.0.0.9: Permission denied (publickey).\n");
    assert.equal(ok, false);
    assert.match(out.warned[0]!, /c keeps restarting \(2 restarts in \d+ s\): the Zenith tunnel is not up/);
    assert.match(out.warned[0]!, /serverAddress and serverPort/);
    assert.match(out.warned[1]!, /Permission denied/);
  });

  it("reports a client seen stopped before podman restarted it as restarting", async () => {
    const { ok, out } = await watchUntilRestart([{ name: "c", status: "stopped", restarts: 0 }, running(1)], "[ERROR] No port received from server\n");
    assert.equal(ok, false);
    assert.match(out.warned[0]!, /c keeps restarting \(1 restart in \d+ s\): the Zenith tunnel is not up/);
  });

  it("warns when the client is not running or gone", async () => {
    for (const [h, what] of [[{ name: "c", status: "exited", restarts: 0 }, /c is exited/], [undefined, /c is gone/]] as const) {
      const out = recorder();
      assert.equal(await watchZenithClient("c", out, { since: Date.now(), windowMs: 30, intervalMs: 5, health: states(h), logs: async () => "" }), false);
      assert.match(out.warned[0]!, what);
    }
  });
});
