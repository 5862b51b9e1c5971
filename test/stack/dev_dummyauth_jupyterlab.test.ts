/**
 * Tier 3, in a real browser: Debian's Chromium, driven by playwright-core (no browser download),
 * uses dev_dummyauth as a person would — login form, spawn form, progress page, JupyterLab served
 * from a Slurm job, a notebook cell, a terminal, stopping the server from the hub's home page,
 * logging out. Everything behind the browser is the product: `brics-env up` on the bootstrapped
 * bases with the Debian-package user environment (JupyterLab 4 from Debian).
 *
 * Screenshots of each step go to a directory named in the output; it is kept when the test fails
 * (or with BRICS_ENV_TEST_KEEP_SCREENSHOTS=1) and removed otherwise.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { collectLogs, sh, slurmJobs } from "./podmanProbe.js";
import { hubHealthy, ORIGIN, seconds, stackHarness, until } from "./harness.js";

const ENV = "dev_dummyauth" as const;
const CHROMIUM = process.env["BRICS_ENV_TEST_CHROMIUM"] || "/usr/bin/chromium";
/**
 * Headless as root on a machine with no outside network: no sandbox (root), and none of the
 * background connections Chromium makes at start (each would be refused, many at a time).
 */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const STARTUP_POLL_INTERVAL = 2;

const h = stackHarness(ENV);

class Screenshots {
  readonly dir = mkdtempSync(join(tmpdir(), "brics-env-jupyterlab-screens-"));
  private n = 0;

  async take(page: Page, step: string): Promise<void> {
    this.n += 1;
    const file = join(this.dir, `${String(this.n).padStart(2, "0")}-${step}.png`);
    await page.screenshot({ path: file }).catch((e: unknown) => h.log(`screenshot ${file} failed: ${String(e)}`));
  }
}

/** The server's own view of its kernels, through the proxy with the browser's cookies. */
async function kernelStates(page: Page, base: string, user: string): Promise<string[]> {
  const res = await page.context().request.get(`${ORIGIN}${base}user/${user}/api/sessions`);
  if (res.status() !== 200) return [];
  const sessions = (await res.json()) as { kernel?: { execution_state?: string } }[];
  return sessions.map((s) => s.kernel?.execution_state ?? "unknown");
}

test(`${ENV}: in Chromium, log in, start JupyterLab in a Slurm job from the spawn form, run a notebook cell, open a terminal, stop, log out`, { timeout: 60 * 60_000 }, async () => {
  const w = h.workspace();
  const shots = new Screenshots();
  h.log(`screenshots in ${shots.dir}`);
  let browser: Browser | undefined;
  let page: Page | undefined;
  let passed = false;
  try {
    await h.timed("bootstrap base images", () => h.bootstrapBases());
    // The spawner asks Slurm about a starting job every startupPollInterval seconds (15 by default).
    const data = await h.initDeployDir({ startupPollInterval: String(STARTUP_POLL_INTERVAL) });
    const base = data["baseUrl"] ?? "/";
    const password = data["dummyAuthPassword"] ?? "";
    const devUsers = (data["devUsers"] ?? "").split(/\s+/).filter((u) => u !== "");
    const user = devUsers[0]?.split(".")[0] ?? "";
    // The last of the user's projects, so the form's choice (not its default) decides the account.
    const project = devUsers.filter((u) => u.startsWith(`${user}.`)).map((u) => u.split(".")[1] ?? "").pop() ?? "";
    assert.ok(user !== "" && project !== "" && password !== "", "init wrote devUsers and a dummyAuthPassword");
    const unixUser = `${user}.${project}`;
    const home = `/home/${project}/${unixUser}`;

    await h.timed("brics-env up (builds, plays, waits for the hub)", async () => {
      h.podCreated(true);
      await h.brics(["up", ENV, w.deployDir]);
      await hubHealthy(base);
      await h.slurmReady();
    });

    browser = await h.timed("Chromium start", () =>
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 }),
    );
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(60_000);
    const p = page;

    // 1. The login form.
    await p.goto(`${ORIGIN}${base}hub/login`);
    await shots.take(p, "login-form");
    await p.locator('input[name="username"]').fill(user);
    await p.locator('input[name="password"]').fill(password);
    await p.locator("#login_submit").click();

    // 2. The spawn form (JupyterHub sends a user without a server there), a project chosen.
    await p.waitForURL(/\/hub\/spawn/);
    const projectSelect = p.locator('select[name="brics_project"]');
    const offered = await projectSelect.locator("option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.ok(offered.includes(`${project}.brics`), `the form offers ${project}.brics (offered: ${offered.join(", ")})`);
    await projectSelect.selectOption(`${project}.brics`);
    await shots.take(p, "spawn-form");

    // 3. Start; the progress page until the browser is sent on to the server.
    const clickedStart = Date.now();
    await p.locator('#spawn_form [type="submit"]').click();
    await p.waitForURL(/\/hub\/spawn-pending\//);
    await p.locator("#progress-message").waitFor();
    await shots.take(p, "progress-page");
    const progress = new Set<string>();
    await until("the progress page to hand over to the server", 420, async () => {
      if (!p.url().includes("/hub/spawn-pending/")) return true;
      // Read without waiting: once the hub sends the browser on, the element is gone for good.
      const line = await p.evaluate(() => document.querySelector("#progress-message")?.textContent ?? null).catch(() => null);
      if (line !== null && line.trim() !== "") progress.add(line.trim());
      return undefined;
    }, 200);
    h.record("Start clicked -> hub sends the browser to the server", seconds(clickedStart));
    h.log(`progress messages seen: ${[...progress].map((m) => JSON.stringify(m)).join(", ")}`);
    assert.ok(progress.size > 0, "the progress page showed the spawn's progress");

    // 4. JupyterLab.
    await p.waitForURL(new RegExp(`/user/${user}/lab`), { timeout: 120_000 }).catch(() => {
      throw new Error(`the server did not open JupyterLab: the browser is at ${p.url()}`);
    });
    await p.locator(".jp-Launcher").waitFor({ timeout: 120_000 });
    h.record("Start clicked -> JupyterLab launcher shown", seconds(clickedStart));
    await shots.take(p, "jupyterlab-launcher");

    // 5. A new notebook; usable once its kernel is idle, as the page and the server both say.
    await p.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
    const notebook = p.locator(".jp-NotebookPanel:not(.lm-mod-hidden)");
    await notebook.waitFor();
    await until("the notebook's kernel to be idle", 180, async () => {
      const shown = await notebook.locator(".jp-Notebook-ExecutionIndicator").getAttribute("data-status").catch(() => null);
      const states = await kernelStates(p, base, user);
      return shown === "idle" && states.length === 1 && states[0] === "idle" ? true : undefined;
    }, 250);
    const usable = seconds(clickedStart);
    h.record("Start clicked -> notebook kernel idle (usable JupyterLab)", usable);
    h.log(`from clicking Start to a usable JupyterLab (notebook kernel idle): ${usable} s`);
    await shots.take(p, "notebook-kernel-idle");

    // 6. A cell that says who and where it runs.
    await notebook.locator(".jp-Cell .cm-content").first().click();
    await p.keyboard.insertText(
      'import os, subprocess\nprint("USER=" + subprocess.check_output(["id", "-un"], text=True).strip())\n' +
        'print("JOB=" + os.environ.get("SLURM_JOB_ID", ""))\nprint("CWD=" + os.getcwd())',
    );
    await p.keyboard.press("Shift+Enter");
    const output = notebook.locator(".jp-OutputArea-output").first();
    await output.filter({ hasText: "CWD=" }).waitFor({ timeout: 60_000 });
    const printed = Object.fromEntries(
      ((await output.textContent()) ?? "")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /^[A-Z]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    ) as Record<string, string>;
    await shots.take(p, "notebook-cell-output");
    assert.equal(printed["USER"], unixUser, "the kernel runs as <USER>.<PROJECT> of the chosen project");
    assert.equal(printed["CWD"], home, "the kernel runs in the project account's home");
    const jobs = await slurmJobs(h.slurm);
    assert.equal(jobs.length, 1, `one job in the queue: ${JSON.stringify(jobs)}`);
    assert.equal(printed["JOB"], jobs[0]!.id, "the kernel runs inside the Slurm job in the queue");
    assert.equal(jobs[0]!.user, unixUser);
    assert.equal(jobs[0]!.state, "RUNNING");
    // Where the wait went: Slurm's own record of the job (seconds since its epoch, in its clock).
    const times = await sh(
      h.slurm,
      `for k in SubmitTime EligibleTime StartTime; do v=$(scontrol show job -o ${jobs[0]!.id} | tr ' ' '\\n' | sed -n "s/^$k=//p"); echo "$k $(date -d "$v" +%s)"; done; date +%s`,
    );
    const [submit, , start, now] = times.split("\n").map((l) => Number(l.split(" ").pop()));
    h.log(`Slurm: job ${jobs[0]!.id} waited ${start! - submit!} s in the queue; started ${now! - start!} s ago`);

    // 7. A terminal, which runs a shell as the same account.
    await p.locator(".lm-MenuBar-item", { hasText: "File" }).click();
    await p.locator('.lm-Menu-item[data-type="submenu"]', { hasText: "New" }).first().hover();
    await p.locator('.lm-Menu-item[data-command="terminal:create-new"]').click();
    const terminal = p.locator(".jp-Terminal:visible");
    await terminal.locator(".xterm").waitFor();
    await terminal.click();
    const marker = `brics-env-terminal-${Date.now()}`;
    await p.keyboard.type(`id -un | tee ~/${marker}; pwd`);
    await p.keyboard.press("Enter");
    const fromTerminal = await until("the terminal's command to run", 30, async () => {
      const out = await sh(h.slurm, `cat ${home}/${marker} 2>/dev/null || true`);
      return out.trim() === "" ? undefined : out.trim();
    }, 500);
    assert.equal(fromTerminal, unixUser, "the terminal's shell runs as <USER>.<PROJECT>");
    await shots.take(p, "terminal");
    await sh(h.slurm, `rm -f ${home}/${marker}`);

    // 8. Stop from the hub's home page: the job leaves the queue.
    await p.goto(`${ORIGIN}${base}hub/home`);
    await shots.take(p, "hub-home-running");
    await p.locator("#stop").click();
    await until("the job to leave the queue", 120, async () => ((await slurmJobs(h.slurm)).length === 0 ? true : undefined));
    await p.locator("#stop").waitFor({ state: "hidden", timeout: 60_000 });
    await shots.take(p, "hub-home-stopped");

    // 9. Log out: back at the login form, and the hub no longer knows the browser.
    await p.locator("#logout").click();
    await p.waitForURL(/\/hub\/login/);
    await shots.take(p, "logged-out");
    const me = await context.request.get(`${ORIGIN}${base}hub/api/user`);
    assert.equal(me.status(), 403, "after logout the hub API refuses the browser");

    await browser.close();
    browser = undefined;
    await h.timed("brics-env down --force --stop-servers", () => h.brics(["down", ENV, w.deployDir, "--force", "--stop-servers"]));
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");
    passed = true;
  } catch (e) {
    if (page !== undefined) await shots.take(page, "failure");
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] screenshots kept in ${shots.dir}\n[stack] logs:\n${await collectLogs(h.hub, h.slurm)}\n`);
    throw e;
  } finally {
    await browser?.close().catch(() => undefined);
    if (passed && process.env["BRICS_ENV_TEST_KEEP_SCREENSHOTS"] !== "1") rmSync(shots.dir, { recursive: true, force: true });
    else h.log(`screenshots kept in ${shots.dir}`);
  }
});
