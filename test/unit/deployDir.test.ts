/**
 * Reading a deploy directory from disk: only regular files inside it (or behind a link the user
 * allowed), no larger than Kubernetes takes, UTF-8; user-provided secrets not open to others; and
 * when anything is wrong, `manifest` stops before it generates a key.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { inspectDeployDir } from "../../src/commands/check.js";
import { ReportedFailure, type Output } from "../../src/commands/common.js";
import { manifestCommand } from "../../src/commands/manifest.js";
import { DEPLOY_LOCK_FILE, withDeployLock } from "../../src/effects/deployDir.js";
import { KEYGEN_WORK_PREFIX } from "../../src/effects/sshKeys.js";
import { FOLLOW_OUTSIDE_LINKS_VARIABLE } from "../../src/plan/deployFiles.js";
import { getEnvironment, type EnvName } from "../../src/plan/environments.js";
import { MAX_OBJECT_BYTES } from "../../src/plan/names.js";
import type { Problem } from "../../src/plan/validate.js";
import { configMapText, goodFilesFor, goodValuesFor } from "./helpers.js";

const quiet: Output = { say: () => undefined, progress: () => undefined, warn: () => undefined };

let root: string;
let count = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "brics-env-test-deploydir-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[FOLLOW_OUTSIDE_LINKS_VARIABLE];
});

/** A deploy directory that passes `check` for `envName`, every file written 0600. */
async function goodDir(envName: EnvName): Promise<string> {
  const env = getEnvironment(envName);
  const dir = join(root, `${envName}-${++count}`);
  await mkdir(dir);
  await writeFile(join(dir, "deploy-configmap.yaml"), configMapText(goodValuesFor(env)), { mode: 0o600 });
  for (const [name, text] of Object.entries(goodFilesFor(env))) await writeFile(join(dir, name), text, { mode: 0o600 });
  return dir;
}

/**
 * What check says about the directory, less its remark on whether hubConnectUrl's address is this
 * machine's (the fixture's 10.1.2.3 is not; validate.test.ts covers that check).
 */
async function problemsOf(envName: EnvName, dir: string): Promise<Problem[]> {
  const problems = (await inspectDeployDir(getEnvironment(envName), dir)).problems;
  return problems.filter((p) => !(p.key === "hubConnectUrl" && /is not an address of this host/.test(p.message)));
}

const errorsOf = (ps: Problem[]) => ps.filter((p) => p.severity === "error");

describe("reading the deploy directory", () => {
  it("reads a good directory without remark", async () => {
    assert.deepEqual(await problemsOf("prod", await goodDir("prod")), []);
  });

  it("refuses a named pipe without reading it (reading would wait forever)", { timeout: 20_000 }, async () => {
    const dir = await goodDir("prod");
    await rm(join(dir, "ssh_known_hosts"));
    execFileSync("mkfifo", [join(dir, "ssh_known_hosts")]);
    const [p, ...rest] = errorsOf(await problemsOf("prod", dir));
    assert.deepEqual(rest, []);
    assert.match(p!.file, /ssh_known_hosts$/);
    assert.match(p!.message, /named pipe \(FIFO\), not a regular file/);
  });

  it("refuses a directory where a file belongs, and the ConfigMap as a FIFO", { timeout: 20_000 }, async () => {
    const dir = await goodDir("prod");
    await rm(join(dir, "ssh_client_key.pub"));
    await mkdir(join(dir, "ssh_client_key.pub"));
    await rm(join(dir, "deploy-configmap.yaml"));
    execFileSync("mkfifo", [join(dir, "deploy-configmap.yaml")]);
    const ps = errorsOf(await problemsOf("prod", dir));
    assert.deepEqual(ps.map((p) => [p.file.replace(/.*\//, ""), p.message.replace(/,.*/, "")]), [
      ["deploy-configmap.yaml", "is a named pipe (FIFO)"],
      ["ssh_client_key.pub", "is a directory"],
    ]);
  });

  it("follows links inside the directory, refuses links out of it unless allowed, and refuses devices", async () => {
    const dir = await goodDir("prod");
    // Inside: a link to another name in the same directory is read.
    await writeFile(join(dir, "known_hosts.real"), goodFilesFor(getEnvironment("prod"))["ssh_known_hosts"]!);
    await rm(join(dir, "ssh_known_hosts"));
    await symlink("known_hosts.real", join(dir, "ssh_known_hosts"));
    assert.deepEqual(await problemsOf("prod", dir), []);

    // Out: a key kept elsewhere.
    const elsewhere = join(root, `elsewhere-${++count}`);
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, "key"), goodFilesFor(getEnvironment("prod"))["ssh_client_key"]!, { mode: 0o600 });
    await rm(join(dir, "ssh_client_key"));
    await symlink(join(elsewhere, "key"), join(dir, "ssh_client_key"));
    const [p, ...rest] = errorsOf(await problemsOf("prod", dir));
    assert.deepEqual(rest, []);
    assert.match(p!.message, new RegExp(`symbolic link to ${join(elsewhere, "key")}, outside the deploy directory`));
    assert.match(p!.expected!, new RegExp(`${FOLLOW_OUTSIDE_LINKS_VARIABLE}=1`));
    process.env[FOLLOW_OUTSIDE_LINKS_VARIABLE] = "1";
    assert.deepEqual(await problemsOf("prod", dir), []);

    // Even when allowed, a link must end at a regular file, not at a device.
    await rm(join(dir, "ssh_client_key"));
    await symlink("/dev/zero", join(dir, "ssh_client_key"));
    assert.match(errorsOf(await problemsOf("prod", dir))[0]!.message, /character device, not a regular file/);
    await rm(join(dir, "ssh_client_key"));
    await symlink(join(elsewhere, "gone"), join(dir, "ssh_client_key"));
    assert.match(errorsOf(await problemsOf("prod", dir))[0]!.message, /link to a file that does not exist/);
  });

  it("refuses a file larger than a ConfigMap or Secret may be, saying which and how large", async () => {
    const dir = await goodDir("prod");
    const big = goodFilesFor(getEnvironment("prod"))["ssh_known_hosts"]! + `# ${"x".repeat(MAX_OBJECT_BYTES)}\n`;
    await writeFile(join(dir, "ssh_known_hosts"), big);
    const [p] = errorsOf(await problemsOf("prod", dir));
    assert.match(p!.file, /ssh_known_hosts$/);
    assert.match(p!.message, new RegExp(`is 1\\.0 MiB \\(${Buffer.byteLength(big)} bytes\\), more than Kubernetes accepts in a Secret`));
    assert.match(p!.expected!, /at most 1\.0 MiB \(1048576 bytes\)/);
    const cm = await goodDir("prod");
    await writeFile(join(cm, "deploy-configmap.yaml"), configMapText(goodValuesFor(getEnvironment("prod"))) + `# ${"y".repeat(MAX_OBJECT_BYTES)}\n`);
    assert.match(errorsOf(await problemsOf("prod", cm))[0]!.message, /more than Kubernetes accepts in a ConfigMap/);
  });

  it("refuses text that is not UTF-8, naming the line", async () => {
    const dir = await goodDir("prod");
    const text = configMapText(goodValuesFor(getEnvironment("prod")));
    const bytes = Buffer.concat([Buffer.from(text), Buffer.from("  # caf"), Buffer.from([0xe9]), Buffer.from("\n")]);
    await writeFile(join(dir, "deploy-configmap.yaml"), bytes);
    const [p, ...rest] = errorsOf(await problemsOf("prod", dir));
    assert.deepEqual(rest, []);
    assert.match(p!.message, /not valid UTF-8/);
    assert.equal(p!.line, text.split("\n").length);
  });

  it("warns about user-provided secrets others can read, with the chmod to run", async () => {
    const dir = await goodDir("dev_realauth_zenithclient");
    await chmod(join(dir, "ssh_zenith_client_key"), 0o644);
    await chmod(join(dir, "zenith_client_config.yaml"), 0o640);
    await chmod(join(dir, "ssh_zenith_client_key.pub"), 0o644);
    const ps = await problemsOf("dev_realauth_zenithclient", dir);
    assert.deepEqual(errorsOf(ps), []);
    const warned = Object.fromEntries(ps.map((p) => [p.file.replace(/.*\//, ""), p]));
    assert.deepEqual(Object.keys(warned).sort(), ["ssh_zenith_client_key", "zenith_client_config.yaml"]);
    assert.match(warned["ssh_zenith_client_key"]!.message, /can be read by its group and all other users \(mode 0644\)/);
    assert.equal(warned["ssh_zenith_client_key"]!.expected, `chmod 600 ${join(dir, "ssh_zenith_client_key")}`);
    assert.match(warned["zenith_client_config.yaml"]!.message, /can be read by its group \(mode 0640\)/);
    assert.equal(warned["zenith_client_config.yaml"]!.expected, `chmod 600 ${join(dir, "zenith_client_config.yaml")}`);

    const prod = await goodDir("prod");
    await chmod(join(prod, "ssh_client_key"), 0o604);
    const [w] = await problemsOf("prod", prod);
    assert.equal(w!.severity, "warning");
    assert.match(w!.message, /can be read by all other users \(mode 0604\)/);
  });

  it("does not warn about generated keys: manifest keeps them 0600 itself", async () => {
    const dir = await goodDir("dev_dummyauth");
    await writeFile(join(dir, "ssh_client_key"), goodFilesFor(getEnvironment("prod"))["ssh_client_key"]!, { mode: 0o644 });
    await writeFile(join(dir, "ssh_client_key.pub"), goodFilesFor(getEnvironment("prod"))["ssh_client_key.pub"]!, { mode: 0o644 });
    assert.deepEqual(await problemsOf("dev_dummyauth", dir), []);
  });
});

describe("reading while another run makes a key pair", () => {
  it("reads the pair once it is complete, and reports half a pair that is one", async () => {
    const dir = join(root, `keygen-${++count}`);
    await mkdir(dir);
    await writeFile(join(dir, "deploy-configmap.yaml"), configMapText(goodValuesFor(getEnvironment("dev_dummyauth"))), { mode: 0o600 });
    const pair = join(root, `pair-${count}`);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", pair]);
    const halfPair = (ps: Problem[]) => errorsOf(ps).filter((p) => /ssh_client_key/.test(`${p.file} ${p.message}`));

    // As ensureKeyPair leaves it between its two links: the private half in place, the work directory there.
    await writeFile(join(dir, "ssh_client_key"), await readFile(pair), { mode: 0o600 });
    await mkdir(join(dir, `${KEYGEN_WORK_PREFIX}test`));
    const reading = problemsOf("dev_dummyauth", dir);
    await new Promise((r) => setTimeout(r, 100));
    await writeFile(join(dir, "ssh_client_key.pub"), await readFile(`${pair}.pub`), { mode: 0o644 });
    await rm(join(dir, `${KEYGEN_WORK_PREFIX}test`), { recursive: true });
    assert.deepEqual(halfPair(await reading), [], "the complete pair was read");

    await rm(join(dir, "ssh_client_key.pub"));
    assert.equal(halfPair(await problemsOf("dev_dummyauth", dir)).length, 1, "half a pair with nobody making it is an error");
  });
});

describe("manifest on a directory with a bad file", () => {
  for (const [what, spoil] of [
    ["a ConfigMap with a YAML alias", (dir: string) => writeFile(join(dir, "deploy-configmap.yaml"), `${configMapText(goodValuesFor(getEnvironment("dev_dummyauth")))}  copy: *x\n`.replace("data:", "data: &x")) ],
    ["a FIFO as ssh_host_key.pub", async (dir: string) => execFileSync("mkfifo", [join(dir, "ssh_host_key.pub")])],
    [
      "a ConfigMap that is not UTF-8 (in a comment: YAML alone would not mind)",
      (dir: string) =>
        writeFile(join(dir, "deploy-configmap.yaml"), Buffer.concat([Buffer.from(configMapText(goodValuesFor(getEnvironment("dev_dummyauth")))), Buffer.from([0x23, 0x20, 0xe9, 0x0a])])),
    ],
  ] as const) {
    it(`stops before generating any key: ${what}`, { timeout: 20_000 }, async () => {
      const dir = await goodDir("dev_dummyauth");
      await spoil(dir);
      await assert.rejects(manifestCommand(getEnvironment("dev_dummyauth"), dir, {}, quiet), ReportedFailure);
      const left = (await readdir(dir)).filter((f) => f !== "deploy-configmap.yaml" && f !== "ssh_host_key.pub");
      assert.deepEqual(left, [], "nothing generated or written");
      assert.equal(existsSync(join(dir, "combined.yaml")), false);
    });
  }
});

describe("the deploy directory's lock", () => {
  it("makes a second holder wait until the first is done, and is gone afterwards", async () => {
    const dir = await goodDir("prod");
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const firstIn = new Promise<void>((r) => (entered = r));
    const first = withDeployLock(dir, async () => {
      order.push("first in");
      entered();
      await held;
      order.push("first out");
    });
    // Taking the lock is asynchronous: the second run starts once the first holds it.
    await firstIn;
    const waits: string[] = [];
    const second = withDeployLock(dir, async () => void order.push("second"), (line) => waits.push(line));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(order, ["first in"]);
    assert.equal(waits.length, 1);
    assert.match(waits[0]!, new RegExp(`waiting for another brics-env run \\(pid ${process.pid} on .*\\), which holds .*${DEPLOY_LOCK_FILE}`));
    release();
    await Promise.all([first, second]);
    assert.deepEqual(order, ["first in", "first out", "second"]);
    assert.equal(existsSync(join(dir, DEPLOY_LOCK_FILE)), false);
  });

  it("takes over a lock left by a process of this host that no longer runs", async () => {
    const dir = await goodDir("prod");
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    await writeFile(join(dir, DEPLOY_LOCK_FILE), `${dead} ${hostname()}\n`);
    const waits: string[] = [];
    assert.equal(await withDeployLock(dir, async () => "ran", (l) => waits.push(l)), "ran");
    assert.deepEqual(waits, []);
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith(".")), [], "no lock or stale copy left");
  });
});
