/**
 * The systemd unit `brics-env service` writes so that an environment is played at boot and its
 * pod removed at shutdown (volumes and Secrets kept, as `brics-env down` keeps them). Pure: the
 * unit's text, name and where it is installed.
 *
 * - quadlet (podman >= 4.4, podmanQuirks.ts): a `.kube` file; Quadlet's generator makes a service
 *   running `podman kube play --replace` of combined.yaml with the deploy ConfigMap at every
 *   boot and `systemctl daemon-reload`, and `podman kube down` when it stops.
 * - plain (older podman, or asked for): a oneshot service whose ExecStart is `brics-env up
 *   --no-build` and ExecStop `brics-env down`, by absolute paths of node and the CLI.
 *
 * A unit names files and commands only, never a secret (the keys stay in the deploy directory).
 */
import type { Environment } from "./environments.js";
import { COMBINED_MANIFEST_FILE, DEPLOY_CONFIGMAP_FILE, podName } from "./names.js";
import { OWNER_VARIABLES } from "./volumes.js";

export type UnitKind = "quadlet" | "plain";

/** Seconds systemd gives the start (`up` waits up to UP_TIMEOUT_S for the hub) and the stop. */
const UP_TIMEOUT_S = 600;
const START_TIMEOUT_S = UP_TIMEOUT_S + 300;
const STOP_TIMEOUT_S = 300;

/**
 * Variables that change what `up --no-build` and `down` do, carried into the plain unit when set
 * where `brics-env service` runs (builds do not happen at boot, so their variables are left out;
 * CONTAINERS_CONF also reaches podman in the Quadlet unit).
 */
export const CARRIED_VARIABLES: readonly string[] = [
  "BRICS_ENV_PODMAN",
  "CONTAINERS_CONF",
  "BRICS_ENV_ZENITH_CLIENT_IMAGE",
  ...Object.values(OWNER_VARIABLES).flatMap((v) => Object.values(v)),
];
const PODMAN_VARIABLES: readonly string[] = ["CONTAINERS_CONF"];

export interface UnitRequest {
  readonly env: Environment;
  readonly kind: UnitKind;
  /** Absolute. */
  readonly deployDir: string;
  /** A user unit (systemctl --user) rather than a system one. */
  readonly rootless: boolean;
  /** CARRIED_VARIABLES that are set, with their values. */
  readonly variables: Readonly<Record<string, string>>;
  /** --publish values for `up` (plain); the Quadlet unit plays combined.yaml, which holds them. */
  readonly publish?: readonly string[];
  /** Plain units: absolute paths of node and of brics-env's cli.js. */
  readonly node?: string;
  readonly cli?: string;
  /** What made the unit, for its header comment (`podman 4.3.1`). */
  readonly podmanVersion: string;
}

export interface Unit {
  /** The file's name: `jupyterhub-slurm-<env>.kube` or `.service`. */
  readonly fileName: string;
  /** The service systemd runs: `jupyterhub-slurm-<env>.service` either way. */
  readonly serviceName: string;
  readonly text: string;
}

export class UnitInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnitInputError";
  }
}

/**
 * systemd treats `%` as a specifier, `\` and quotes as escapes, white space as a separator and `$`
 * as a variable; values here are paths, image names and numbers, so those are refused rather
 * than escaped.
 */
const UNIT_SAFE = /^[A-Za-z0-9._/+@:,=-]+$/;

function safe(value: string, what: string): string {
  if (!UNIT_SAFE.test(value)) {
    throw new UnitInputError(`${what} ${JSON.stringify(value)} cannot go into a systemd unit as it is: use only letters, digits and . _ / + @ : , = -`);
  }
  return value;
}

function absolute(path: string, what: string): string {
  if (!path.startsWith("/")) throw new UnitInputError(`${what} ${JSON.stringify(path)} must be an absolute path`);
  return safe(path, what);
}

export function unitBaseName(env: Environment): string {
  return podName(env.name);
}

/** Where the unit is installed: Quadlet's and systemd's system (or, rootless, user) directories. */
export function installDir(kind: UnitKind, rootless: boolean, home: string): string {
  if (kind === "quadlet") return rootless ? `${home}/.config/containers/systemd` : "/etc/containers/systemd";
  return rootless ? `${home}/.config/systemd/user` : "/etc/systemd/system";
}

export function systemctl(rootless: boolean): string {
  return rootless ? "systemctl --user" : "systemctl";
}

function environmentLines(vars: Readonly<Record<string, string>>, names: readonly string[]): string[] {
  return names.filter((n) => vars[n] !== undefined).map((n) => `Environment=${n}=${safe(vars[n]!, n)}`);
}

export function renderUnit(req: UnitRequest): Unit {
  const base = unitBaseName(req.env);
  const dir = absolute(req.deployDir.replace(/\/+$/, "") || "/", "the deploy directory");
  const wantedBy = req.rootless ? "default.target" : "multi-user.target";
  const header = [
    `# Written by brics-env service ${req.env.name} ${dir} (${req.podmanVersion}).`,
    `# Plays environment ${req.env.name} at boot and removes its pod at shutdown; volumes and Secrets are kept.`,
    "# Running brics-env service again keeps a unit you changed (it writes the new one beside it, as .new).",
  ];
  const unitSection = [
    "[Unit]",
    `Description=BriCS JupyterHub environment ${req.env.name} (${req.kind === "quadlet" ? "podman kube play via Quadlet" : "brics-env up/down"})`,
    "Wants=network-online.target",
    "After=network-online.target",
  ];
  const timeoutsAndInstall = [`TimeoutStartSec=${START_TIMEOUT_S}`, `TimeoutStopSec=${STOP_TIMEOUT_S}`, "", "[Install]", `WantedBy=${wantedBy}`, ""];
  if (req.kind === "quadlet") {
    const text = [
      ...header,
      ...unitSection,
      "",
      "[Kube]",
      `Yaml=${dir}/${COMBINED_MANIFEST_FILE}`,
      `ConfigMap=${dir}/${DEPLOY_CONFIGMAP_FILE}`,
      "",
      "[Service]",
      ...environmentLines(req.variables, PODMAN_VARIABLES),
      ...timeoutsAndInstall,
    ].join("\n");
    return { fileName: `${base}.kube`, serviceName: `${base}.service`, text };
  }
  if (req.node === undefined || req.cli === undefined) throw new UnitInputError("a plain unit needs the paths of node and of brics-env");
  const brics = `${absolute(req.node, "node")} ${absolute(req.cli, "brics-env")}`;
  const publish = (req.publish ?? []).map((p) => ` --publish ${safe(p, "--publish")}`).join("");
  const text = [
    ...header,
    ...unitSection,
    "",
    "[Service]",
    // `up` returns once the hub answers and leaves the pod running: the service stays active until stopped.
    "Type=oneshot",
    "RemainAfterExit=yes",
    ...environmentLines(req.variables, CARRIED_VARIABLES),
    `ExecStart=${brics} up ${req.env.name} ${dir} --no-build --timeout ${UP_TIMEOUT_S}${publish}`,
    `ExecStop=${brics} down ${req.env.name} ${dir}`,
    ...timeoutsAndInstall,
  ].join("\n");
  return { fileName: `${base}.service`, serviceName: `${base}.service`, text };
}
