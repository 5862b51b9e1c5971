/** `brics-env doctor`: whether this machine can run the environments, and which workarounds apply. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { findExecutable } from "../effects/exec.js";
import { imageExists, podman, podmanAllowFailure, podmanInfo } from "../effects/podman.js";
import { describeQuirks } from "../plan/podmanQuirks.js";
import { ENVIRONMENTS } from "../plan/environments.js";
import { imagesOf } from "../plan/images.js";
import { imageRef } from "../plan/names.js";
import { ROOTFUL_PODMAN_NOTES } from "../plan/slurmCapabilities.js";
import { repoRoot } from "../paths.js";
import { consoleOutput, ReportedFailure, type Output } from "./common.js";

/** The podman settings shipped with brics-env, and where podman reads drop-ins (containers.conf(5)). */
const SHIPPED_SETTINGS = join(repoRoot(), "podman", "50-brics-env.conf");
const DROP_IN_DIR = "/etc/containers/containers.conf.d";

function runtimeHint(): string {
  return (
    "podman could not run a container. If the error mentions rlimit, cgroups or crun, install the podman settings " +
    `shipped with brics-env (runc, no default ulimits) where podman reads them:\n` +
    `      sudo install -D -m 0644 ${SHIPPED_SETTINGS} ${DROP_IN_DIR}/50-brics-env.conf\n` +
    "    (scripts/setup-host.sh does this when its probe container fails; install runc too). To try them for one " +
    `shell only: export CONTAINERS_CONF=${SHIPPED_SETTINGS} (it replaces every other containers.conf).`
  );
}

async function someImage(): Promise<string | undefined> {
  for (const env of ENVIRONMENTS) {
    for (const image of imagesOf(env)) {
      const ref = imageRef(image, env.stage);
      if (await imageExists(ref)) return ref;
    }
  }
  const { stdout } = await podman(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
  return stdout.split("\n").find((l) => l.trim() !== "" && !l.includes("<none>"));
}

export async function doctorCommand(out: Output = consoleOutput): Promise<void> {
  let failed = false;
  const bad = (msg: string) => {
    failed = true;
    out.say(`FAIL ${msg}`);
  };
  const path = await findExecutable(process.env["BRICS_ENV_PODMAN"] || "podman");
  if (path === undefined && !process.env["BRICS_ENV_PODMAN"]) {
    bad("podman not found on PATH (Debian/Ubuntu: apt-get install podman runc catatonit; macOS: brew install podman)");
  } else {
    try {
      const info = await podmanInfo();
      out.say(`ok   podman ${info.version.raw}${info.remote ? " (remote client: podman machine)" : ""}, runtime ${info.ociRuntime ?? "unknown"}${info.rootless ? ", rootless" : ", root"}`);
      if (process.env["CONTAINERS_CONF"]) out.say(`ok   CONTAINERS_CONF=${process.env["CONTAINERS_CONF"]}`);
      else if (existsSync(join(DROP_IN_DIR, "50-brics-env.conf"))) out.say(`ok   brics-env's podman settings installed in ${DROP_IN_DIR}/50-brics-env.conf`);
      const image = await someImage();
      if (image !== undefined) {
        const r = await podmanAllowFailure(["run", "--rm", "--entrypoint", "true", image], { timeoutMs: 120_000 });
        // A missing `true` binary still proves the runtime set the container up.
        if (r.exitCode === 0 || /executable file not found|no such file or directory: OCI/i.test(r.stderr)) {
          out.say(`ok   ran a container from ${image}`);
        } else {
          bad(`cannot run a container from ${image}:\n    ${r.stderr.trim().split("\n").slice(-3).join("\n    ")}\n    ${runtimeHint()}`);
        }
      } else {
        out.say(`ok   podman info answers (no local image to test-run a container; brics-env resources builds them)`);
      }
      for (const line of describeQuirks(info.quirks, info.remote)) out.say(`     ${line}`);
      if (!info.rootless) for (const line of ROOTFUL_PODMAN_NOTES) out.say(`warn ${line}`);
    } catch (err) {
      bad(`podman does not work: ${(err as Error).message}\n    ${runtimeHint()}`);
    }
  }
  for (const [tool, why] of [
    ["ssh-keygen", "generates SSH keys (apt-get install openssh-client)"],
    ["git", "clones the dev repositories (apt-get install git)"],
  ] as const) {
    const p = await findExecutable(tool);
    if (p === undefined) bad(`${tool} not found: it ${why}`);
    else out.say(`ok   ${tool} (${p})`);
  }
  if (failed) throw new ReportedFailure("doctor found problems");
}
