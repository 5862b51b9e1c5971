/** The key that lets `resources` skip an unchanged image build: what changes it and what does not. */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildKey, type BuildKeyInputs } from "../../src/effects/buildKey.js";

describe("buildKey", () => {
  let dir: string;
  let inputs: BuildKeyInputs;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "brics-env-test-buildkey-"));
    const context = join(dir, "context");
    await mkdir(join(context, "scripts"), { recursive: true });
    await writeFile(join(context, "Containerfile"), "FROM base\nCOPY scripts/ /s/\n");
    await writeFile(join(context, "scripts", "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
    await mkdir(join(context, "_build_data", "python_packages"), { recursive: true });
    inputs = { containerfile: join(context, "Containerfile"), context, target: "stage-dev", buildArgs: { A: "1", B: "2" }, baseImageId: "abc" };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is the same for the same inputs, whatever the order of build args or the files' times", async () => {
    const key = await buildKey(inputs);
    assert.match(key, /^[0-9a-f]{32}$/);
    await utimes(join(inputs.context, "scripts", "run.sh"), new Date(0), new Date(0));
    assert.equal(await buildKey({ ...inputs, buildArgs: { B: "2", A: "1" } }), key);
  });

  it("changes with anything that goes into the build", async () => {
    const key = await buildKey(inputs);
    const changed = async (what: string, change: () => Promise<void>, undo: () => Promise<void>) => {
      await change();
      assert.notEqual(await buildKey(inputs), key, what);
      await undo();
      assert.equal(await buildKey(inputs), key, `${what}, undone`);
    };
    const script = join(inputs.context, "scripts", "run.sh");
    await changed("a file's content", () => writeFile(script, "#!/bin/sh\necho ho\n"), () => writeFile(script, "#!/bin/sh\necho hi\n"));
    await changed("a file's mode", () => chmod(script, 0o644), () => chmod(script, 0o755));
    const staged = join(inputs.context, "_build_data", "python_packages", "pkg.whl");
    await changed("a file staged into the context", () => writeFile(staged, "wheel"), () => rm(staged));
    const link = join(inputs.context, "link");
    await changed("a symbolic link", () => symlink("scripts/run.sh", link), () => rm(link));
    const empty = join(inputs.context, "empty");
    await changed("an empty directory", () => mkdir(empty), () => rm(empty, { recursive: true }));
    assert.notEqual(await buildKey({ ...inputs, buildArgs: { A: "1", B: "3" } }), key, "a build arg");
    assert.notEqual(await buildKey({ ...inputs, target: "stage-prod" }), key, "the target");
    assert.notEqual(await buildKey({ ...inputs, baseImageId: "def" }), key, "the base image");
  });
});
