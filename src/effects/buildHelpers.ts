/**
 * The scripts both image builds run (build_helpers/ in the repository) exist once and are staged
 * into each build context as `_build_helpers/`, as `_build_data/` is: a build context cannot
 * reach outside itself. The Containerfiles copy them to /usr/local/lib/brics-build/.
 */
import { join } from "node:path";
import { syncTree } from "./syncTree.js";

export const BUILD_HELPERS_DIR = "build_helpers";
export const STAGED_BUILD_HELPERS_DIR = "_build_helpers";

export async function stageBuildHelpers(root: string, contextDir: string): Promise<void> {
  const dest = join(contextDir, STAGED_BUILD_HELPERS_DIR);
  syncTree(join(root, BUILD_HELPERS_DIR), dest, (p) => p.endsWith("__pycache__"));
}
