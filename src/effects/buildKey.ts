/**
 * The key of an image build: a hash of everything that goes into it — the Containerfile, the
 * build context as it is at build time (paths, modes, contents; so whatever `resources` staged
 * into it is covered), the build arguments, the target stage and the base image's id. `resources`
 * puts it on the image as a label and skips a build whose key the existing image already carries,
 * as `bootstrap-bases` does for the bases. File times are left out: equal contents build equal
 * images.
 */
import { createHash, type Hash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const BUILD_KEY_LABEL = "io.github.brics-env.build-key";

/** Bumped when what the key covers changes, so old labels stop matching. */
const KEY_SCHEME = "brics-env build key 1";

export interface BuildKeyInputs {
  readonly containerfile: string;
  readonly context: string;
  readonly target?: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Id of the base image the build starts from (undefined when there is none to look up). */
  readonly baseImageId?: string;
}

/**
 * Feeds every entry under `root` to the hash, in a fixed order, as path, kind, mode and content.
 * Synchronous: a context is a few hundred small files, which this reads in a few milliseconds,
 * while a promise per file took ten times as long.
 */
function hashTree(hash: Hash, root: string, rel = ""): void {
  const entries = readdirSync(join(root, rel)).sort();
  for (const name of entries) {
    const path = rel === "" ? name : `${rel}/${name}`;
    const full = join(root, path);
    const st = lstatSync(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      hash.update(`d ${mode} ${path}\0`);
      hashTree(hash, root, path);
    } else if (st.isSymbolicLink()) {
      hash.update(`l ${path}\0${readlinkSync(full)}\0`);
    } else if (st.isFile()) {
      hash.update(`f ${mode} ${st.size} ${path}\0`);
      hash.update(readFileSync(full));
    } else {
      hash.update(`o ${path}\0`);
    }
  }
}

export async function buildKey(inputs: BuildKeyInputs): Promise<string> {
  const hash = createHash("sha256");
  hash.update(
    JSON.stringify({
      scheme: KEY_SCHEME,
      target: inputs.target ?? null,
      buildArgs: Object.entries(inputs.buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      baseImageId: inputs.baseImageId ?? null,
    }),
  );
  hash.update("\0containerfile\0");
  hash.update(await readFile(inputs.containerfile));
  hash.update("\0context\0");
  hashTree(hash, inputs.context);
  return hash.digest("hex").slice(0, 32);
}
