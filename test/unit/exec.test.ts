/** The child-process runner every effect goes through: real processes (sh, cat), no podman. */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { CommandError, formatCommand, run, runAllowFailure } from "../../src/effects/exec.js";

describe("run", () => {
  it("captures output and hands over each line as it arrives, last partial line included", async () => {
    const lines: string[] = [];
    const r = await run("sh", ["-c", "echo one; echo two >&2; printf three"], { onLine: (l, s) => lines.push(`${s}:${l}`) });
    assert.equal(r.stdout, "one\nthree");
    assert.equal(r.stderr, "two\n");
    assert.deepEqual(lines.sort(), ["stderr:two", "stdout:one", "stdout:three"]);
  });

  it("feeds stdin from text and from a stream", async () => {
    assert.equal((await run("cat", [], { input: "hello\n" })).stdout, "hello\n");
    const big = Readable.from([Buffer.alloc(200_000, 120), Buffer.alloc(56, 121)]);
    assert.equal((await run("wc", ["-c"], { stdin: big })).stdout.trim(), "200056");
  });

  it("gives the child an empty stdin when there is nothing to feed", async () => {
    assert.equal((await run("cat", [])).stdout, "");
  });

  it("passes arguments as they are, never through a shell", async () => {
    const r = await run("printf", ["%s|", "a b", "$HOME", "`id`;"]);
    assert.equal(r.stdout, "a b|$HOME|`id`;|");
  });

  it("merges extra environment variables over this process's", async () => {
    const r = await run("sh", ["-c", 'echo "$BRICS_ENV_EXEC_TEST:${PATH:+path}"'], { env: { BRICS_ENV_EXEC_TEST: "x" } });
    assert.equal(r.stdout, "x:path\n");
  });

  it("turns a non-zero exit into a CommandError with the stderr tail", async () => {
    const err = await run("sh", ["-c", "for i in $(seq 30); do echo line$i >&2; done; exit 3"]).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError);
    assert.equal(err.exitCode, 3);
    assert.equal(err.stderrTail.split("\n").length, 20);
    assert.match(err.stderrTail, /^line11\n[\s\S]*line30$/);
    assert.match(err.message, /^command failed: sh -c .* exited with code 3\n    line11/);
    assert.equal((await runAllowFailure("sh", ["-c", "exit 4"])).exitCode, 4);
  });

  it("rejects a command that cannot start, or that runs past its timeout", async () => {
    const missing = await runAllowFailure("brics-env-no-such-program", []).catch((e: unknown) => e);
    assert.ok(missing instanceof CommandError);
    assert.equal(missing.exitCode, undefined);
    assert.match(missing.message, /brics-env-no-such-program not found/);
    const started = Date.now();
    const slow = await runAllowFailure("sleep", ["10"], { timeoutMs: 200 }).catch((e: unknown) => e);
    assert.ok(slow instanceof CommandError);
    assert.match(slow.message, /timed out after 200 ms/);
    assert.ok(Date.now() - started < 5000);
  });

  it("formats commands so they can be pasted into a shell", () => {
    assert.equal(formatCommand(["podman", "run", "it's", "a b", "x=y"]), `podman run 'it'\\''s' 'a b' x=y`);
  });
});
