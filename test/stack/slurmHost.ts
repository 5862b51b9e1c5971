/**
 * The external Slurm host of the scenarios whose Slurm is outside the pod (dev_dummyauth_extslurm,
 * prod): a container of its own beside the pod, from our Slurm image's stage-prod (sshd with
 * brics_slurm's drop-ins, the jupyterspawner account, the sudo policy and the wrappers as the
 * Containerfile installs them from brics_slurm/) plus test/fixtures/slurm_host (GPUs for Slurm to
 * count). What a site does to its Slurm host at run time the test does as a site would: the
 * accounts come from the "directory service" (useradd), the hub's public key is authorised for
 * jupyterspawner, and the deploy directory gets the host's real host key from the running host.
 *
 * The host sits on the network `podman kube play` puts pods on, whose DNS resolves container
 * names: the hub reaches it by its name (sshHostname), and Slurm's node name, which batchspawner
 * reads from squeue and the proxy connects to, is the same name. User servers reach the Hub API at
 * the network's gateway, this machine's own address on that network, where `up` publishes port
 * 8081 from hubConnectUrl.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { podman, sh, slurmJobs } from "./podmanProbe.js";
import { buildProdImage } from "./prodImages.js";
import type { Browser } from "./browser.js";
import { serverStatus, until, type StackHarness } from "./harness.js";
import type { Workspace } from "./workspace.js";
import { repoRoot } from "../../src/paths.js";

/** The host's image (kept between runs, a cache like the bases) and the stage-prod image under it. */
export const SLURM_HOST_IMAGE = "localhost/brics_test_slurm_host:latest";
const SLURM_PROD_IMAGE = "localhost/brics_test_slurm_host:stage-prod";

/**
 * The network podman 4 puts kube-played pods on when the manifest names none; DNS-enabled, so
 * containers on it find each other by name.
 */
export const KUBE_NETWORK = "podman-default-kube-network";

/** Where the Hub API is published (hubConnectUrl's port). */
const HUB_API_HOST_PORT = 8081;

/** What a site hands over for its Slurm host, beside the key files in the deploy directory. */
export interface SiteSettings {
  readonly sshHostname: string;
  readonly hubConnectUrl: string;
}

type Job = Awaited<ReturnType<typeof slurmJobs>>[number];

export class ExternalSlurmHost {
  /** Whether this test created the kube network (then it goes at teardown too). */
  private createdNetwork = false;

  /** `name` is the container's name, its host name and Slurm's node name. */
  constructor(readonly name: string) {}

  /** Refuses a container of that name: it is not this test's. */
  async preflight(): Promise<void> {
    const existing = await podman(["container", "exists", this.name]);
    assert.notEqual(existing.code, 0, `a container ${this.name} exists already and is not this test's; remove it (podman rm -f ${this.name}) and run again`);
  }

  /**
   * Builds the host's image: brics_slurm's stage-prod in the workspace copy, then the fixture
   * layer on top. The layer cache makes this cheap once the dev Slurm image is built.
   */
  async build(ws: Workspace): Promise<void> {
    await buildProdImage(ws, "brics_slurm", SLURM_PROD_IMAGE);
    const r = await podman(["build", "--layers", "--build-arg", `BASE_IMAGE=${SLURM_PROD_IMAGE}`, "-t", SLURM_HOST_IMAGE, join(repoRoot(), "test", "fixtures", "slurm_host")], 10 * 60_000);
    assert.equal(r.code, 0, `building the Slurm host image:\n${r.out.slice(-3000)}\n${r.err.slice(-3000)}`);
  }

  /**
   * Starts the host on the kube network (created when podman has not made it yet, as the first
   * `kube play` would). CAP_SYS_ADMIN: Slurm 24.11's slurmd needs it in a container for jobs that
   * load the user's environment, as the hub's do (docs/images.md). `atTeardown` gets the podman
   * commands that remove what this made, before it is made.
   */
  async start(atTeardown: (podmanArgs: string[]) => void): Promise<void> {
    // Teardowns run in order: the container before its network.
    atTeardown(["rm", "-f", "-v", "-t", "0", this.name]);
    if ((await podman(["network", "exists", KUBE_NETWORK])).code !== 0) {
      atTeardown(["network", "rm", KUBE_NETWORK]);
      const made = await podman(["network", "create", KUBE_NETWORK]);
      assert.equal(made.code, 0, `podman network create ${KUBE_NETWORK}: ${made.err}`);
      this.createdNetwork = true;
    }
    const r = await podman(["run", "-d", "--name", this.name, "--hostname", this.name, "--network", KUBE_NETWORK, "--cap-add", "SYS_ADMIN", SLURM_HOST_IMAGE]);
    assert.equal(r.code, 0, `starting the external Slurm host: ${r.err}`);
    await until(`${this.name}'s 'ready'`, 120, async () => {
      const logs = await podman(["logs", this.name]);
      if ((await podman(["container", "inspect", "--format", "{{.State.Running}}", this.name])).out.trim() !== "true") {
        throw new Error(`the external Slurm host stopped:\n${logs.out}${logs.err}`);
      }
      return /start-slurm: ready/.test(logs.out + logs.err) ? true : undefined;
    });
  }

  /**
   * What a site does and hands over: the `<USER>.<PROJECT>` accounts, a client key pair whose
   * public half jupyterspawner accepts, ssh_known_hosts with the host's own key, and the
   * ConfigMap's sshHostname and hubConnectUrl (the kube network's gateway).
   */
  async provision(deployDir: string, accounts: readonly string[]): Promise<SiteSettings> {
    await this.addAccounts(accounts);
    const key = join(deployDir, "ssh_client_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-f", key, "-N", "", "-C", "JupyterHub-Slurm client key"]);
    await this.authorise(await readFile(`${key}.pub`, "utf8"));
    await writeFile(join(deployDir, "ssh_known_hosts"), `${this.name} ${await this.hostPublicKey()}\n`);
    return { sshHostname: this.name, hubConnectUrl: `http://${await this.gateway()}:${HUB_API_HOST_PORT}` };
  }

  /** This machine's address on the kube network: where user servers reach the published Hub API. */
  private async gateway(): Promise<string> {
    const r = await podman(["network", "inspect", "--format", "{{range .Subnets}}{{.Gateway}} {{end}}", KUBE_NETWORK]);
    const v4 = r.out.split(/\s+/).find((a) => /^[0-9.]+$/.test(a));
    assert.ok(v4, `${KUBE_NETWORK} has an IPv4 gateway: ${r.out}${r.err}`);
    return v4;
  }

  /**
   * The site's directory service: each `<USER>.<PROJECT>` account in group jupyterusers (which the
   * sudo policy names), with its home at /home/<PROJECT>/<USER>.<PROJECT>.
   */
  private async addAccounts(names: readonly string[]): Promise<void> {
    for (const name of names) {
      assert.match(name, /^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*$/, `account name ${name}`);
      const project = name.slice(name.indexOf(".") + 1);
      await sh(
        this.name,
        `mkdir -p /home/${project} && chmod 0755 /home/${project} && ` +
          `useradd --create-home --home-dir /home/${project}/${name} --shell /bin/bash --user-group --groups jupyterusers ${name}`,
      );
    }
  }

  /** Authorises the hub's client key for jupyterspawner, as an administrator would. */
  private async authorise(publicKey: string): Promise<void> {
    const r = await podman([
      "exec",
      this.name,
      "sh",
      "-c",
      'umask 077 && printf "%s\\n" "$1" > /home/jupyterspawner/.ssh/authorized_keys && chown jupyterspawner: /home/jupyterspawner/.ssh/authorized_keys',
      "sh",
      publicKey.trim(),
    ]);
    assert.equal(r.code, 0, `authorising the client key: ${r.err}`);
  }

  /** The host key sshd made for itself: what the site puts in ssh_known_hosts. */
  private async hostPublicKey(): Promise<string> {
    return (await this.sh("cat /etc/ssh/ssh_host_ed25519_key.pub")).trim();
  }

  sh(script: string): Promise<string> {
    return sh(this.name, script);
  }

  jobs(): ReturnType<typeof slurmJobs> {
    return slurmJobs(this.name);
  }

  /** The one job in the queue, which the hub's spawn made: running as `account` on this host. */
  async theJob(account: string): Promise<Job> {
    const jobs = await this.jobs();
    assert.equal(jobs.length, 1, `one job on the external host: ${JSON.stringify(jobs)}`);
    const job = jobs[0]!;
    assert.equal(job.state, "RUNNING");
    assert.equal(job.user, account, "the job runs as <USER>.<PROJECT>");
    assert.match(await this.sh(`scontrol show job -o ${job.id}`), new RegExp(`BatchHost=${this.name}(\\s|$)`), "on the external host");
    return job;
  }

  async assertRuns(job: Job, when: string): Promise<void> {
    assert.deepEqual((await this.jobs()).map((j) => [j.id, j.state]), [[job.id, "RUNNING"]], `the job runs on ${when}`);
  }

  /** Where the user server of `account`'s job calls the hub: JUPYTERHUB_API_URL in its processes' environment. */
  async hubApiUrlOfJob(account: string): Promise<string> {
    const out = await this.sh(
      `for p in $(pgrep -u ${account}); do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^JUPYTERHUB_API_URL=//p'; done | sort -u`,
    );
    return out.trim();
  }

  /**
   * sshd down for three poll intervals, then up again for one, through the image's sshd-control
   * (its watchdog lets a deliberate stop be): every poll in between fails to connect.
   */
  async sshdOutage(pollIntervalS: number): Promise<void> {
    await this.sh("sshd-control stop; for i in $(seq 1 20); do [ -e /run/sshd.pid ] || exit 0; sleep 0.5; done; exit 1");
    await new Promise((r) => setTimeout(r, (pollIntervalS * 3 + 2) * 1000));
    await this.sh("sshd-control start");
    await new Promise((r) => setTimeout(r, (pollIntervalS + 2) * 1000));
  }

  /**
   * The hub restarts with the user's server running (StackHarness.restartHub: alone in its pod,
   * through brics-env down and up): the hub finds the server again,
   * and after a poll the job still runs here and the server still answers (through `browser`'s origin).
   */
  async survivesHubRestart(h: StackHarness, browser: Browser, base: string, user: string, job: Job, pollIntervalS: number): Promise<void> {
    await h.timed("fault: hub restarted", () => h.restartHub(base, browser.origin));
    await until("the server after the hub restart", 60, () => serverStatus(browser, base, user));
    await new Promise((r) => setTimeout(r, (pollIntervalS + 2) * 1000));
    await this.assertRuns(job, "after the hub restart and a poll");
    assert.ok(await serverStatus(browser, base, user), "server reachable after the hub restart and a poll");
  }

  /** Stopping the server from the hub cancels its job here. */
  async stopFromHub(browser: Browser, base: string, user: string): Promise<void> {
    const stop = await browser.api("DELETE", `${base}hub/api/users/${user}/server`);
    assert.ok([202, 204].includes(stop.status), `stop accepted (got ${stop.status}: ${stop.body})`);
    await until("the job to leave the external host's queue", 90, async () => ((await this.jobs()).length === 0 ? true : undefined));
  }

  /** Removes the host now (the teardown does the same if the test does not get here). */
  async remove(): Promise<void> {
    await podman(["rm", "-f", "-v", "-t", "0", this.name]);
    if (this.createdNetwork) await podman(["network", "rm", KUBE_NETWORK]);
  }

  async exists(): Promise<boolean> {
    return (await podman(["container", "exists", this.name])).code === 0;
  }
}
