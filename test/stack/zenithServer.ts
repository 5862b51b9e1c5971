/**
 * The Zenith server stand-in of the Zenith scenarios (test/fixtures/zenith_server): a container
 * of its own beside the pod, on podman's default network, so the pod's Zenith client reaches its
 * sshd at the container's address as it would reach a Zenith server. Remote forwards are
 * allocated from a narrow port range (the container's net.ipv4.ip_local_port_range) that is
 * published 1:1 on the host's loopback, so the test reaches the tunnel at 127.0.0.1:<allocated
 * port>, as Zenith's proxy reaches it at the sshd's address; nothing else is contacted.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { until, type StackHarness } from "./harness.js";
import { ISSUER_URL } from "./issuer.js";
import { podman } from "./podmanProbe.js";
import { BASES } from "../../src/plan/bootstrapBases.js";
import { ZENITH_CLIENT_IMAGE_VARIABLE } from "../../src/plan/images.js";
import { repoRoot } from "../../src/paths.js";

export const SERVER_IMAGE = "localhost/brics_test_zenith_server:standin";
export const CLIENT_IMAGE = "localhost/brics_test_zenith_client:standin";
/** A Zenith client image to test instead of the stand-in (e.g. one built from the real client). */
const CLIENT_IMAGE_VAR = "BRICS_ENV_TEST_ZENITH_CLIENT_IMAGE";
/**
 * Remote forwards get ports from here; Zenith's server takes only registered ports (< 49152). Below
 * Linux's default ephemeral range (32768–60999), so that no connection elsewhere on the host holds
 * one of them for a moment when the test checks they are free.
 */
const FIRST_PORT = 32000;
const PORTS = 8;

export interface Tunnel {
  readonly allocated_port: number;
  /** What the client sent in the handshake. */
  readonly config: Record<string, unknown>;
  /** SSH_CONNECTION of the session: client address and port, server address and port. */
  readonly ssh_connection: string;
  /** When the server had the configuration (Unix time, seconds). */
  readonly received_at: number;
}

/** Builds a stand-in image from test/fixtures/<dir> on the bootstrapped hub base. */
export async function buildFixtureImage(dir: "zenith_server" | "zenith_client", tag: string, baseImage: string): Promise<void> {
  const r = await podman(["build", "--build-arg", `BASE_IMAGE=${baseImage}`, "-t", tag, join(repoRoot(), "test", "fixtures", dir)], 20 * 60_000);
  assert.equal(r.code, 0, `podman build ${dir}:\n${r.out}\n${r.err}`);
}

/** podman's default network, which `podman kube play` puts the pod on. */
const NETWORK = "podman";

const toInt = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
const toIp = (n: number) => [24, 16, 8, 0].map((b) => Math.floor(n / 2 ** b) % 256).join(".");

/**
 * An IPv4 address near the top of the network, far from the ones podman hands out from the
 * bottom, and not held by any container.
 */
async function unusedAddressNearTop(): Promise<string> {
  const net = await podman(["network", "inspect", NETWORK]);
  assert.equal(net.code, 0, `podman network inspect ${NETWORK}: ${net.err}`);
  const subnets = ((JSON.parse(net.out) as Array<{ subnets?: Array<{ subnet: string }> }>)[0]?.subnets ?? []).map((s) => s.subnet);
  const v4 = subnets.find((s) => /^[0-9.]+\/[0-9]+$/.test(s));
  assert.ok(v4 !== undefined, `podman's network ${NETWORK} has no IPv4 subnet: ${subnets.join(", ")}`);
  const [address = "", bits = "32"] = v4.split("/");
  const size = 2 ** (32 - Number(bits));
  const first = toInt(address) - (toInt(address) % size);
  const ids = (await podman(["ps", "-a", "-q"])).out.split("\n").filter((l) => l.trim() !== "");
  const used = new Set(
    ids.length === 0 ? [] : (await podman(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", ...ids])).out.split(/\s+/),
  );
  for (let offset = size - 10; offset > size / 2; offset--) {
    const ip = toIp(first + offset);
    if (!used.has(ip)) return ip;
  }
  throw new Error(`no unused address near the top of ${v4}`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

export class ZenithServer {
  constructor(readonly name: string) {}

  /** Refuses when the container exists or a port of the range is taken: neither is this test's. */
  async preflight(): Promise<void> {
    const existing = await podman(["container", "exists", this.name]);
    assert.notEqual(existing.code, 0, `a container ${this.name} exists already and is not this test's; remove it (podman rm -f ${this.name}) and run again`);
    for (let p = FIRST_PORT; p < FIRST_PORT + PORTS; p++) {
      assert.ok(await portFree(p), `127.0.0.1:${p} is taken; the Zenith server stand-in publishes ${FIRST_PORT}-${FIRST_PORT + PORTS - 1} there`);
    }
  }

  /**
   * Starts the stand-in accepting `authorizedKey`; returns its address on podman's network. The
   * address is static: a restarted container would otherwise get a new one, and the client's
   * configuration names it.
   */
  async start(authorizedKey: string): Promise<string> {
    const last = FIRST_PORT + PORTS - 1;
    const ip = await unusedAddressNearTop();
    const r = await podman([
      "run",
      "-d",
      "--name",
      this.name,
      "--network",
      NETWORK,
      "--ip",
      ip,
      "--sysctl",
      `net.ipv4.ip_local_port_range=${FIRST_PORT} ${last}`,
      "-p",
      `127.0.0.1:${FIRST_PORT}-${last}:${FIRST_PORT}-${last}`,
      "-e",
      `ZENITH_STANDIN_AUTHORIZED_KEY=${authorizedKey.trim()}`,
      SERVER_IMAGE,
    ]);
    assert.equal(r.code, 0, `starting the Zenith server stand-in: ${r.err}`);
    return this.address();
  }

  async address(): Promise<string> {
    const r = await podman(["inspect", "--format", "{{.NetworkSettings.IPAddress}}", this.name]);
    const ip = r.out.trim();
    assert.match(ip, /^[0-9.]+$/, `the Zenith server stand-in's address: ${r.out}${r.err}`);
    return ip;
  }

  /** The tunnels the server holds now. */
  async tunnels(): Promise<Tunnel[]> {
    const r = await podman(["exec", this.name, "sh", "-c", 'for f in /var/lib/zenith-standin/tunnels/*.json; do [ -e "$f" ] && cat "$f" && echo; done; true']);
    return r.out
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as Tunnel);
  }

  /** The one tunnel the server holds once the client has connected (again: not `except`). */
  async tunnelUp(what: string, except?: Tunnel): Promise<Tunnel> {
    return until(what, 120, async () => {
      const fresh = (await this.tunnels()).filter((t) => except === undefined || t.ssh_connection !== except.ssh_connection);
      return fresh.length === 1 ? fresh[0] : undefined;
    });
  }

  async restart(): Promise<void> {
    const r = await podman(["restart", "-t", "2", this.name]);
    assert.equal(r.code, 0, `restarting the Zenith server stand-in: ${r.err}`);
  }

  async logs(): Promise<string> {
    const r = await podman(["logs", "--tail", "80", this.name]);
    return `----- Zenith server stand-in log -----\n${r.out}${r.err}\n`;
  }

  async remove(): Promise<void> {
    await podman(["rm", "-f", "-t", "0", this.name]);
  }

  async exists(): Promise<boolean> {
    return (await podman(["container", "exists", this.name])).code === 0;
  }
}

/** zenith_client_config.yaml for the stand-in server, with the OIDC settings of the test's issuer. */
export function zenithClientConfig(serverAddress: string, serverPort: number): string {
  // snake_case for the connection, camelCase for the OIDC settings: the client takes both.
  return [
    `server_address: ${serverAddress}`,
    `server_port: ${serverPort}`,
    `authOidcIssuer: ${ISSUER_URL}`,
    "authOidcClientId: jupyterhub",
    "authOidcClientSecret: stack-test-not-a-secret",
    "",
  ].join("\n");
}

/**
 * The Zenith side of a deploy directory, as a site gets it, played by the stand-ins: the client
 * image (the stand-in, or BRICS_ENV_TEST_ZENITH_CLIENT_IMAGE) through the product's override, a key
 * pair registered with the server (here: authorised by the stand-in, started now, removed at
 * teardown), and the client configuration pointing at the server. Needs the bootstrapped bases;
 * returns the server's address.
 */
export async function zenithDeployFiles(h: StackHarness, server: ZenithServer): Promise<string> {
  const w = h.workspace();
  const hubBase = BASES.find((b) => b.kind === "jupyterhub")!.image;
  const clientImage = process.env[CLIENT_IMAGE_VAR] || CLIENT_IMAGE;
  await h.timed("Zenith stand-in images", async () => {
    await buildFixtureImage("zenith_server", SERVER_IMAGE, hubBase);
    if (clientImage === CLIENT_IMAGE) await buildFixtureImage("zenith_client", CLIENT_IMAGE, hubBase);
  });
  w.env[ZENITH_CLIENT_IMAGE_VARIABLE] = clientImage;
  h.log(`Zenith client image: ${clientImage}${clientImage === CLIENT_IMAGE ? " (stand-in)" : ""}`);
  const keyPath = join(w.deployDir, "ssh_zenith_client_key");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "stack test Zenith client", "-f", keyPath]);
  h.atTeardown(["rm", "-f", "-t", "0", server.name]);
  const address = await server.start(await readFile(`${keyPath}.pub`, "utf8"));
  await writeFile(join(w.deployDir, "zenith_client_config.yaml"), zenithClientConfig(address, 22), { mode: 0o600 });
  return address;
}

/** When the container last started, in ms since the epoch. */
export async function startedAt(container: string): Promise<number> {
  const r = await podman(["inspect", "--format", "{{.State.StartedAt.UnixMilli}}", container]);
  return Number(r.out.trim());
}

export async function restartCount(container: string): Promise<number> {
  const r = await podman(["inspect", "--format", "{{.RestartCount}}", container]);
  return Number(r.out.trim());
}
