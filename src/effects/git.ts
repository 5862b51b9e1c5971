/** Clones of the dev repositories that stage-dev images install from. */
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { CommandError, findExecutable, run, runAllowFailure } from "./exec.js";

export interface CloneRequest {
  readonly url: string;
  readonly ref: string;
  readonly dir: string;
  /** Environment variable that overrides `url`, named in the error for an unreachable remote. */
  readonly urlOverrideVar?: string;
  /** Environment variable that overrides `ref`, named in the error for a ref the remote lacks. */
  readonly refOverrideVar?: string;
}

/** A commit id (abbreviated or full) rather than a tag or branch name. */
const COMMIT = /^[0-9a-f]{7,40}$/;

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
  const env = { GIT_TERMINAL_PROMPT: "0" };
  try {
    // A full clone: setuptools-scm's version of a branch or commit past a tag needs the history
    // back to the tag. The ref is given explicitly so a default branch move cannot change what is built.
    if (COMMIT.test(req.ref)) {
      await run("git", ["clone", "--no-checkout", "--", req.url, req.dir], { env, timeoutMs: 300_000 });
      await run("git", ["-C", req.dir, "checkout", "--quiet", "--detach", req.ref], { env });
    } else {
      await run("git", ["clone", "--branch", req.ref, "--", req.url, req.dir], { env, timeoutMs: 300_000 });
    }
  } catch (err) {
    // The directory did not exist before: leave nothing that a later run would keep as a clone.
    await rm(req.dir, { recursive: true, force: true });
    const tail = err instanceof CommandError ? err.stderrTail : (err as Error).message;
    const override = req.urlOverrideVar === undefined ? "" : `, or set ${req.urlOverrideVar} to a reachable mirror (a local path works too)`;
    throw new Error(
      `cannot clone ${req.url} (ref ${req.ref}) into ${req.dir}:\n    ${tail.split("\n").join("\n    ")}\n` +
        `If the remote is unreachable from here, put a local clone there yourself ` +
        `(git clone --branch ${req.ref} <your copy> ${req.dir})${override}${req.refOverrideVar === undefined ? "" : `, or set ${req.refOverrideVar} to a ref the remote has`}.`,
    );
  }
  return { kind: "cloned", dir: req.dir };
}


/**
 * Whether a clone's checkout is at `ref` (false also when the clone does not know `ref`): a kept
 * clone may sit elsewhere, and `resources` says so.
 */
export async function cloneIsAt(dir: string, ref: string): Promise<boolean> {
  const opts = { env: { GIT_TERMINAL_PROMPT: "0" } };
  const safe = ["-c", `safe.directory=${dir}`, "-C", dir];
  // One process for both (each costs `up` a few milliseconds of its start); it fails when either
  // is unknown. `--` makes both revisions, never paths.
  const both = await runAllowFailure("git", [...safe, "rev-parse", "HEAD", `${ref}^{commit}`, "--"], opts);
  const [head, want] = both.stdout.trim().split("\n");
  return both.exitCode === 0 && head !== undefined && head === want;
}
