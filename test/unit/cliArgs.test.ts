/** Command-line parsing and --help layout, on a small program of its own. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, commandHelp, parseCommandLine, programHelp, type CommandSpec, type ProgramSpec } from "../../src/cliArgs.js";

const noop = async () => undefined;
const go: CommandSpec = {
  name: "go",
  description: "Go somewhere.",
  args: [
    { name: "where", required: true, description: "the place" },
    { name: "how", required: false, description: "the means" },
  ],
  options: [
    { name: "speed", value: "<kmh>", defaultValue: "50", description: "how fast" },
    { name: "via", value: "<place>", multiple: true, description: "stops on the way (repeatable)" },
    { name: "no-stop", description: "never stop" },
    { name: "follow", short: "f", description: "keep going" },
  ],
  after: "\nExamples:\n  prog go home",
  run: noop,
};
const PROGRAM: ProgramSpec = { name: "prog", description: "A program.", version: () => "1.2.3", commands: [go, { name: "stay", description: "Stay.", run: noop }] };

const parse = (...argv: string[]) => parseCommandLine(PROGRAM, argv);
const usageError = (argv: string[], message: RegExp) => assert.throws(() => parseCommandLine(PROGRAM, argv), (e: unknown) => e instanceof ArgumentError && message.test(e.message));

describe("parseCommandLine", () => {
  it("hands a command its arguments in order and its options, defaults filled in", () => {
    const r = parse("go", "home", "--via", "a", "--no-stop", "--via=b", "-f");
    assert.equal(r.kind, "run");
    if (r.kind !== "run") return;
    assert.equal(r.command.name, "go");
    assert.deepEqual(r.args, ["home", undefined]);
    assert.deepEqual(r.opts, { via: ["a", "b"], "no-stop": true, follow: true, speed: "50" });
    const r2 = parse("go", "--speed", "90", "home", "bike");
    assert.ok(r2.kind === "run" && r2.opts["speed"] === "90" && r2.args[1] === "bike");
  });

  it("answers --help, -h, help <command> and --version without running anything", () => {
    assert.deepEqual(parse("--version"), { kind: "version", text: "1.2.3\n" });
    assert.equal(parse("-h").kind, "help");
    const help = parse("go", "home", "--help");
    assert.ok(help.kind === "help" && help.text.startsWith("Usage: prog go [options] <where> [how]\n"));
    const viaHelp = parse("help", "go");
    assert.ok(viaHelp.kind === "help" && viaHelp.text === commandHelp(PROGRAM, go));
    // After --, -h is an argument.
    assert.equal(parse("go", "--", "-h").kind, "run");
  });

  it("refuses what it does not know, with a message naming it", () => {
    usageError(["fly"], /^unknown command 'fly'$/);
    usageError(["go", "home", "--fast"], /^unknown option '--fast'$/);
    usageError(["go"], /^missing required argument 'where'$/);
    usageError(["go", "a", "b", "c"], /^too many arguments for 'go'\. Expected 2 arguments but got 3\.$/);
    usageError(["stay", "x"], /Expected 0 arguments but got 1/);
    usageError(["go", "home", "--speed"], /argument missing/);
    usageError(["go", "home", "--no-stop=yes"], /does not take an argument/);
    usageError(["--bogus"], /^unknown option '--bogus'$/);
    usageError([], /^no command given\nUsage: prog/);
  });
});

describe("help layout", () => {
  it("lists commands and options in aligned columns, the text after the table", () => {
    const top = programHelp(PROGRAM);
    assert.match(top, /^Usage: prog \[options\] \[command\]\n\nA program\.\n/);
    assert.match(top, /\nCommands:\n  go \[options\] <where> \[how\]  Go somewhere\.\n  stay {24}Stay\.\n  help \[command\] {14}display help for command\n/);
    const help = commandHelp(PROGRAM, go);
    assert.match(help, /\nArguments:\n  where  the place\n  how    the means\n/);
    assert.match(help, /\n  --speed <kmh>  how fast \(default: "50"\)\n/);
    assert.match(help, /\n  -f, --follow   keep going\n  -h, --help     display help for command\n/);
    assert.ok(help.endsWith("\nExamples:\n  prog go home\n"));
  });

  it("wraps long descriptions under their column", () => {
    const long: CommandSpec = { name: "x", description: "d", args: [{ name: "a", required: true, description: "word ".repeat(30).trim() }], run: noop };
    const lines = commandHelp(PROGRAM, long).split("\n").filter((l) => l.includes("word"));
    assert.ok(lines.length > 1);
    assert.ok(lines.every((l) => l.length <= 80));
    assert.ok(lines.slice(1).every((l) => l.startsWith("     word")));
  });
});
