/** `brics-env logs`: a container's log, by the environment's container name. */
import { containersOf, type ContainerName, type Environment } from "../plan/environments.js";
import { podmanContainerName } from "../plan/names.js";
import { containerLogsStream, podExists } from "../effects/podman.js";
import { podName } from "../plan/names.js";
import { UsageError } from "./common.js";

export async function logsCommand(env: Environment, container: string | undefined, opts: { tail?: number; follow?: boolean }): Promise<void> {
  const names = containersOf(env);
  const chosen = (container ?? "jupyterhub") as ContainerName;
  if (!names.includes(chosen)) {
    throw new UsageError(`${env.name} has no container '${container}'; its containers are: ${names.join(", ")}`);
  }
  if (!(await podExists(podName(env.name)))) {
    throw new Error(`pod ${podName(env.name)} does not exist; bring it up with: brics-env up ${env.name}`);
  }
  await containerLogsStream(podmanContainerName(env.name, chosen), opts.tail, opts.follow === true);
}
