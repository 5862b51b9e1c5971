/**
 * What every stack scenario shares: a private workspace, `brics-env` runs in it, waiting helpers,
 * and the rules for touching podman state — refuse to start on an environment that already
 * exists, tear down only what the test brought up (also on Ctrl-C or a CI timeout), print how
 * long each phase took.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { parseDocument } from "yaml";
import { formAction, hiddenXsrf, type Browser, type Page } from "./browser.js";
import { exists, namesMatching, podman } from "./podmanProbe.js";
import { makeWorkspace, type Workspace } from "./workspace.js";
import { BASES } from "../../src/plan/bootstrapBases.js";
import { containersOf, getEnvironment, type EnvName } from "../../src/plan/environments.js";
import { podmanObjectsOf } from "../../src/plan/podmanObjects.js";
import { podName, podmanContainerName } from "../../src/plan/names.js";

export const ORIGIN = "http://127.0.0.1:8000";

export async function until<T>(what: string, timeoutS: number, probe: () => Promise<T | undefined>, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutS * 1000;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutS} s waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function hubHealthy(base: string, timeoutS = 300, origin = ORIGIN): Promise<void> {
  await until("the hub's health endpoint", timeoutS, async () => {
    const res = await fetch(`${origin}${base}hub/health`, { signal: AbortSignal.timeout(5000) });
    return res.status === 200 ? true : undefined;
  });
}

/**
 * The user's server answers through the proxy. Its API refuses a browser without the server's own
 * cookie, which an authenticated page hands out through the OAuth round trip with the hub; a UI
 * page (`/files/`) starts that round trip whether or not a UI extension is installed.
 */
export async function serverStatus(browser: Browser, base: string, user: string): Promise<Record<string, unknown> | undefined> {
  const statusUrl = `${base}user/${user}/api/status`;
  const answered = (p: Page) => p.status === 200 && new URL(p.url).pathname.endsWith(`/user/${user}/api/status`);
  let page = await browser.get(statusUrl);
  if (!answered(page)) {
    await browser.get(`${base}user/${user}/files/`);
    page = await browser.get(statusUrl);
  }
  return answered(page) ? (JSON.parse(page.body) as Record<string, unknown>) : undefined;
}

/** The dummy authenticator's login form, filled in and posted; returns the answer (302: logged in). */
export async function passwordLogin(browser: Browser, base: string, user: string, password: string): Promise<Page> {
  const loginPage = await browser.get(`${base}hub/login`);
  assert.equal(loginPage.status, 200, "login page");
  const xsrf = hiddenXsrf(loginPage);
  assert.ok(xsrf, "the login form carries an _xsrf value");
  return browser.postForm(formAction(loginPage), { _xsrf: xsrf, username: user, password }, false);
}

/** Whether a connection to 127.0.0.1:`port` is refused (nothing is published there). */
export function refusedOnLoopback(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port, timeout: 3000 });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

export function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}

export interface StackHarness {
  readonly env: EnvName;
  readonly pod: string;
  readonly hub: string;
  readonly slurm: string;
  /** The workspace, once before() has made it. */
  workspace(): Workspace;
  log(line: string): void;
  timed<T>(label: string, fn: () => Promise<T>): Promise<T>;
  /** Runs `brics-env` from the workspace; throws with its output on a non-zero exit. */
  brics(args: string[], timeoutMs?: number): Promise<string>;
  /**
   * `brics-env backup` of the environment from the workspace's deploy directory, timed under
   * `label`; returns what it said and the archive it wrote (an absolute path).
   */
  backup(label: string): Promise<{ output: string; archive: string }>;
  /** Whether the environment is up and so this test's to tear down. */
  podCreated(created: boolean): void;
  /** Adds a line to the durations printed at the end. */
  record(label: string, seconds: number): void;
  /** Whatever podman still holds of the environment. */
  leftovers(): Promise<string[]>;
  /** `brics-env bootstrap-bases` (cached), and the workspace's builds pointed at those bases. */
  bootstrapBases(force?: boolean): Promise<void>;
  /**
   * `brics-env init` into the workspace's deploy directory, then the given keys set in its
   * deploy ConfigMap (configuration, not code); returns the ConfigMap's data.
   */
  initDeployDir(settings?: Readonly<Record<string, string>>): Promise<Record<string, string>>;
  /**
   * A podman command that removes something else the test made (a container beside the pod),
   * run at teardown — after the test, or on Ctrl-C / a CI timeout — whatever happened.
   */
  atTeardown(podmanArgs: string[]): void;
  /**
   * Restarts the hub container (the user servers stay; where the hub is alone in the pod, a new
   * pod through brics-env down and up) and waits until the hub is healthy again at `origin`.
   */
  restartHub(base: string, origin?: string): Promise<void>;
  /**
   * Spawns the user's server through the options form and waits until it answers through the
   * proxy; returns the seconds from the request to then.
   */
  spawnAndReach(browser: Browser, base: string, user: string, options: Record<string, string>): Promise<number>;
  /**
   * `up` waits for the hub only; the Slurm container is ready once its entry point has started
   * every daemon and sshd (it logs "ready"). A user who spawns before that gets an ssh error.
   */
  slurmReady(timeoutS?: number): Promise<void>;
}

/** Registers the before/after hooks of a scenario on `env` and returns what its test uses. */
export function stackHarness(env: EnvName): StackHarness {
  const pod = podName(env);
  // The environment's named volumes (not those podman makes for its Secrets).
  const objects = podmanObjectsOf(getEnvironment(env));
  const dataVolumes = objects.volumes.filter((v) => !objects.secrets.includes(v));
  const durations: [string, number][] = [];
  const teardowns: string[][] = [];
  let ws: Workspace | undefined;
  let createdPod = false;
  // Set once before() found no environment of this name: from then on, anything of it is ours.
  let ownsEnvironment = false;

  const log = (line: string) => process.stdout.write(`[stack:${env}] ${line}\n`);

  const workspace = (): Workspace => {
    if (ws === undefined) throw new Error("no workspace: before() did not run or failed");
    return ws;
  };

  async function brics(args: string[], timeoutMs = 45 * 60_000): Promise<string> {
    const w = workspace();
    const r = await execa(process.execPath, [w.cli, ...args], { env: w.env, cwd: w.dir, reject: false, timeout: timeoutMs, stdin: "ignore", all: true });
    if (r.exitCode !== 0) throw new Error(`brics-env ${args.join(" ")} exited ${r.exitCode}\n${r.all}`);
    return r.all ?? "";
  }

  async function environmentLeftovers(): Promise<string[]> {
    const found: string[] = [];
    if (await exists("pod", pod)) found.push(`pod ${pod}`);
    for (const c of await namesMatching("container", pod)) found.push(`container ${c}`);
    for (const v of dataVolumes) {
      if (await exists("volume", v)) found.push(`volume ${v}`);
    }
    for (const s of await namesMatching("secret", `-${env}`)) found.push(`secret ${s}`);
    for (const v of await namesMatching("volume", `jupyterhub-slurm-`)) if (v.endsWith(`-${env}`)) found.push(`volume ${v}`);
    return found;
  }

  before(async () => {
    const leftovers = await environmentLeftovers();
    if (leftovers.length > 0) {
      throw new Error(
        `the stack test brings up ${env} itself and will not touch one that exists already: ` +
          `${leftovers.join(", ")}. Remove it with \`brics-env down ${env} --force\` and run again.`,
      );
    }
    const busy = await fetch(`${ORIGIN}/`, { signal: AbortSignal.timeout(2000) }).then(
      () => true,
      () => false,
    );
    if (busy) throw new Error(`${ORIGIN} already answers: port 8000 is taken, the hub could not publish on it`);
    ws = await makeWorkspace();
    ownsEnvironment = true;
    log(`workspace ${ws.dir}; Python packages from ${ws.pythonPackages}${ws.standIns ? " (test stand-ins)" : ""}`);
  });

  // Interrupted (Ctrl-C, CI timeout): node:test runs no after() hook, so tear down here.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      if (ws !== undefined && createdPod) {
        log(`${signal}: tearing ${env} down`);
        spawnSync(process.execPath, [ws.cli, "down", env, ws.deployDir, "--force", "--ignore-servers"], { env: ws.env, stdio: "inherit", timeout: 300_000 });
      }
      for (const args of teardowns) spawnSync("podman", args, { stdio: "inherit", timeout: 60_000 });
      ws?.remove();
      process.exit(130);
    });
  }

  async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    log(`${label}…`);
    const result = await fn();
    durations.push([label, seconds(t0)]);
    log(`${label}: ${seconds(t0)} s`);
    return result;
  }

  after(async () => {
    // Someone else's environment (before() refused to start) is never touched.
    if (ownsEnvironment && (createdPod || (await environmentLeftovers()).length > 0)) {
      try {
        // A test that failed may leave a server running: cleaning up must not wait on the hub for it.
        await brics(["down", env, workspace().deployDir, "--force", "--ignore-servers"], 10 * 60_000);
      } catch (e) {
        log(`cleanup with brics-env down --force failed, removing by name: ${String(e)}`);
        await podman(["pod", "rm", "-f", pod]);
        for (const v of dataVolumes) await podman(["volume", "rm", "-f", v]);
        for (const secret of podmanObjectsOf(getEnvironment(env)).secrets) {
          await podman(["secret", "rm", secret]);
          await podman(["volume", "rm", "-f", secret]);
        }
      }
    }
    for (const args of teardowns) {
      const r = await podman(args);
      if (r.code !== 0) log(`teardown: podman ${args.join(" ")} exited ${r.code}: ${r.err.trim()}`);
    }
    ws?.remove();
    if (durations.length > 0) {
      log("durations (s):");
      for (const [label, s] of durations) log(`  ${label.padEnd(48)} ${s}`);
    }
  });

  const slurm = podmanContainerName(env, "slurm");
  return {
    env,
    pod,
    hub: podmanContainerName(env, "jupyterhub"),
    slurm,
    workspace,
    log,
    timed,
    brics,
    async backup(label: string): Promise<{ output: string; archive: string }> {
      const w = workspace();
      const output = await timed(label, () => brics(["backup", env, "--deploy-dir", w.deployDir]));
      const written = /^wrote (\S+\.tar\.gz) /m.exec(output)?.[1];
      assert.ok(written, `brics-env backup names the archive it wrote:\n${output}`);
      // It names the archive relative to its working directory, the workspace, when it is inside.
      return { output, archive: resolve(w.dir, written) };
    },
    podCreated: (created: boolean) => {
      createdPod = created;
    },
    record: (label: string, s: number) => {
      durations.push([label, s]);
    },
    leftovers: environmentLeftovers,
    atTeardown: (podmanArgs: string[]) => {
      teardowns.push(podmanArgs);
    },
    async bootstrapBases(force = false): Promise<void> {
      await brics(["bootstrap-bases", ...(force ? ["--force"] : [])]);
      for (const b of BASES) workspace().env[b.envVar] = b.image;
    },
    async initDeployDir(settings: Readonly<Record<string, string>> = {}): Promise<Record<string, string>> {
      await brics(["init", env, workspace().deployDir]);
      const cmPath = join(workspace().deployDir, "deploy-configmap.yaml");
      const doc = parseDocument(await readFile(cmPath, "utf8"));
      for (const [key, value] of Object.entries(settings)) doc.setIn(["data", key], value);
      await writeFile(cmPath, doc.toString());
      return doc.toJS().data as Record<string, string>;
    },
    async restartHub(base: string, origin = ORIGIN): Promise<void> {
      // As docs/operations.md says: where the hub is the pod's only container, brics-env down and up
      // (a new pod). Stopping and starting that pod races with podman's late clean-up of the
      // stopped hub, which stops the pod again (kube play's exit policy); seen in CI on 4.3.1.
      if (containersOf(getEnvironment(env)).length === 1) {
        await brics(["down", env, workspace().deployDir]);
        await brics(["up", env, workspace().deployDir, "--no-build"]);
      } else {
        const args = ["restart", "--time", "20", podmanContainerName(env, "jupyterhub")];
        const r = await podman(args, 180_000);
        assert.equal(r.code, 0, `podman ${args.join(" ")}: ${r.err}`);
      }
      await hubHealthy(base, 180, origin);
    },
    async spawnAndReach(browser: Browser, base: string, user: string, options: Record<string, string>): Promise<number> {
      const started = Date.now();
      const form = await browser.get(`${base}hub/spawn`);
      assert.equal(form.status, 200, "spawn form");
      assert.ok(form.body.includes(`value="${options["brics_project"]}"`), `the form offers ${options["brics_project"]}`);
      const posted = await browser.postForm(formAction(form), options, false);
      // Accepted: a redirect to the pending page. Refused options come back as the form, status 200.
      assert.equal(posted.status, 302, `spawn accepted (got ${posted.status}: ${/alert[^>]*>([^<]*)/.exec(posted.body)?.[1] ?? ""})`);
      const status = await until("the user's server behind the proxy", 420, () => serverStatus(browser, base, user), 2000);
      log(`server reachable after ${seconds(started)} s: ${JSON.stringify(status)}`);
      return seconds(started);
    },
    async slurmReady(timeoutS = 180): Promise<void> {
      await until("the Slurm container's 'ready'", timeoutS, async () => {
        const r = await podman(["logs", slurm]);
        return /start-slurm: ready/.test(r.out + r.err) ? true : undefined;
      });
    },
  };
}
