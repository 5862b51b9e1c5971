/** `brics-env check`: every problem of a deploy directory at once. */
import { existsSync } from "node:fs";
import type { Environment } from "../plan/environments.js";
import { formatProblem, hasErrors, validateDeployDir, type Problem } from "../plan/validate.js";
import { VolumeOwnerError, volumesOf } from "../plan/volumes.js";
import { readDeployDir } from "../effects/deployDir.js";
import { consoleOutput, displayPath, ReportedFailure, UsageError, variables, type Output } from "./common.js";

/** Problems of the deploy directory and of the environment variables that shape the deployment. */
export async function collectProblems(env: Environment, dir: string): Promise<Problem[]> {
  const input = await readDeployDir(env, dir);
  const problems = validateDeployDir(env, { ...input, dir: displayPath(dir) });
  try {
    volumesOf(env, variables());
  } catch (err) {
    if (!(err instanceof VolumeOwnerError)) throw err;
    for (const p of err.problems) problems.push({ severity: "error", file: "(environment)", key: p.variable, message: p.message });
  }
  return problems;
}

/** Prints the problems; throws ReportedFailure when any is an error. Warnings never fail. */
export async function checkDeployDir(env: Environment, dir: string, out: Output = consoleOutput): Promise<void> {
  if (!existsSync(dir)) {
    throw new UsageError(`deploy directory ${displayPath(dir)} does not exist; create it with: brics-env init ${env.name} ${displayPath(dir)}`);
  }
  const problems = await collectProblems(env, dir);
  for (const p of problems) out.say(formatProblem(p));
  const errors = problems.filter((p) => p.severity === "error").length;
  const warnings = problems.length - errors;
  if (hasErrors(problems)) {
    out.say(`${displayPath(dir)}: ${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"} for ${env.name}`);
    throw new ReportedFailure(`deploy directory ${displayPath(dir)} has errors`);
  }
  out.say(`${displayPath(dir)}: ok for ${env.name}${warnings > 0 ? ` (${warnings} warning${warnings === 1 ? "" : "s"})` : ""}`);
}
