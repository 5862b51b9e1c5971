/** What the sub-commands share: resolving arguments, printing, and the errors that set exit codes. */
import { isAbsolute, join, relative, resolve } from "node:path";
import { ENV_NAMES, getEnvironment, isEnvName, type Environment } from "../plan/environments.js";
import { repoRoot } from "../paths.js";

/** Bad arguments: exit code 2, message without a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure already explained to the user (e.g. validation problems printed): exit code 1, nothing more to print. */
export class ReportedFailure extends Error {
  constructor(message = "failed") {
    super(message);
    this.name = "ReportedFailure";
  }
}

export function resolveEnv(name: string): Environment {
  if (!isEnvName(name)) throw new UsageError(`unknown environment '${name}'; expected one of: ${ENV_NAMES.join(", ")} (see: brics-env list)`);
  return getEnvironment(name);
}

/** `deploy/<env>` under the repository root, where `up` and `init` work when no directory is given. */
function defaultDeployDir(env: Environment): string {
  return join(repoRoot(), "deploy", env.name);
}

export function resolveDeployDir(env: Environment, dir: string | undefined): string {
  return dir === undefined ? defaultDeployDir(env) : resolve(dir);
}

/** A path as the user would like to read it: relative to the working directory when under it. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

export interface Output {
  /** Results and what the user must know: stdout. */
  say(line: string): void;
  /** Progress of long steps: stderr, so stdout stays clean for --json and pipes. */
  progress(line: string): void;
  warn(line: string): void;
}

export const consoleOutput: Output = {
  say: (line) => process.stdout.write(`${line}\n`),
  progress: (line) => process.stderr.write(`${line}\n`),
  warn: (line) => process.stderr.write(`warning: ${line}\n`),
};

/** An Output that keeps what is said until `replay`: work started ahead reports in the command's order. */
export interface HeldOutput extends Output {
  replay(out: Output): void;
}

export function heldOutput(): HeldOutput {
  const lines: Array<[keyof Output, string]> = [];
  return {
    say: (line) => lines.push(["say", line]),
    progress: (line) => lines.push(["progress", line]),
    warn: (line) => lines.push(["warn", line]),
    replay: (out) => {
      for (const [kind, line] of lines.splice(0)) out[kind](line);
    },
  };
}

/** The process environment as a plain record, for plan functions that take variables. */
export function variables(): Record<string, string | undefined> {
  return { ...process.env };
}

export function parsePositiveInt(value: string, what: string): number {
  if (!/^[1-9][0-9]*$/.test(value)) throw new UsageError(`${what} must be a positive whole number, got '${value}'`);
  return Number(value);
}
