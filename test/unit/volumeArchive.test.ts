/**
 * What goes into a volume: the files the repository tracks under volumes/<kind>, as listed in
 * volumes/tracked-files.txt (kept equal to `git ls-files volumes` here), and nothing else that
 * happens to lie in the tree — no __pycache__, no editor backups, no local state.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, it } from "node:test";
import { Parser } from "tar";
import { trackedVolumeFiles, volumeTarStream, type Owner } from "../../src/effects/volumeArchive.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { renderTrackedFilesList, TRACKED_FILES_LIST, volumesOf } from "../../src/plan/volumes.js";
import { repoRoot } from "../../src/paths.js";

const root = repoRoot();
const OWNER: Owner = { uid: 0, gid: 0, uname: "root", gname: "root" };

/** The entries of an archive stream, as paths relative to its root ("dir/" for directories). */
async function entriesOf(stream: NodeJS.ReadableStream): Promise<string[]> {
  const paths: string[] = [];
  const parser = new Parser({ onReadEntry: (e) => (paths.push(e.path.replace(/^\.\//, "")), e.resume()) });
  await pipeline(stream, parser as unknown as Writable);
  return paths.filter((p) => p !== "" && p !== "./" && p !== ".").sort();
}

describe("the volumes' file list", () => {
  it("is the list of files git tracks under volumes/ (UPDATE_GOLDEN=1 rewrites it)", () => {
    const tracked = execFileSync("git", ["ls-files", "-z", "volumes"], { cwd: root, encoding: "utf8" })
      .split("\0")
      .filter((p) => p !== "" && p !== TRACKED_FILES_LIST)
      .map((p) => p.replace(/^volumes\//, ""));
    assert.ok(tracked.length > 0, "git ls-files volumes lists files (the unit tier runs in a git checkout)");
    const text = renderTrackedFilesList(tracked);
    const file = join(root, TRACKED_FILES_LIST);
    if (process.env["UPDATE_GOLDEN"] === "1") writeFileSync(file, text);
    assert.equal(readFileSync(file, "utf8"), text, `${TRACKED_FILES_LIST} differs from git ls-files volumes; run the unit tests with UPDATE_GOLDEN=1 to regenerate it`);
  });
});

describe("volume archives", () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "brics-env-test-volarchive-"));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("hold the tracked files and their directories, not what else lies in the tree", async () => {
    // A copy of the repository's volumes, as a developer's checkout may look after a while.
    const copy = join(work, "pkg");
    cpSync(join(root, "volumes"), join(copy, "volumes"), { recursive: true });
    const hub = join(copy, "volumes", "jupyterhub_root");
    await mkdir(join(hub, "etc", "jupyterhub", "brics_hub", "__pycache__"), { recursive: true });
    await writeFile(join(hub, "etc", "jupyterhub", "brics_hub", "__pycache__", "config.cpython-313.pyc"), "bytecode");
    await writeFile(join(hub, "etc", "jupyterhub", "jupyterhub_config.py~"), "editor backup");
    await writeFile(join(hub, "etc", "jupyterhub", ".jupyterhub_config.py.swp"), "editor swap");
    await mkdir(join(hub, "srv", "jupyterhub", "local-state"), { recursive: true });
    await writeFile(join(hub, "srv", "jupyterhub", "jupyterhub.sqlite"), "a developer's hub database");
    await writeFile(join(hub, "srv", "jupyterhub", "local-state", "cookie_secret"), "secret");

    const [plan] = volumesOf(getEnvironment("dev_dummyauth"));
    const files = await trackedVolumeFiles(copy, plan!);
    const entries = await entriesOf(volumeTarStream(join(copy, plan!.sourceDir), OWNER, files));
    for (const junk of ["__pycache__", "~", ".swp", "sqlite", "local-state", "cookie_secret"]) {
      assert.ok(!entries.some((e) => e.includes(junk)), `${junk} stays out:\n${entries.join("\n")}`);
    }
    assert.deepEqual(
      entries.filter((e) => !e.endsWith("/")),
      files.filter((f) => !f.endsWith(".gitkeep")).sort(),
      "every tracked file but the placeholders",
    );
    // Directories the files (and the placeholders) need, with their own modes and owners.
    for (const dir of ["etc/", "etc/jupyterhub/", "etc/jupyterhub/brics_hub/", "srv/jupyterhub/", "var/log/jupyterhub/"]) {
      assert.ok(entries.includes(dir), `${dir} in ${entries.join(", ")}`);
    }
  });

  it("refuse to leave out a tracked file that is missing, naming it", async () => {
    const copy = join(work, "incomplete");
    cpSync(join(root, "volumes"), join(copy, "volumes"), { recursive: true });
    await rm(join(copy, "volumes", "slurm_root", "var", "log", "sshd.log"));
    const plan = volumesOf(getEnvironment("dev_dummyauth")).find((v) => v.kind === "slurm_root")!;
    await assert.rejects(trackedVolumeFiles(copy, plan), /volumes\/slurm_root\/var\/log\/sshd\.log is listed in volumes\/tracked-files\.txt but missing/);
  });
});
