/**
 * Sub-commands, their arguments and options, and their --help text, on node's util.parseArgs.
 * A command-line library cost every start more than the rest of `brics-env list` (measured in
 * docs/performance.md); what the CLI needs from one fits here. The help layout follows the usual
 * one (Usage, Arguments, Options, Commands), so the docs and tests that read it stay simple.
 */
import { parseArgs } from "node:util";

export interface ArgumentSpec {
  readonly name: string;
  readonly required: boolean;
  readonly description: string;
}

export interface OptionSpec {
  /** Long name without dashes; `no-build` is a flag of its own, as users type it. */
  readonly name: string;
  readonly short?: string;
  /** Placeholder of the value (`<seconds>`); a flag without one takes no value. */
  readonly value?: string;
  /** May be given more than once; the values are collected in order. */
  readonly multiple?: boolean;
  readonly defaultValue?: string;
  readonly description: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandSpec {
  readonly name: string;
  readonly description: string;
  readonly args?: readonly ArgumentSpec[];
  readonly options?: readonly OptionSpec[];
  /** Printed after the generated part of --help. */
  readonly after?: string;
  readonly run: (args: ReadonlyArray<string | undefined>, opts: OptionValues) => Promise<void>;
}

export interface ProgramSpec {
  readonly name: string;
  readonly description: string;
  readonly version: () => string;
  readonly after?: string;
  readonly commands: readonly CommandSpec[];
}

/** A mistake on the command line: exit code 2, printed with a pointer to --help. */
export class ArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArgumentError";
  }
}

const HELP: OptionSpec = { name: "help", short: "h", description: "display help for command" };
const VERSION: OptionSpec = { name: "version", short: "V", description: "output the version number" };

function argumentUsage(a: ArgumentSpec): string {
  return a.required ? `<${a.name}>` : `[${a.name}]`;
}

function optionUsage(o: OptionSpec): string {
  return `${o.short !== undefined ? `-${o.short}, ` : ""}--${o.name}${o.value !== undefined ? ` ${o.value}` : ""}`;
}

const WIDTH = 80;

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(" ")) {
      if (line !== "" && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line === "" ? word : `${line} ${word}`;
      }
    }
    lines.push(line);
  }
  return lines;
}

/** Two columns, the second aligned and wrapped to the help width, as help texts lay them out. */
function table(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  const indent = " ".repeat(width + 4);
  return rows.flatMap(([left, right]) =>
    wrap(right, Math.max(30, WIDTH - indent.length)).map((l, i) => `${i === 0 ? `  ${left.padEnd(width)}  ` : indent}${l}`.trimEnd()),
  );
}

function commandUsage(c: CommandSpec): string {
  return [c.name, ...((c.options ?? []).length > 0 ? ["[options]"] : []), ...(c.args ?? []).map(argumentUsage)].join(" ");
}

export function programHelp(p: ProgramSpec): string {
  const lines = [`Usage: ${p.name} [options] [command]`, "", ...wrap(p.description, WIDTH), "", "Options:", ...table([VERSION, HELP].map((o) => [optionUsage(o), o.description]))];
  lines.push("", "Commands:", ...table([...p.commands.map((c) => [commandUsage(c), c.description] as const), ["help [command]", "display help for command"]]));
  return `${lines.join("\n")}\n${p.after ?? ""}\n`;
}

export function commandHelp(p: ProgramSpec, c: CommandSpec): string {
  const lines = [`Usage: ${p.name} ${commandUsage(c)}`, "", ...wrap(c.description, WIDTH)];
  if ((c.args ?? []).length > 0) lines.push("", "Arguments:", ...table((c.args ?? []).map((a) => [a.name, a.description])));
  const options = [...(c.options ?? []), HELP].map((o) => [optionUsage(o), `${o.description}${o.defaultValue !== undefined ? ` (default: "${o.defaultValue}")` : ""}`] as const);
  lines.push("", "Options:", ...table(options));
  return `${lines.join("\n")}\n${c.after ?? ""}\n`;
}

export type Parsed =
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "version"; readonly text: string }
  | { readonly kind: "run"; readonly command: CommandSpec; readonly args: Array<string | undefined>; readonly opts: OptionValues };

/** node's messages start with a capital and point at `--`; ours read like the rest of brics-env's. */
function argumentError(err: unknown): ArgumentError {
  const e = err as Error & { code?: string };
  if (typeof e.code !== "string" || !e.code.startsWith("ERR_PARSE_ARGS_")) throw err;
  const quoted = /'([^']+)'/.exec(e.message)?.[1];
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && quoted !== undefined) return new ArgumentError(`unknown option '${quoted}'`);
  return new ArgumentError(e.message.charAt(0).toLowerCase() + e.message.slice(1));
}

/** What the command line asks for; throws ArgumentError on a mistake. Runs nothing. */
export function parseCommandLine(p: ProgramSpec, argv: readonly string[]): Parsed {
  const [first, ...rest] = argv;
  if (first === undefined) throw new ArgumentError(`no command given\n${programHelp(p).trimEnd()}`);
  if (first === "-h" || first === "--help") return { kind: "help", text: programHelp(p) };
  if (first === "-V" || first === "--version") return { kind: "version", text: `${p.version()}\n` };
  if (first.startsWith("-")) throw new ArgumentError(`unknown option '${first}'`);
  if (first === "help") {
    const wanted = rest[0];
    if (wanted === undefined) return { kind: "help", text: programHelp(p) };
    const c = p.commands.find((x) => x.name === wanted);
    if (c === undefined) throw new ArgumentError(`unknown command '${wanted}'`);
    return { kind: "help", text: commandHelp(p, c) };
  }
  const command = p.commands.find((c) => c.name === first);
  if (command === undefined) throw new ArgumentError(`unknown command '${first}'`);
  const terminator = rest.indexOf("--");
  if ((terminator < 0 ? rest : rest.slice(0, terminator)).some((a) => a === "-h" || a === "--help")) {
    return { kind: "help", text: commandHelp(p, command) };
  }

  const specs = command.options ?? [];
  const options: NonNullable<Parameters<typeof parseArgs>[0]>["options"] = {};
  for (const o of specs) {
    options[o.name] = {
      type: o.value !== undefined ? "string" : "boolean",
      ...(o.short !== undefined ? { short: o.short } : {}),
      ...(o.multiple === true ? { multiple: true } : {}),
    };
  }
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...rest], options, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (err) {
    throw argumentError(err);
  }
  const declared = command.args ?? [];
  const missing = declared.find((a, i) => a.required && parsed.positionals[i] === undefined);
  if (missing !== undefined) throw new ArgumentError(`missing required argument '${missing.name}'`);
  if (parsed.positionals.length > declared.length) {
    throw new ArgumentError(
      `too many arguments for '${command.name}'. Expected ${declared.length} argument${declared.length === 1 ? "" : "s"} but got ${parsed.positionals.length}.`,
    );
  }
  const opts: OptionValues = { ...parsed.values };
  for (const o of specs) if (opts[o.name] === undefined && o.defaultValue !== undefined) opts[o.name] = o.defaultValue;
  return { kind: "run", command, args: declared.map((_, i) => parsed.positionals[i]), opts };
}
