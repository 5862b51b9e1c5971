/** `brics-env doctor`: whether this machine can run the environments, and which workarounds apply. */
import { findExecutable } from "../effects/exec.js";
import { imageExists, podman, podmanAllowFailure, podmanInfo } from "../effects/podman.js";
import { describeQuirks } from "../plan/podmanQuirks.js";
import { ENVIRONMENTS } from "../plan/environments.js";
import { imagesOf } from "../plan/images.js";
import { imageRef } from "../plan/names.js";
import { consoleOutput, ReportedFailure, type Output } from "./common.js";

const RUNTIME_HINT =
  "podman could not run a container. If the error mentions cgroups, crun or ulimits (e.g. on hosts with cgroups in " +
  "hybrid mode), write a containers.conf with\n" +
  "      [containers]\n      default_ulimits = []\n      [engine]\n      runtime = \"runc\"\n" +
  "    install runc, and export CONTAINERS_CONF=/path/to/that/containers.conf (it replaces every other containers.conf).";

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
      const image = await someImage();
      if (image !== undefined) {
        const r = await podmanAllowFailure(["run", "--rm", "--entrypoint", "true", image], { timeoutMs: 120_000 });
        // A missing `true` binary still proves the runtime set the container up.
        if (r.exitCode === 0 || /executable file not found|no such file or directory: OCI/i.test(r.stderr)) {
          out.say(`ok   ran a container from ${image}`);
        } else {
          bad(`cannot run a container from ${image}:\n    ${r.stderr.trim().split("\n").slice(-3).join("\n    ")}\n    ${RUNTIME_HINT}`);
        }
      } else {
        out.say(`ok   podman info answers (no local image to test-run a container; brics-env resources builds them)`);
      }
      for (const line of describeQuirks(info.quirks, info.remote)) out.say(`     ${line}`);
    } catch (err) {
      bad(`podman does not work: ${(err as Error).message}\n    ${RUNTIME_HINT}`);
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
