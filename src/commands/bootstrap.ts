/**
 * `brics-env bootstrap-bases`: build the JupyterHub and Slurm base images from Debian packages
 * for sites without access to the public registries, then say which variables point the
 * image builds at them.
 */
import { bootstrapBase } from "../effects/bootstrap.js";
import { selectBases, type BaseKind } from "../plan/bootstrapBases.js";

export interface BootstrapBasesOptions {
  /** Only these bases (default: all). */
  readonly only?: readonly BaseKind[];
  readonly force?: boolean;
  readonly json?: boolean;
  readonly sourcesFile?: string;
}

export async function bootstrapBasesCommand(opts: BootstrapBasesOptions = {}): Promise<number> {
  const wanted = selectBases(opts.only);
  const log = opts.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
  // Concurrently: each run mostly waits on the archive and on dpkg, so two overlap well.
  const results = await Promise.all(
    wanted.map(async (spec) => {
      const res = await bootstrapBase(spec, {
        force: opts.force ?? false,
        log,
        ...(opts.sourcesFile !== undefined ? { sourcesFile: opts.sourcesFile } : {}),
      });
      return { ...res, envVar: spec.envVar };
    }),
  );
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    process.stdout.write("Build the environment's images on these bases with:\n");
    for (const r of results) process.stdout.write(`  export ${r.envVar}=${r.image}\n`);
  }
  return 0;
}
