/** The compiled CLI as a user runs it: exit codes, messages, files written. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run, runAllowFailure } from "../../src/effects/exec.js";
import { ENV_NAMES } from "../../src/plan/environments.js";
import { repoRoot } from "../../src/paths.js";

const cli = join(repoRoot(), "dist", "src", "cli.js");
let dir: string;

async function brics(...args: string[]) {
  return runAllowFailure(process.execPath, [cli, ...args], { env: { BRICS_ENV_DEBUG: "" } });
}

function noStackTrace(text: string): void {
  assert.doesNotMatch(text, /^\s+at .+:\d+:\d+\)?$/m, `unexpected stack trace:\n${text}`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "brics-env-test-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("brics-env list", () => {
  test("names every environment", async () => {
    const r = await brics("list");
    assert.equal(r.exitCode, 0);
    for (const name of ENV_NAMES) assert.match(r.stdout, new RegExp(`^${name}$`, "m"));
  });
  test("--json is machine-readable", async () => {
    const r = await brics("list", "--json");
    assert.equal(r.exitCode, 0);
    const parsed = JSON.parse(r.stdout) as Array<{ name: string; containers: string[] }>;
    assert.deepEqual(parsed.map((e) => e.name), [...ENV_NAMES]);
    assert.deepEqual(parsed.find((e) => e.name === "prod")?.containers, ["jupyterhub", "zenith-client"]);
  });
});

describe("usage errors exit 2 without a stack trace", () => {
  for (const args of [["bogus"], ["init", "no_such_env", "x"], ["check", "dev_dummyauth"], ["up", "dev_dummyauth", "--timeout", "soon"], ["manifest", "dev_dummyauth", "x", "--publish", "8000"], ["logs", "dev_dummyauth", "--tail", "-3"]]) {
    test(args.join(" "), async () => {
      const r = await brics(...args);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, /error/);
      noStackTrace(r.stderr);
    });
  }
  test("an unknown environment lists the valid ones", async () => {
    const r = await brics("check", "dev", dir);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /unknown environment 'dev'; expected one of: dev_dummyauth, .*prod/);
  });
});

describe("--help answers real questions", () => {
  for (const cmd of ["list", "init", "check", "resources", "manifest", "up", "down", "backup", "restore", "status", "logs", "doctor"]) {
    test(cmd, async () => {
      const r = await brics(cmd, "--help");
      assert.equal(r.exitCode, 0);
      assert.match(r.stdout, new RegExp(`Usage: brics-env ${cmd}`));
      if (cmd !== "status" && cmd !== "list") assert.match(r.stdout, /Examples:|Environment:/);
    });
  }
});

describe("init, check, manifest on a dev_dummyauth deploy directory", () => {
  test("init writes a ConfigMap with a random password, 0600, and never overwrites", async () => {
    const d = join(dir, "dummy");
    const r = await brics("init", "dev_dummyauth", d);
    assert.equal(r.exitCode, 0, r.stderr);
    const file = join(d, "deploy-configmap.yaml");
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, "utf8");
    const m = /dummyAuthPassword:\s*"?([A-Za-z0-9+/=]+)"?/.exec(text);
    assert.ok(m, "dummyAuthPassword is set");
    assert.equal(m[1]!.length, 48);
    const again = await brics("init", "dev_dummyauth", d);
    assert.equal(again.exitCode, 0);
    assert.match(again.stdout, /kept existing/);
    assert.equal(await readFile(file, "utf8"), text);
    const other = await brics("init", "dev_dummyauth", join(dir, "dummy2"));
    const text2 = await readFile(join(dir, "dummy2", "deploy-configmap.yaml"), "utf8");
    assert.equal(other.exitCode, 0);
    assert.notEqual(/dummyAuthPassword:\s*"?([^"\n]+)/.exec(text2)?.[1], m[1], "passwords differ between runs");
  });

  test("check passes on what init wrote", async () => {
    const r = await brics("check", "dev_dummyauth", join(dir, "dummy"));
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok for dev_dummyauth/);
  });

  test("manifest generates keys once and writes combined.yaml 0600", async () => {
    const d = join(dir, "dummy");
    const r = await brics("manifest", "dev_dummyauth", d);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /generated key pair .*ssh_client_key/);
    assert.match(r.stdout, /generated key pair .*ssh_host_key/);
    for (const f of ["ssh_client_key", "ssh_host_key", "combined.yaml"]) assert.equal((await stat(join(d, f))).mode & 0o777, 0o600, f);
    const key = await readFile(join(d, "ssh_client_key"), "utf8");
    const manifest = await readFile(join(d, "combined.yaml"), "utf8");
    assert.match(manifest, /kind: Pod/);
    const again = await brics("manifest", "dev_dummyauth", d);
    assert.equal(again.exitCode, 0);
    assert.match(again.stdout, /kept existing key pair .*ssh_client_key/);
    assert.equal(await readFile(join(d, "ssh_client_key"), "utf8"), key);
    assert.equal(await readFile(join(d, "combined.yaml"), "utf8"), manifest, "re-running changes nothing");
  });
});

describe("manifest runs at the same time", () => {
  const RUNS = 8;
  const fields = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(" ");

  test("generate each key pair once, never replace a key, and leave nothing behind", async () => {
    const d = join(dir, "concurrent");
    assert.equal((await brics("init", "dev_dummyauth", d)).exitCode, 0);
    const first = await Promise.all(Array.from({ length: RUNS }, () => brics("manifest", "dev_dummyauth", d)));
    for (const r of first) assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const said = first.map((r) => r.stdout).join("\n");
    for (const key of ["ssh_client_key", "ssh_host_key"]) {
      const generated = said.split("\n").filter((l) => new RegExp(`^generated key pair .*/${key} `).test(l));
      assert.equal(generated.length, 1, `${key} generated by exactly one of ${RUNS} runs:\n${said}`);
      // The halves still belong together, and every run's manifest carries this very key.
      const derived = await run("ssh-keygen", ["-y", "-f", join(d, key)]);
      assert.equal(fields(derived.stdout), fields(await readFile(join(d, `${key}.pub`), "utf8")), `${key} and ${key}.pub are one pair`);
    }
    const manifest = await readFile(join(d, "combined.yaml"), "utf8");
    assert.ok(manifest.includes(Buffer.from(await readFile(join(d, "ssh_client_key"))).toString("base64")), "combined.yaml holds the key on disk");
    assert.deepEqual((await readdir(d)).sort(), ["combined.yaml", "deploy-configmap.yaml", "ssh_client_key", "ssh_client_key.pub", "ssh_host_key", "ssh_host_key.pub"]);

    // With the keys there, every run keeps them.
    const before = await Promise.all(["ssh_client_key", "ssh_host_key"].map((f) => readFile(join(d, f), "utf8")));
    const second = await Promise.all(Array.from({ length: RUNS }, () => brics("manifest", "dev_dummyauth", d)));
    for (const r of second) {
      assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /^generated/m);
    }
    assert.deepEqual(await Promise.all(["ssh_client_key", "ssh_host_key"].map((f) => readFile(join(d, f), "utf8"))), before);
  });
});

describe("bad deploy directories", () => {
  test("prod straight after init: every missing file and placeholder at once, exit 1", async () => {
    const d = join(dir, "prod");
    const init = await brics("init", "prod", d);
    assert.equal(init.exitCode, 0);
    assert.match(init.stdout, /ssh_known_hosts/);
    assert.match(init.stdout, /zenith_client_config\.yaml/);
    const r = await brics("check", "prod", d);
    assert.equal(r.exitCode, 1);
    for (const f of ["ssh_client_key", "ssh_known_hosts", "ssh_zenith_client_key", "zenith_client_config.yaml", "deploy-configmap.yaml"]) {
      assert.match(r.stdout, new RegExp(`error: .*${f.replace(".", "\\.")}`), f);
    }
    noStackTrace(r.stdout + r.stderr);
  });

  test("manifest refuses to write anything for a broken directory", async () => {
    const d = join(dir, "broken");
    await brics("init", "dev_realauth", d);
    await writeFile(join(d, "deploy-configmap.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deploy-config}\ndata:\n  logLevel: LOUD\n  baseUrl: [\n");
    const r = await brics("manifest", "dev_realauth", d);
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /deploy-configmap\.yaml.*not valid YAML/);
    assert.equal(existsSync(join(d, "combined.yaml")), false);
    assert.equal(existsSync(join(d, "ssh_client_key")), false);
    noStackTrace(r.stdout + r.stderr);
  });

  test("a key pair whose halves do not match is reported", async () => {
    const d = join(dir, "dummy");
    const other = join(dir, "dummy2");
    await brics("manifest", "dev_dummyauth", other);
    await writeFile(join(d, "ssh_host_key.pub"), await readFile(join(other, "ssh_host_key.pub")));
    const r = await brics("check", "dev_dummyauth", d);
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /ssh_host_key.*does not match ssh_host_key\.pub/);
  });

  test("up stops at check for an environment that needs the user's files, creating nothing", async () => {
    const d = join(dir, "ext");
    const r = await brics("up", "dev_dummyauth_extslurm", d);
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /running init first/);
    assert.match(r.stdout, /error: .*ssh_known_hosts: is missing/);
    assert.equal(existsSync(join(d, "combined.yaml")), false);
    noStackTrace(r.stdout + r.stderr);
  });

  test("a missing deploy directory is a usage error that says how to make it", async () => {
    const r = await brics("check", "dev_dummyauth", join(dir, "nope"));
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /brics-env init dev_dummyauth/);
  });
});

describe("brics-env doctor", () => {
  test("says what rootful podman means for published ports and CAP_SYS_ADMIN exactly when podman runs as root", { timeout: 120_000 }, async () => {
    const rootless = (await run("podman", ["info", "--format", "{{.Host.Security.Rootless}}"])).stdout.trim() === "true";
    const r = await brics("doctor");
    noStackTrace(r.stderr);
    const text = r.stdout + r.stderr;
    assert.equal(/podman runs as root here/.test(text), !rootless, text);
    if (!rootless) {
      assert.match(text, /published port .* opened by root's podman/);
      assert.match(text, /CAP_SYS_ADMIN, where the Slurm container gets it, is root's capability/);
    }
  });
});
