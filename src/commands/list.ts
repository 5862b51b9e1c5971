/** `brics-env list`: the environments and what each needs. */
import { deployFilesFor } from "../plan/deployFiles.js";
import { containersOf, ENVIRONMENTS } from "../plan/environments.js";
import { imagesOf } from "../plan/images.js";
import { imageRef, podName } from "../plan/names.js";
import { volumesOf } from "../plan/volumes.js";
import { consoleOutput, type Output } from "./common.js";

function listEnvironments() {
  return ENVIRONMENTS.map((env) => ({
    name: env.name,
    summary: env.summary,
    stage: env.stage,
    slurm: env.slurm,
    auth: env.auth,
    ingress: env.ingress,
    pod: podName(env.name),
    containers: containersOf(env),
    images: imagesOf(env).map((i) => imageRef(i, env.stage)),
    volumes: volumesOf(env).map((v) => v.name),
    userFiles: deployFilesFor(env)
      .filter((f) => f.source === "user")
      .map((f) => f.name),
  }));
}

export function listCommand(opts: { json?: boolean }, out: Output = consoleOutput): void {
  const envs = listEnvironments();
  if (opts.json) {
    out.say(JSON.stringify(envs, null, 2));
    return;
  }
  for (const e of envs) {
    out.say(`${e.name}`);
    out.say(`    ${e.summary}`);
    out.say(`    stage ${e.stage}; Slurm ${e.slurm === "pod" ? "in the pod" : "on an external host"}; auth ${e.auth}; traffic via ${e.ingress === "zenith" ? "Zenith tunnel" : "127.0.0.1:8000"}`);
    out.say(`    containers: ${e.containers.join(", ")}`);
    out.say(`    you provide: deploy-configmap.yaml${e.userFiles.length > 0 ? `, ${e.userFiles.join(", ")}` : " (brics-env init writes a working one)"}`);
  }
}
