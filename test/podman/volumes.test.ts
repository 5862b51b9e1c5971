import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { list } from "tar";
import { volumeCreate, volumeExists, volumeImport, volumeRm } from "../../src/effects/podman.js";
import { volumeTarStream } from "../../src/effects/volumeArchive.js";
import { run } from "../../src/effects/exec.js";
import { busyboxMissingReason, leftovers, makeBusyboxImage, removeImage, uniqueId } from "./helpers.js";

const id = uniqueId("bricsenvtestvol");
const image = `localhost/brics-env-test-busybox:${id}`;
const volume = `${id}_root`;
let tree: string;
let scratch: string;

const TREE_FILES = ["etc/jupyterhub/config.py", "var/log/jupyterhub/.gitkeep", "var/log/sshd.log"];

async function makeTree(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "brics-env-test-tree-"));
  await mkdir(join(root, "etc", "jupyterhub"), { recursive: true });
  await mkdir(join(root, "var", "log", "jupyterhub"), { recursive: true });
  await writeFile(join(root, "etc", "jupyterhub", "config.py"), "c = 1\n");
  await chmod(join(root, "etc", "jupyterhub", "config.py"), 0o640);
  await writeFile(join(root, "var", "log", "jupyterhub", ".gitkeep"), "");
  await writeFile(join(root, "var", "log", "sshd.log"), "");
  return root;
}

describe("volume from a tree", { skip: busyboxMissingReason() }, () => {
  before(async () => {
    tree = await makeTree();
    scratch = await mkdtemp(join(tmpdir(), "brics-env-test-export-"));
    await makeBusyboxImage(image);
  });
  after(async () => {
    await volumeRm(volume, true).catch(() => undefined);
    await removeImage(image);
    await rm(tree, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
    assert.deepEqual(await leftovers(id), []);
  });

  test("the archive reads as expected with the system tar", async () => {
    const file = join(scratch, "tree.tar");
    await writeFile(file, volumeTarStream(tree, { uid: 64030, gid: 64030, uname: "slurm", gname: "slurm" }, TREE_FILES));
    const { stdout } = await run("tar", ["-tvf", file]);
    assert.match(stdout, /^-rw-r----- slurm\/slurm +\d+ .* \.\/etc\/jupyterhub\/config\.py$/m);
    assert.match(stdout, /^drwxr-xr-x slurm\/slurm +0 .* \.\/var\/log\/jupyterhub\/$/m);
    assert.doesNotMatch(stdout, /\.gitkeep/);
    const numeric = await run("tar", ["--numeric-owner", "-tvf", file]);
    assert.doesNotMatch(numeric.stdout, /^\S+ (?!64030\/64030)/m);
  });

  test("import sets owners, keeps modes and leaves out .gitkeep", async () => {
    assert.equal(await volumeExists(volume), false);
    await volumeCreate(volume);
    await volumeImport(volume, volumeTarStream(tree, { uid: 64030, gid: 64030, uname: "slurm", gname: "slurm" }, TREE_FILES));

    const exported = join(scratch, "v.tar");
    await run("podman", ["volume", "export", "--output", exported, volume]);
    const entries: Array<{ path: string; uid: number; gid: number; mode: number }> = [];
    await list({ file: exported, onReadEntry: (e) => entries.push({ path: e.path, uid: e.uid ?? -1, gid: e.gid ?? -1, mode: e.mode ?? 0 }) });
    const paths = entries.map((e) => e.path.replace(/^\.\//, "").replace(/\/$/, "")).filter((p) => p !== "" && p !== ".");
    assert.ok(paths.includes("etc/jupyterhub/config.py"), paths.join(","));
    assert.ok(paths.includes("var/log/jupyterhub"));
    assert.ok(!paths.some((p) => p.endsWith(".gitkeep")), "no .gitkeep in the volume");
    for (const e of entries) {
      if (e.path === "./" || e.path === ".") continue;
      assert.equal(e.uid, 64030, `${e.path} uid`);
      assert.equal(e.gid, 64030, `${e.path} gid`);
    }
    const cfg = entries.find((e) => e.path.endsWith("config.py"));
    assert.equal((cfg?.mode ?? 0) & 0o777, 0o640);
  });

  test("a container sees the owners", async () => {
    const { stdout } = await run("podman", ["run", "--rm", "-v", `${volume}:/v`, image, "stat", "-c", "%u:%g %a %n", "/v/etc/jupyterhub/config.py", "/v/var/log/jupyterhub"], {
      timeoutMs: 120_000,
    });
    assert.match(stdout, /64030:64030 640 \/v\/etc\/jupyterhub\/config\.py/);
    assert.match(stdout, /64030:64030 755 \/v\/var\/log\/jupyterhub/);
  });
});
