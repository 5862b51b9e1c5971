import assert from "node:assert/strict";
import { it } from "node:test";
import { heldOutput, type Output } from "../../src/commands/common.js";

it("held output is said in its order, on the output it is replayed to, once", () => {
  const held = heldOutput();
  held.say("kept existing clone");
  held.warn("clone not at its ref");
  held.progress("staging");
  const seen: string[] = [];
  const out: Output = { say: (l) => seen.push(`say ${l}`), warn: (l) => seen.push(`warn ${l}`), progress: (l) => seen.push(`progress ${l}`) };
  assert.deepEqual(seen, [], "nothing before the replay");
  held.replay(out);
  assert.deepEqual(seen, ["say kept existing clone", "warn clone not at its ref", "progress staging"]);
  held.replay(out);
  assert.equal(seen.length, 3, "a second replay says nothing again");
});
