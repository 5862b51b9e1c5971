/**
 * `brics-env init`: a deploy directory with a commented deploy-configmap.yaml. Never overwrites;
 * says what the user still has to add for environments that need their own files.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Environment } from "../plan/environments.js";
import { initInstructions, renderInitConfigMap } from "../plan/initTemplate.js";
import { DEPLOY_CONFIGMAP_FILE } from "../plan/names.js";
import { ensureDir, writeFileAtomic } from "../effects/deployDir.js";
import { consoleOutput, displayPath, type Output } from "./common.js";

/** 36 random bytes, base64: 48 characters, as the spec suggests (openssl rand -base64 36). */
function randomPassword(): string {
  return randomBytes(36).toString("base64");
}

export async function initCommand(env: Environment, dir: string, out: Output = consoleOutput): Promise<void> {
  await ensureDir(dir);
  const target = join(dir, DEPLOY_CONFIGMAP_FILE);
  if (existsSync(target)) {
    out.say(`kept existing ${displayPath(target)} (init never overwrites)`);
  } else {
    const text = renderInitConfigMap(env, { dummyAuthPassword: randomPassword() });
    // 0600: for dummy-auth environments it holds the login password.
    await writeFileAtomic(target, text, { mode: env.auth === "dummy" ? 0o600 : 0o644 });
    out.say(`wrote ${displayPath(target)}`);
  }
  const steps = initInstructions(env).filter((step) => {
    // Files already in place need no instruction.
    const m = /^add (\S+)/.exec(step);
    return m === null || !existsSync(join(dir, m[1]!));
  });
  if (steps.length === 0) {
    out.say(`ready: brics-env up ${env.name} ${displayPath(dir)}`);
    return;
  }
  out.say(`before ${env.name} can run, in ${displayPath(dir)}:`);
  for (const step of steps) out.say(`  - ${step}`);
  out.say(`then: brics-env check ${env.name} ${displayPath(dir)}`);
}
