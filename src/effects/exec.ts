/**
 * The one place that starts child processes. Always an argument array, never a shell, so values
 * from the deploy config can never be interpreted as shell syntax. Built on node:child_process
 * alone: a process library cost more start-up time than all of brics-env's own modules.
 */
import type { ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, join } from "node:path";
import type { Readable } from "node:stream";

export interface RunOptions {
  /** Text or bytes written to the child's stdin. */
  readonly input?: string | Buffer;
  /** A stream piped into the child's stdin (e.g. a tar archive being built). */
  readonly stdin?: Readable;
  readonly cwd?: string;
  /** Extra environment variables, merged over this process's environment. */
  readonly env?: Record<string, string | undefined>;
  /** Called for each line of output as it arrives; output is still captured. */
  readonly onLine?: (line: string, stream: "stdout" | "stderr") => void;
  readonly timeoutMs?: number;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/**
 * Node's modules that only some commands need are required on first use, not imported: the CLI
 * runs as a CommonJS bundle compiled by src/launcher.ts, whose code cannot import(). Made once
 * here rather than on every process start.
 */
const requireHere = createRequire(import.meta.url);

const TAIL_LINES = 20;
/**
 * BRICS_ENV_TRACE=1 prints each child process's start and end, in ms since this process started,
 * to stderr: where a slow command spends its time. Commands never carry secrets (they travel on
 * stdin, in files or as podman Secrets), so tracing them is safe; it is off by default all the same.
 */
const TRACE = process.env["BRICS_ENV_TRACE"] === "1";
function trace(what: string, command: readonly string[]): void {
  if (TRACE) process.stderr.write(`[trace ${performance.now().toFixed(0).padStart(6)} ms] ${what} ${formatCommand(command).slice(0, 160)}\n`);
}
/** After a timeout's SIGTERM, how long a child gets before SIGKILL. */
const KILL_GRACE_MS = 5000;

/** A child process that could not start or exited non-zero; carries what a user needs to act. */
export class CommandError extends Error {
  readonly command: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderrTail: string;
  readonly stdout: string;

  constructor(command: readonly string[], exitCode: number | undefined, stderr: string, stdout: string, cause?: string) {
    const tail = tailLines(stderr.trim() === "" ? stdout : stderr, TAIL_LINES);
    const how = exitCode === undefined ? (cause ?? "could not be run") : `exited with code ${exitCode}`;
    super(`command failed: ${formatCommand(command)} ${how}${tail === "" ? "" : `\n${indent(tail)}`}`);
    this.name = "CommandError";
    this.command = command;
    this.exitCode = exitCode;
    this.stderrTail = tail;
    this.stdout = stdout;
  }
}

function tailLines(text: string, n: number): string {
  const lines = text.replace(/\s+$/, "").split("\n");
  return lines.slice(-n).join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}

/** Quotes only where needed, so a printed command can be pasted into a shell. */
export function formatCommand(command: readonly string[]): string {
  return command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

/** Collects a child's output stream as text, handing each complete line to `onLine` as it arrives. */
function collect(stream: Readable, onLine: ((line: string) => void) | undefined): { text: () => string; flush: () => void } {
  const chunks: string[] = [];
  let partial = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    chunks.push(chunk);
    if (onLine === undefined) return;
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  });
  return {
    text: () => chunks.join(""),
    flush: () => {
      if (onLine !== undefined && partial !== "") onLine(partial.endsWith("\r") ? partial.slice(0, -1) : partial);
      partial = "";
    },
  };
}

/** Runs a command and returns its output whatever the exit code; rejects only if it cannot start or is killed. */
export async function runAllowFailure(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  // Loaded on first use: `check` and `manifest` usually start no process at all.
  const { spawn } = requireHere("node:child_process") as typeof import("node:child_process");
  const command = [file, ...args];
  const stdinMode = opts.stdin !== undefined || opts.input !== undefined ? "pipe" : "ignore";
  return new Promise<RunResult>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(file, [...args], {
        stdio: [stdinMode, "pipe", "pipe"],
        ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
        ...(opts.env === undefined ? {} : { env: { ...process.env, ...opts.env } }),
      });
    } catch (err) {
      reject(new CommandError(command, undefined, "", "", (err as Error).message));
      return;
    }
    trace("start", command);
    const onLine = opts.onLine;
    // Both are pipes (stdio above), so never null.
    const out = collect(child.stdout!, onLine && ((l) => onLine(l, "stdout")));
    const err = collect(child.stderr!, onLine && ((l) => onLine(l, "stderr")));

    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGTERM");
            killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
            killTimer.unref();
          }, opts.timeoutMs);

    let spawnError: NodeJS.ErrnoException | undefined;
    child.on("error", (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    child.on("close", (code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      trace(`end (${code ?? signal})`, command);
      out.flush();
      err.flush();
      const stdout = out.text();
      const stderr = err.text();
      if (spawnError !== undefined) {
        reject(new CommandError(command, undefined, stderr, stdout, spawnError.code === "ENOENT" ? "not found" : spawnError.message));
      } else if (timedOut) {
        reject(new CommandError(command, undefined, stderr, stdout, `timed out after ${opts.timeoutMs} ms`));
      } else if (code === null) {
        reject(new CommandError(command, undefined, stderr, stdout, `was killed by ${signal ?? "a signal"}`));
      } else {
        resolve({ stdout, stderr, exitCode: code });
      }
    });

    const sink = child.stdin;
    if (sink !== null) {
      // The child may exit before reading everything (e.g. on an error); its exit code tells that story.
      sink.on("error", () => undefined);
      if (opts.stdin !== undefined) {
        const source = opts.stdin;
        source.on("error", (e) => sink.destroy(e));
        source.pipe(sink);
      } else {
        sink.end(opts.input);
      }
    }
  });
}

/** Runs a command; a non-zero exit becomes a CommandError with the stderr tail. */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await runAllowFailure(file, args, opts);
  if (result.exitCode !== 0) throw new CommandError([file, ...args], result.exitCode, result.stderr, result.stdout);
  return result;
}

/**
 * Path of an executable on PATH, or undefined. The look is synchronous (a handful of access()
 * calls, microseconds): asked through the thread pool, each directory cost a turn of the event
 * loop before the first process of a command could start.
 */
export async function findExecutable(name: string): Promise<string | undefined> {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}
