/** Clones of the dev repositories that stage-dev images install from. */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { CommandError, findExecutable, run } from "./exec.js";

export interface CloneRequest {
  readonly url: string;
  readonly ref: string;
  readonly dir: string;
  /** Environment variable that overrides `url`, named in the error for an unreachable remote. */
  readonly urlOverrideVar?: string;
}

export type CloneOutcome = { kind: "cloned"; dir: string } | { kind: "kept"; dir: string };

/**
 * Clones `url` at `ref` into `dir` unless something is already there: a local clone (perhaps
 * with the user's changes under test) is never touched.
 */
export async function cloneUnlessPresent(req: CloneRequest): Promise<CloneOutcome> {
  if (existsSync(req.dir)) return { kind: "kept", dir: req.dir };
  if ((await findExecutable("git")) === undefined) {
    throw new Error(`git not found on PATH; install git, or put a clone of ${req.url} at ${req.dir}`);
  }
  await mkdir(dirname(req.dir), { recursive: true });
  try {
    // A shallow clone of a tag or branch; the ref is given explicitly so a default branch move cannot change what is built.
    await run("git", ["clone", "--depth", "1", "--branch", req.ref, "--", req.url, req.dir], {
      env: { GIT_TERMINAL_PROMPT: "0" },
      timeoutMs: 300_000,
    });
  } catch (err) {
    const tail = err instanceof CommandError ? err.stderrTail : (err as Error).message;
    const override = req.urlOverrideVar === undefined ? "" : `, or set ${req.urlOverrideVar} to a reachable mirror (a local path works too)`;
    throw new Error(
      `cannot clone ${req.url} (ref ${req.ref}) into ${req.dir}:\n    ${tail.split("\n").join("\n    ")}\n` +
        `If the remote is unreachable from here, put a local clone there yourself ` +
        `(git clone --branch ${req.ref} <your copy> ${req.dir})${override}.`,
    );
  }
  return { kind: "cloned", dir: req.dir };
}
