/**
 * `brics-env service` as a user runs it: the unit lands in the deploy directory, passes
 * `systemd-analyze verify`, a re-run changes nothing, and a unit changed by hand is kept (the new
 * one written beside it) until --force. Reads podman's version, images and volumes; creates nothing
 * in podman.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runAllowFailure } from "../../src/effects/exec.js";
import { repoRoot } from "../../src/paths.js";

const cli = join(repoRoot(), "dist", "src", "cli.js");
let dir: string;

async function brics(...args: string[]) {
  return runAllowFailure(process.execPath, [cli, ...args], { env: { BRICS_ENV_DEBUG: "" } });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "brics-env-test-service-"));
  const init = await brics("init", "dev_dummyauth", dir);
  assert.equal(init.exitCode, 0, init.stderr);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("brics-env service", () => {
  let unitFile = "";

  test("writes the unit podman's version calls for into the deploy directory, with combined.yaml", async () => {
    const r = await brics("service", "dev_dummyauth", dir);
    assert.equal(r.exitCode, 0, r.stderr);
    const kube = join(dir, "jupyterhub-slurm-dev_dummyauth.kube");
    const plain = join(dir, "jupyterhub-slurm-dev_dummyauth.service");
    assert.ok(existsSync(kube) !== existsSync(plain), "exactly one unit");
    unitFile = existsSync(kube) ? kube : plain;
    assert.match(r.stdout, existsSync(kube) ? /a Quadlet unit \(podman / : /a unit running brics-env up\/down \(podman \S+ has no Quadlet\)/);
    assert.ok(existsSync(join(dir, "combined.yaml")));
    assert.match(r.stdout, /systemctl daemon-reload/);
    const text = await readFile(unitFile, "utf8");
    assert.doesNotMatch(text, /PRIVATE KEY|dummyAuthPassword/, "no secret in the unit");
    if (unitFile === plain) {
      const v = spawnSync("systemd-analyze", ["verify", unitFile], { encoding: "utf8" });
      assert.equal(`${v.stdout}${v.stderr}`.trim(), "", "systemd-analyze verify is silent");
      assert.equal(v.status, 0);
    }
  });

  test("--plain writes the brics-env up/down unit on any podman", async () => {
    const r = await brics("service", "dev_dummyauth", dir, "--plain");
    assert.equal(r.exitCode, 0, r.stderr);
    const plain = join(dir, "jupyterhub-slurm-dev_dummyauth.service");
    const text = await readFile(plain, "utf8");
    assert.match(text, new RegExp(`^ExecStart=${process.execPath} \\S+/dist/src/cli\\.js up dev_dummyauth ${dir} --no-build --timeout 600$`, "m"));
    const v = spawnSync("systemd-analyze", ["verify", plain], { encoding: "utf8" });
    assert.equal(`${v.stdout}${v.stderr}`.trim(), "");
    unitFile = plain;
  });

  test("a re-run changes nothing; a unit changed by hand is kept until --force", async () => {
    const again = await brics("service", "dev_dummyauth", dir, "--plain");
    assert.equal(again.exitCode, 0, again.stderr);
    assert.match(again.stdout, /jupyterhub-slurm-dev_dummyauth\.service is up to date/);

    const original = await readFile(unitFile, "utf8");
    const edited = original.replace("TimeoutStopSec=300", "TimeoutStopSec=600");
    await writeFile(unitFile, edited);
    const refused = await brics("service", "dev_dummyauth", dir, "--plain");
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, /differs from the unit brics-env would write now .* kept it, and wrote the new one to .*\.service\.new/);
    assert.equal(await readFile(unitFile, "utf8"), edited, "the edit survives");
    assert.equal(await readFile(`${unitFile}.new`, "utf8"), original);

    const forced = await brics("service", "dev_dummyauth", dir, "--plain", "--force");
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.match(forced.stdout, /replaced .*jupyterhub-slurm-dev_dummyauth\.service/);
    assert.equal(await readFile(unitFile, "utf8"), original);
  });

  test("a deploy directory with errors gets no unit", async () => {
    const bad = await mkdtemp(join(tmpdir(), "brics-env-test-service-bad-"));
    try {
      await brics("init", "prod", bad);
      const r = await brics("service", "prod", bad);
      assert.equal(r.exitCode, 1);
      assert.match(r.stdout, /placeholder/);
      assert.ok(!existsSync(join(bad, "jupyterhub-slurm-prod.kube")) && !existsSync(join(bad, "jupyterhub-slurm-prod.service")));
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});
