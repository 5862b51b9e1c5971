/**
 * Every environment's example deploy directory, completed with the files the README and `init`
 * tell a user to add (made with the commands they document), passes `check` and yields a
 * combined.yaml that is plain Kubernetes; a second `manifest` changes nothing.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments, parseDocument } from "yaml";
import { run, runAllowFailure } from "../../src/effects/exec.js";
import { ENVIRONMENTS, type Environment } from "../../src/plan/environments.js";
import { repoRoot } from "../../src/paths.js";

const root = repoRoot();
const cli = join(root, "dist", "src", "cli.js");
let scratch: string;

async function brics(...args: string[]) {
  return runAllowFailure(process.execPath, [cli, ...args], { env: { BRICS_ENV_DEBUG: "" } });
}

async function keygen(file: string, comment: string): Promise<void> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-f", file, "-N", "", "-C", comment]);
}

/** The files a user adds for `env`, made the way the spec and `init` describe. */
async function addUserFiles(env: Environment, dir: string): Promise<void> {
  const configMap = join(dir, "deploy-configmap.yaml");
  if (env.auth === "dummy") {
    // The example's password is public and refused: a random one, as the docs say (openssl rand -base64 36).
    const text = await readFile(configMap, "utf8");
    await writeFile(configMap, text.replace(/dummyAuthPassword: "[^"]*"/, `dummyAuthPassword: "${randomBytes(36).toString("base64")}"`));
  }
  const config = (parseDocument(await readFile(configMap, "utf8")).toJS() as { data: Record<string, string> }).data;
  if (env.slurm === "external") {
    await keygen(join(dir, "ssh_client_key"), "JupyterHub-Slurm client key");
    // On the Slurm host: `printf "%s " <sshHostname>` followed by its ed25519 host public key.
    const hostKey = join(scratch, `${env.name}-host`);
    await keygen(hostKey, "slurm host");
    await writeFile(join(dir, "ssh_known_hosts"), `${config["sshHostname"]} ${await readFile(`${hostKey}.pub`, "utf8")}`);
  }
  if (env.ingress === "zenith") {
    await keygen(join(dir, "ssh_zenith_client_key"), "JupyterHub Zenith client key");
    await copyFile(join(root, "examples", "zenith_client_config.yaml"), join(dir, "zenith_client_config.yaml"));
  }
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "brics-env-test-examples-"));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

for (const env of ENVIRONMENTS) {
  describe(`examples/${env.name}`, () => {
    const dir = () => join(scratch, env.name);

    test("with the documented user files, passes check", async () => {
      await mkdir(dir());
      await copyFile(join(root, "examples", env.name, "deploy-configmap.yaml"), join(dir(), "deploy-configmap.yaml"));
      if (env.auth === "dummy") {
        const copied = await brics("check", env.name, dir());
        assert.notEqual(copied.exitCode, 0, "the example's public password is refused");
        assert.match(copied.stdout + copied.stderr, /dummyAuthPassword: is the example value of this repository's documentation/);
      }
      await addUserFiles(env, dir());
      const r = await brics("check", env.name, dir());
      assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /^error:/m);
    });

    test("yields a combined.yaml of plain Kubernetes objects, and a re-run changes nothing", async () => {
      const first = await brics("manifest", env.name, dir());
      assert.equal(first.exitCode, 0, first.stdout + first.stderr);
      const before = new Map<string, string>();
      for (const f of await readdir(dir())) before.set(f, await readFile(join(dir(), f), "utf8"));

      const docs = parseAllDocuments(before.get("combined.yaml") ?? "");
      assert.ok(docs.length >= 2, "Secrets and a Pod");
      for (const doc of docs) {
        assert.deepEqual(doc.errors, []);
        const obj = doc.toJS() as { apiVersion: string; kind: string; metadata: { name: string } };
        assert.equal(obj.apiVersion, "v1", `${obj.kind} ${obj.metadata.name}`);
        assert.ok(["Secret", "Pod", "PersistentVolumeClaim"].includes(obj.kind), obj.kind);
      }
      assert.equal(docs.filter((d) => (d.toJS() as { kind: string }).kind === "Pod").length, 1);

      const second = await brics("manifest", env.name, dir());
      assert.equal(second.exitCode, 0, second.stdout + second.stderr);
      for (const [f, text] of before) assert.equal(await readFile(join(dir(), f), "utf8"), text, `${f} unchanged by a second manifest`);
    });
  });
}
