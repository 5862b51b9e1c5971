/**
 * Build step after tsc. tsc's per-module output stays in dist/ for the tests, which import modules
 * one by one; the CLI itself runs from two bundles:
 *
 * - `dist/src/brics-env.cjs`: src/cli.ts with everything it uses (the YAML parser included), as
 *   one CommonJS file. A command's module still loads only when that command runs (esbuild turns
 *   each `import()` of our own code into a deferred initialiser).
 * - `dist/src/cli.js`, the `brics-env` binary: src/launcher.ts, which runs the first through V8's
 *   code cache.
 *
 * Measured (docs/performance.md): loading a few files instead of a hundred modules takes 15–25 ms
 * off every start on the 2-core machine, and the code cache 20–35 ms more.
 */
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../src/paths.js";

const root = repoRoot();
const out = join(root, "dist", "src");
const common = { bundle: true, platform: "node", target: "node20", sourcemap: "linked", logLevel: "warning" } as const;

await build({
  ...common,
  entryPoints: [join(root, "src", "cli.ts")],
  outfile: join(out, "brics-env.cjs"),
  format: "cjs",
  define: { "import.meta.url": "importMetaUrl" },
  inject: [join(root, "scripts", "importMetaUrl.ts")],
});

// The launcher compiles the bundle without a dynamic-import callback (Node 20 has none outside
// --experimental-vm-modules), so an import() left in it would fail only when reached.
const bundled = readFileSync(join(out, "brics-env.cjs"), "utf8").split("\n");
const imports = bundled.flatMap((line, i) => (/(^|[^\w$.])import\(/.test(line) ? [`  line ${i + 1}: ${line.trim().slice(0, 120)}`] : []));
if (imports.length > 0) {
  throw new Error(`dist/src/brics-env.cjs still calls import(), which the launcher cannot serve; load Node's modules with createRequire instead:\n${imports.join("\n")}`);
}

await build({
  ...common,
  entryPoints: [join(root, "src", "launcher.ts")],
  outfile: join(out, "cli.js"),
  format: "esm",
});
