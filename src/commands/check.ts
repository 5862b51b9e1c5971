/** `brics-env check`: every problem of a deploy directory at once. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { FOLLOW_OUTSIDE_LINKS_VARIABLE } from "../plan/deployFiles.js";
import type { Environment } from "../plan/environments.js";
import { DEPLOY_CONFIGMAP_FILE } from "../plan/names.js";
import { formatProblem, hasErrors, hubApiAddressProblems, validateDeployDir, type ConfigValues, type Problem } from "../plan/validate.js";
import { VolumeOwnerError, volumesOf } from "../plan/volumes.js";
import { readDeployDir } from "../effects/deployDir.js";
import { addressesOf, localAddresses, urlHost } from "../effects/dns.js";
import { consoleOutput, displayPath, ReportedFailure, UsageError, variables, type Output } from "./common.js";

/**
 * A deploy directory read and validated once. The commands after `check` (`manifest`, `up`) take
 * their files and values from here rather than reading and parsing them again.
 */
export interface CheckedDeployDir {
  readonly dir: string;
  /** The files the environment uses, by name (undefined: missing); the ConfigMap is not among them. */
  readonly files: Readonly<Record<string, string | undefined>>;
  /** Problems of the directory and of the environment variables that shape the deployment. */
  readonly problems: readonly Problem[];
  /** The ConfigMap's values that the environment uses and that passed their checks. */
  readonly config: ConfigValues;
  /** External Slurm: the address hubConnectUrl's host resolves to, where the Hub API is published. */
  readonly hubConnectAddress?: string;
}

export async function inspectDeployDir(env: Environment, dir: string): Promise<CheckedDeployDir> {
  if (!existsSync(dir)) {
    throw new UsageError(`deploy directory ${displayPath(dir)} does not exist; create it with: brics-env init ${env.name} ${displayPath(dir)}`);
  }
  const input = await readDeployDir(env, dir, { followOutsideLinks: process.env[FOLLOW_OUTSIDE_LINKS_VARIABLE] === "1" });
  const { problems, config } = validateDeployDir(env, { ...input, dir: displayPath(dir) });
  // Where Slurm is external, the Hub API is published on the address of hubConnectUrl's host.
  let hubConnectAddress: string | undefined;
  const hubConnectUrl = env.slurm === "external" ? config.hubConnectUrl : undefined;
  const hubHost = hubConnectUrl !== undefined ? urlHost(hubConnectUrl) : undefined;
  if (hubConnectUrl !== undefined && hubHost !== undefined) {
    const addresses = await addressesOf(hubHost);
    hubConnectAddress = addresses[0];
    problems.push(...hubApiAddressProblems(join(displayPath(dir), DEPLOY_CONFIGMAP_FILE), hubConnectUrl, { addresses, local: localAddresses() }));
  }
  try {
    volumesOf(env, variables());
  } catch (err) {
    if (!(err instanceof VolumeOwnerError)) throw err;
    for (const p of err.problems) problems.push({ severity: "error", file: "(environment)", key: p.variable, message: p.message });
  }
  return { dir, files: input.files, problems, config, ...(hubConnectAddress !== undefined ? { hubConnectAddress } : {}) };
}

/**
 * Prints the problems; throws ReportedFailure when any is an error. Warnings never fail.
 * `inspected`: inspectDeployDir(env, dir) when the caller started it already.
 */
export async function checkDeployDir(
  env: Environment,
  dir: string,
  out: Output = consoleOutput,
  inspected: Promise<CheckedDeployDir> = inspectDeployDir(env, dir),
): Promise<CheckedDeployDir> {
  const checked = await inspected;
  const { problems } = checked;
  for (const p of problems) out.say(formatProblem(p));
  const errors = problems.filter((p) => p.severity === "error").length;
  const warnings = problems.length - errors;
  if (hasErrors(problems)) {
    out.say(`${displayPath(dir)}: ${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"} for ${env.name}`);
    throw new ReportedFailure(`deploy directory ${displayPath(dir)} has errors`);
  }
  out.say(`${displayPath(dir)}: ok for ${env.name}${warnings > 0 ? ` (${warnings} warning${warnings === 1 ? "" : "s"})` : ""}`);
  return checked;
}
