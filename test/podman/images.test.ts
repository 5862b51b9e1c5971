/**
 * What `resources` does with an image a rebuild took the name from, on the real podman: removed
 * only when no name and no container is left on it.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { imageId, podmanAllowFailure, podman, removeReplacedImage } from "../../src/effects/podman.js";
import { uniqueId } from "./helpers.js";

const id = uniqueId("bricsenvtestimg");
const tag = `localhost/${id}:latest`;
const otherName = `localhost/${id}:kept`;
const container = `${id}-ctr`;
let work: string;
let generation = 0;
const made: string[] = [];

/** Builds a new image under `tag` (an empty one: FROM scratch needs no registry); its id. */
async function rebuild(): Promise<string> {
  generation += 1;
  await writeFile(join(work, "Containerfile"), `FROM scratch\nLABEL generation=${generation}\n`);
  await podman(["build", "--quiet", "--tag", tag, work]);
  const built = await imageId(tag);
  assert.ok(built !== undefined);
  made.push(built);
  return built;
}

describe("an image a rebuild replaced", () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "brics-env-test-images-"));
  });

  after(async () => {
    await podmanAllowFailure(["rm", "--force", container]);
    await podmanAllowFailure(["image", "rm", "--force", tag, otherName]);
    for (const image of made) await podmanAllowFailure(["image", "rm", "--force", image]);
    await rm(work, { recursive: true, force: true });
  });

  test("is removed when nothing names or uses it", async () => {
    const old = await rebuild();
    await rebuild();
    assert.equal(await removeReplacedImage(old), "removed");
    assert.equal(await imageId(old), undefined);
  });

  test("is kept while it has another name", async () => {
    const old = await rebuild();
    await podman(["tag", old, otherName]);
    await rebuild();
    assert.equal(await removeReplacedImage(old), "named");
    assert.equal(await imageId(otherName), old, "the other name still finds it");
  });

  test("is kept while a container uses it", async () => {
    const old = await rebuild();
    await podman(["create", "--name", container, old, "/none"]);
    await rebuild();
    assert.equal(await removeReplacedImage(old), "in use");
    assert.equal(await imageId(old), old);
  });

  test("that is already gone is said so", async () => {
    assert.equal(await removeReplacedImage("0".repeat(64)), "gone");
  });
});
