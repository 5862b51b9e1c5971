import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { rememberedVersion, rememberVersion, versionCacheFile, versionCacheKey } from "../../src/effects/podmanVersionCache.js";

const dir = mkdtempSync(join(tmpdir(), "brics-env-version-cache-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A podman that answers `version --format json` with `answer` and logs each call to `log`. */
function fakePodman(name: string, answer: object): { binary: string; log: string } {
  const binary = join(dir, name);
  const log = join(dir, `${name}.log`);
  writeFileSync(binary, `#!/bin/sh\necho "$*" >> '${log}'\necho '${JSON.stringify(answer)}'\n`);
  chmodSync(binary, 0o755);
  return { binary, log };
}

/** podmanVersionInfo() in a process of its own, as each brics-env command asks it. */
function versionInNewProcess(binary: string, cacheHome: string): { version: string; remote: boolean } {
  const podmanModule = pathToFileURL(join(import.meta.dirname, "..", "..", "src", "effects", "podman.js")).href;
  const script = `const { podmanVersionInfo } = await import(${JSON.stringify(podmanModule)}); const i = await podmanVersionInfo(); console.log(JSON.stringify({ version: i.version.raw, remote: i.remote }));`;
  const env: NodeJS.ProcessEnv = { ...process.env, BRICS_ENV_PODMAN: binary, XDG_CACHE_HOME: cacheHome, XDG_CONFIG_HOME: join(cacheHome, "config") };
  delete env["CONTAINER_HOST"];
  delete env["CONTAINER_CONNECTION"];
  return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { env, encoding: "utf8" })) as { version: string; remote: boolean };
}

const calls = (log: string) => readFileSync(log, "utf8").trim().split("\n").length;

describe("podman's version, remembered", () => {
  it("asks a local podman once: the next command reads the answer from the cache", () => {
    const { binary, log } = fakePodman("podman-local", { Client: { Version: "4.3.1" } });
    const cache = join(dir, "cache-local");
    assert.deepEqual(versionInNewProcess(binary, cache), { version: "4.3.1", remote: false });
    assert.deepEqual(versionInNewProcess(binary, cache), { version: "4.3.1", remote: false });
    assert.equal(calls(log), 1);
  });

  it("asks again when the binary changes (an upgraded podman)", () => {
    const { binary, log } = fakePodman("podman-upgraded", { Client: { Version: "4.3.1" } });
    const cache = join(dir, "cache-upgraded");
    versionInNewProcess(binary, cache);
    writeFileSync(binary, readFileSync(binary, "utf8").replace("4.3.1", "5.4.2"));
    utimesSync(binary, new Date(), new Date(Date.now() + 5000));
    assert.deepEqual(versionInNewProcess(binary, cache), { version: "5.4.2", remote: false });
    assert.equal(calls(log), 2);
  });

  it("never remembers a remote client's answer: the server can change without the client", () => {
    const { binary, log } = fakePodman("podman-remote", { Client: { Version: "5.4.2" }, Server: { Version: "4.9.3" } });
    const cache = join(dir, "cache-remote");
    assert.deepEqual(versionInNewProcess(binary, cache), { version: "4.9.3", remote: true });
    assert.deepEqual(versionInNewProcess(binary, cache), { version: "4.9.3", remote: true });
    assert.equal(calls(log), 2);
  });

  it("keys the answer on the settings that can make podman remote", () => {
    const { binary } = fakePodman("podman-keyed", { Client: { Version: "4.3.1" } });
    const home = join(dir, "home-keyed");
    const env = { XDG_CONFIG_HOME: home };
    const key = versionCacheKey(binary, env);
    assert.ok(key !== undefined);
    assert.equal(versionCacheKey(binary, env), key, "stable while nothing changes");
    assert.notEqual(versionCacheKey(binary, { ...env, CONTAINER_HOST: "ssh://core@127.0.0.1:2222/run/podman/podman.sock" }), key);
    assert.notEqual(versionCacheKey(binary, { ...env, CONTAINER_CONNECTION: "machine" }), key);
    const dropIns = join(home, "containers", "containers.conf.d");
    mkdirSync(dropIns, { recursive: true });
    writeFileSync(join(dropIns, "remote.conf"), "[engine]\n");
    const withDropIn = versionCacheKey(binary, env);
    assert.notEqual(withDropIn, key);
    writeFileSync(join(dropIns, "remote.conf"), "[engine]\nremote = true\n");
    assert.notEqual(versionCacheKey(binary, env), withDropIn, "a drop-in edited in place counts");
    assert.equal(versionCacheKey(join(dir, "no-such-podman"), env), undefined);
  });

  it("ignores a damaged or foreign cache file, and writes it private", () => {
    const file = versionCacheFile({ XDG_CACHE_HOME: join(dir, "cache-damaged") });
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, "{not json");
    assert.equal(rememberedVersion("k", file), undefined);
    rememberVersion("k", "4.3.1", file);
    assert.equal(rememberedVersion("k", file), "4.3.1");
    assert.equal(rememberedVersion("other", file), undefined);
    assert.equal(execFileSync("stat", ["-c", "%a", file], { encoding: "utf8" }).trim(), "600");
  });
});
