/**
 * Build step after tsc: bundles the CLI (src/cli.ts, its dependencies included) over
 * dist/src/cli.js, one chunk per command, so a command loads a few files instead of a hundred
 * modules. Measured (docs/performance.md): it takes 15–25 ms off every start on the 2-core
 * machine. tsc's per-module output stays beside it for the tests, which import modules one by one.
 */
import { build } from "esbuild";
import { join } from "node:path";
import { repoRoot } from "../src/paths.js";

const root = repoRoot();
await build({
  entryPoints: { cli: join(root, "src", "cli.ts") },
  outdir: join(root, "dist", "src"),
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // yaml's build for Node is CommonJS, and calls require() for Node's own modules.
  banner: { js: 'import { createRequire as __bricsCreateRequire } from "node:module"; const require = __bricsCreateRequire(import.meta.url);' },
  sourcemap: "linked",
  logLevel: "warning",
});
