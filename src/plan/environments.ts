/**
 * The five deployment environments, described by the few axes along which they differ.
 * Everything else (containers in the pod, Secrets, required deploy-config keys, published
 * ports, volumes) is derived from these axes, never listed per environment.
 */

export const ENV_NAMES = [
  "dev_dummyauth",
  "dev_dummyauth_extslurm",
  "dev_realauth",
  "dev_realauth_zenithclient",
  "prod",
] as const;

export type EnvName = (typeof ENV_NAMES)[number];

/** Which build stage of the Containerfiles the environment's images target. */
export type Stage = "dev" | "prod";
/** Where Slurm runs: a container in the same pod, or an external host reached over SSH. */
export type SlurmPlacement = "pod" | "external";
/** dummy: shared-password login mocking BricsAuthenticator; jwt: the real BricsAuthenticator. */
export type AuthMode = "dummy" | "jwt";
/** How user traffic reaches the proxy: a port published on the host, or a Zenith tunnel. */
export type Ingress = "published-port" | "zenith";

export interface Environment {
  readonly name: EnvName;
  readonly summary: string;
  readonly stage: Stage;
  readonly slurm: SlurmPlacement;
  readonly auth: AuthMode;
  readonly ingress: Ingress;
}

export const ENVIRONMENTS: readonly Environment[] = [
  {
    name: "dev_dummyauth",
    summary: "JupyterHub and Slurm containers in one pod, talking over SSH; mocked JWT authentication",
    stage: "dev",
    slurm: "pod",
    auth: "dummy",
    ingress: "published-port",
  },
  {
    name: "dev_dummyauth_extslurm",
    summary: "JupyterHub in a pod driving an external Slurm host over SSH; mocked JWT authentication",
    stage: "dev",
    slurm: "external",
    auth: "dummy",
    ingress: "published-port",
  },
  {
    name: "dev_realauth",
    summary: "JupyterHub and Slurm containers in one pod, talking over SSH; real JWT authentication",
    stage: "dev",
    slurm: "pod",
    auth: "jwt",
    ingress: "published-port",
  },
  {
    name: "dev_realauth_zenithclient",
    summary: "JupyterHub, Slurm and Zenith client containers in one pod; real JWT authentication via a Zenith tunnel",
    stage: "dev",
    slurm: "pod",
    auth: "jwt",
    ingress: "zenith",
  },
  {
    name: "prod",
    summary: "JupyterHub and Zenith client in a pod driving an external Slurm host over SSH; real JWT authentication",
    stage: "prod",
    slurm: "external",
    auth: "jwt",
    ingress: "zenith",
  },
];

export function isEnvName(name: string): name is EnvName {
  return (ENV_NAMES as readonly string[]).includes(name);
}

export function getEnvironment(name: string): Environment {
  const env = ENVIRONMENTS.find((e) => e.name === name);
  if (env === undefined) {
    throw new UnknownEnvironmentError(name);
  }
  return env;
}

export class UnknownEnvironmentError extends Error {
  constructor(readonly requested: string) {
    super(`unknown environment '${requested}'; expected one of: ${ENV_NAMES.join(", ")}`);
    this.name = "UnknownEnvironmentError";
  }
}

export type ContainerName = "jupyterhub" | "slurm" | "zenith-client";

/** Containers in the environment's pod, in the order they appear in the manifest. */
export function containersOf(env: Environment): ContainerName[] {
  const containers: ContainerName[] = ["jupyterhub"];
  if (env.slurm === "pod") containers.push("slurm");
  if (env.ingress === "zenith") containers.push("zenith-client");
  return containers;
}
