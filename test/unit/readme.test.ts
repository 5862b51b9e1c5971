/**
 * Keeps README.md true to the code: the deploy-config tables are generated from the schema,
 * and every command and option the CLI has is named in the README.
 * UPDATE_GOLDEN=1 rewrites the generated blocks.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { renderKeyTable, renderUsageMatrix } from "../../src/plan/initTemplate.js";
import { repoRoot } from "../../src/paths.js";

const readmePath = join(repoRoot(), "README.md");
const cli = join(repoRoot(), "dist", "src", "cli.js");

function generatedBlock(text: string, name: string): { start: number; end: number } {
  const begin = `<!-- BEGIN GENERATED: ${name} -->\n`;
  const start = text.indexOf(begin);
  assert.notEqual(start, -1, `README.md has no '${begin.trim()}' marker`);
  const end = text.indexOf("<!-- END GENERATED -->", start);
  assert.notEqual(end, -1, `README.md block '${name}' has no end marker`);
  return { start: start + begin.length, end };
}

function help(args: string[]): string {
  return execFileSync(process.execPath, [cli, ...args, "--help"], { encoding: "utf8" });
}

describe("README.md", () => {
  it("carries the deploy-config tables generated from the schema", () => {
    const text = readFileSync(readmePath, "utf8");
    const { start, end } = generatedBlock(text, "deploy-config");
    const expected = `${renderKeyTable()}\n${renderUsageMatrix()}`;
    if (process.env["UPDATE_GOLDEN"] === "1") {
      writeFileSync(readmePath, text.slice(0, start) + expected + text.slice(end));
      return;
    }
    assert.equal(text.slice(start, end), expected, "README.md's deploy-config tables are stale: run the unit tests with UPDATE_GOLDEN=1");
  });

  it("names every command and every option of the CLI", () => {
    const text = readFileSync(readmePath, "utf8");
    const top = help([]);
    const commandSection = top.slice(top.indexOf("Commands:"), top.indexOf("\n\n", top.indexOf("Commands:")));
    const commands = [...commandSection.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)]
      .map((m) => m[1] ?? "")
      .filter((c) => c !== "help");
    assert.ok(commands.length >= 10, `expected the CLI's commands in --help, got: ${commands.join(", ")}`);
    for (const command of commands) {
      assert.ok(text.includes(`brics-env ${command}`), `README.md does not mention 'brics-env ${command}'`);
      const options = [...help([command]).matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)/gm)]
        .map((m) => m[1] ?? "")
        .filter((o) => o !== "--help");
      for (const option of options) {
        assert.ok(text.includes(option), `README.md does not mention ${option} of 'brics-env ${command}'`);
      }
    }
  });
});
