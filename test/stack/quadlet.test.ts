/**
 * Tier 3: the Quadlet unit `brics-env service` writes for podman >= 4.4, turned into its service by
 * a real quadlet and checked by that system's `systemd-analyze verify`. This machine's podman (4.3)
 * has no Quadlet, so both come from Debian 13's podman and systemd packages, installed on the
 * offline hub base (`brics-env bootstrap-bases`) in an image this test builds and keeps, like the
 * bases, for the next run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { BASES } from "../../src/plan/bootstrapBases.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { renderUnit } from "../../src/plan/systemdUnit.js";
import { repoRoot } from "../../src/paths.js";

const IMAGE = "localhost/brics-env-test-quadlet:debian-trixie";
const DEPLOY_DIR = "/srv/brics/deploy/prod";

async function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<{ code: number; out: string }> {
  const r = await execa(cmd, args, { reject: false, all: true, timeout: opts.timeoutMs ?? 20 * 60_000, ...(opts.input !== undefined ? { input: opts.input } : { stdin: "ignore" }) });
  return { code: r.exitCode ?? -1, out: r.all ?? "" };
}

test("the .kube unit of brics-env service: Quadlet (Debian 13's podman) makes a service that systemd-analyze verify accepts", { timeout: 40 * 60_000 }, async () => {
  const base = BASES.find((b) => b.kind === "jupyterhub")!.image;
  const boot = await run(process.execPath, [join(repoRoot(), "dist", "src", "cli.js"), "bootstrap-bases", "--only", "jupyterhub"]);
  assert.equal(boot.code, 0, boot.out);

  const containerfile = [
    `FROM ${base}`,
    "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends podman systemd && rm -rf /var/lib/apt/lists/*",
    "",
  ].join("\n");
  const context = mkdtempSync(join(tmpdir(), "brics-env-quadlet-"));
  try {
    writeFileSync(join(context, "Containerfile"), containerfile);
    const built = await run("podman", ["build", "--layers", "-t", IMAGE, "-f", join(context, "Containerfile"), context]);
    assert.equal(built.code, 0, built.out);

    for (const rootless of [false, true]) {
      const unit = renderUnit({ env: getEnvironment("prod"), kind: "quadlet", deployDir: DEPLOY_DIR, rootless, variables: {}, podmanVersion: "podman 5" });
      writeFileSync(join(context, unit.fileName), unit.text);
      // Quadlet reads the unit directories it is given and writes the services to the directory named last.
      const script = [
        "set -eu",
        "mkdir -p /out",
        `QUADLET_UNIT_DIRS=/units /usr/libexec/podman/quadlet ${rootless ? "-user " : ""}-no-kmsg-log -v /out`,
        `cat /out/${unit.serviceName}`,
        "echo '--- verify'",
        // (A system manager's view for both: the container runs no user manager.)
        `systemd-analyze verify /out/${unit.serviceName} 2>&1`,
        "echo '--- verified'",
      ].join("\n");
      const r = await run("podman", ["run", "--rm", "--network=none", "-v", `${context}:/units:ro`, "--entrypoint", "/bin/sh", IMAGE, "-c", script]);
      assert.equal(r.code, 0, r.out);
      const [service = "", verify = ""] = r.out.split("--- verify\n");
      assert.match(service, new RegExp(`^ExecStart=.*podman.* kube play .*--configmap ${DEPLOY_DIR}/deploy-configmap\\.yaml .*${DEPLOY_DIR}/combined\\.yaml$`, "m"));
      assert.match(service, new RegExp(`^ExecStop(Post)?=.*podman.* kube down ${DEPLOY_DIR}/combined\\.yaml$`, "m"));
      assert.match(service, new RegExp(`^WantedBy=${rootless ? "default" : "multi-user"}\\.target$`, "m"));
      assert.equal(verify.replace("--- verified", "").trim(), "", `systemd-analyze verify complained:\n${verify}`);
      process.stdout.write(`[quadlet] ${rootless ? "user" : "system"} unit: generated and verified\n${service}\n`);
    }
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
});
