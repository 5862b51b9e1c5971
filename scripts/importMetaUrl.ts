/**
 * Injected by scripts/bundle.ts into the CommonJS bundle, where it stands for `import.meta.url`
 * (which CommonJS has not): the bundle's own file URL, so modules that find files next to
 * themselves (src/paths.ts) or create a require (src/effects/exec.ts) work the same there.
 */
import { pathToFileURL } from "node:url";

export const importMetaUrl = pathToFileURL(__filename).href;
