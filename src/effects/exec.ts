/**
 * The one place that starts child processes. Always an argument array, never a shell, so values
 * from the deploy config can never be interpreted as shell syntax.
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";
import type { Readable } from "node:stream";
import { execa } from "execa";

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

const TAIL_LINES = 20;

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

export function tailLines(text: string, n: number): string {
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

/** Runs a command and returns its output whatever the exit code; rejects only if it cannot start. */
export async function runAllowFailure(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const onLine = opts.onLine;
  const lineHook = (stream: "stdout" | "stderr") =>
    function* (line: unknown) {
      onLine?.(String(line), stream);
      yield line;
    };
  // execa accepts only streams backed by a file descriptor as stdin; pipe anything else by hand.
  const stdin = opts.stdin !== undefined ? "pipe" : opts.input === undefined ? "ignore" : "pipe";
  try {
    const subprocess = execa(file, [...args], {
      reject: false,
      stripFinalNewline: false,
      ...(opts.input === undefined ? { stdin } : { input: opts.input }),
      stdout: onLine ? ["pipe", lineHook("stdout")] : "pipe",
      stderr: onLine ? ["pipe", lineHook("stderr")] : "pipe",
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      ...(opts.env === undefined ? {} : { env: opts.env }),
      ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
    });
    if (opts.stdin !== undefined && subprocess.stdin !== null) {
      const source = opts.stdin;
      const sink = subprocess.stdin;
      // The child may exit before reading everything (e.g. on an error); its exit code tells that story.
      sink.on("error", () => undefined);
      source.on("error", (err) => sink.destroy(err));
      source.pipe(sink);
    }
    const result = await subprocess;
    const out = (v: unknown) => (Array.isArray(v) ? v.join("\n") : String(v ?? ""));
    if (result.failed && result.exitCode === undefined) {
      const why = result.timedOut ? `timed out after ${opts.timeoutMs} ms` : result.code === "ENOENT" ? "not found" : result.shortMessage;
      throw new CommandError([file, ...args], undefined, out(result.stderr), out(result.stdout), why);
    }
    return { stdout: out(result.stdout), stderr: out(result.stderr), exitCode: result.exitCode ?? 1 };
  } catch (err) {
    if (err instanceof CommandError) throw err;
    throw new CommandError([file, ...args], undefined, "", "", (err as Error).message);
  }
}

/** Runs a command; a non-zero exit becomes a CommandError with the stderr tail. */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await runAllowFailure(file, args, opts);
  if (result.exitCode !== 0) throw new CommandError([file, ...args], result.exitCode, result.stderr, result.stdout);
  return result;
}

/** Path of an executable on PATH, or undefined. */
export async function findExecutable(name: string): Promise<string | undefined> {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}
