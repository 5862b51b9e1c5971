/**
 * A throw-away Python package index that wants a user name and password, for the image test that
 * follows credentials from BRICS_ENV_PIP_INDEX_URL to pip. It serves PEP 503 "simple" pages of
 * wheels made here from the workspace's packages, from a container on podman's default network: a
 * build's RUN steps have a network namespace of their own on that network, where the host's loopback
 * is out of reach but other containers are not. Nothing leaves the machine.
 */
import { createHash, randomBytes } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";

/** Answers 401 without the right Basic credentials; logs one line per request, with its status. */
const SERVER = `
import base64, http.server, os, sys
root = "/index"
expected = "Basic " + base64.b64encode(open("/auth/credentials", "rb").read().strip()).decode()
class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def send_head(self):
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return super().send_head()
    def log_request(self, code="-", size="-"):
        print(f"{code} {self.command} {self.path} auth={'yes' if self.headers.get('Authorization') else 'no'}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
`;

export interface PackageIndex {
  /** The index URL without credentials, e.g. http://10.88.0.7:8080/simple-x1y2/ */
  readonly url: string;
  /** Its host (an address on podman's default network). */
  readonly host: string;
  readonly login: string;
  readonly password: string;
  /** The server's request log so far. */
  requests(): Promise<string[]>;
  stop(): Promise<void>;
}

async function podman(args: string[]): Promise<string> {
  const r = await execa("podman", args, { reject: false, timeout: 10 * 60_000, stdin: "ignore", all: true });
  if (r.exitCode !== 0) throw new Error(`podman ${args.join(" ")} exited ${r.exitCode}\n${r.all ?? ""}`);
  return r.stdout;
}

/**
 * Wheels of the source trees (given as `dir -> SETUPTOOLS_SCM_PRETEND_VERSION` or undefined),
 * built offline in `image` (which has setuptools and setuptools-scm), into `out`.
 */
export async function buildWheels(image: string, trees: ReadonlyMap<string, string | undefined>, work: string): Promise<string[]> {
  const src = join(work, "wheel-src");
  const out = join(work, "wheels");
  mkdirSync(out, { recursive: true });
  const steps: string[] = ["set -eu"];
  for (const [tree, version] of trees) {
    const name = tree.split("/").pop()!;
    cpSync(tree, join(src, name), { recursive: true, filter: (p) => !p.endsWith("__pycache__") });
    const env = version === undefined ? "" : `SETUPTOOLS_SCM_PRETEND_VERSION=${version} `;
    steps.push(`cp -r /src/${name} /tmp/${name}`, `${env}python3 -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w /out /tmp/${name}`);
  }
  await podman(["run", "--rm", "--network=none", "-v", `${src}:/src:ro`, "-v", `${out}:/out`, "--entrypoint", "/bin/sh", image, "-c", steps.join("; ")]);
  return readdirSync(out).filter((f) => f.endsWith(".whl")).map((f) => join(out, f));
}

/** Starts the index on podman's default network, serving `wheels`, in a container of `image` (any with python3). */
export async function startPackageIndex(image: string, wheels: readonly string[], work: string): Promise<PackageIndex> {
  // A path of its own each time: the build's layer cache must never answer for an earlier index.
  const prefix = `simple-${randomBytes(4).toString("hex")}`;
  const root = join(work, "index");
  const auth = join(work, "index-auth");
  mkdirSync(join(root, "files"), { recursive: true });
  mkdirSync(auth, { recursive: true, mode: 0o700 });
  const projects = new Map<string, string[]>();
  for (const wheel of wheels) {
    const file = wheel.split("/").pop()!;
    const sha = createHash("sha256").update(readFileSync(wheel)).digest("hex");
    cpSync(wheel, join(root, "files", file));
    // PEP 503: the project's normalised name is the wheel's first field, lower case, runs of -_. as -.
    const project = file.split("-")[0]!.toLowerCase().replace(/[-_.]+/g, "-");
    projects.set(project, [...(projects.get(project) ?? []), `<a href="/files/${file}#sha256=${sha}">${file}</a><br>`]);
  }
  mkdirSync(join(root, prefix), { recursive: true });
  writeFileSync(join(root, prefix, "index.html"), [...projects.keys()].map((p) => `<a href="${p}/">${p}</a><br>`).join("\n"));
  for (const [project, links] of projects) {
    mkdirSync(join(root, prefix, project), { recursive: true });
    writeFileSync(join(root, prefix, project, "index.html"), `<!DOCTYPE html><html><body>\n${links.join("\n")}\n</body></html>\n`);
  }
  const login = "brics-ci";
  const password = `tok-${randomBytes(18).toString("hex")}`;
  writeFileSync(join(auth, "credentials"), `${login}:${password}`, { mode: 0o600 });
  writeFileSync(join(work, "index-server.py"), SERVER);

  const name = `brics-env-test-pipindex-${randomBytes(3).toString("hex")}`;
  await podman([
    "run", "-d", "--rm", "--name", name,
    "-v", `${root}:/index:ro`, "-v", `${auth}:/auth:ro`, "-v", `${join(work, "index-server.py")}:/server.py:ro`,
    "--entrypoint", "python3", image, "/server.py",
  ]);
  const stop = async () => {
    await execa("podman", ["rm", "-f", "-t", "0", name], { reject: false });
  };
  const requests = async () => (await podman(["logs", name])).split("\n").filter((l) => /^\d{3} /.test(l));
  let ip: string;
  try {
    ip = (await podman(["inspect", "--format", "{{.NetworkSettings.IPAddress}}", name])).trim();
    // Ready when it answers (401 without credentials), seen from a container on the same network.
    for (let i = 0; ; i++) {
      const probe = await execa("podman", ["run", "--rm", "--entrypoint", "python3", image, "-c",
        `import urllib.request, urllib.error\ntry: urllib.request.urlopen("http://${ip}:8080/${prefix}/")\nexcept urllib.error.HTTPError as e: print(e.code)`], { reject: false });
      if (probe.stdout.trim() === "401") break;
      if (i > 50) throw new Error(`the test index at ${ip} does not answer: ${probe.all ?? probe.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url: `http://${ip}:8080/${prefix}/`,
    host: ip,
    login,
    password,
    requests,
    stop,
  };
}

/**
 * `image` with pip told to trust `host` (/etc/pip.conf), tagged `tag`: pip ignores a plain-http index
 * on any host but loopback unless it is trusted, and a build step's loopback is its own. A site with
 * an http mirror does the same in its base image (BRICS_ENV_JUPYTERHUB_BASE_IMAGE).
 */
export async function baseTrustingIndex(image: string, host: string, tag: string, work: string): Promise<void> {
  const dir = join(work, "trusting-base");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Containerfile"), `FROM ${image}\nRUN printf '[global]\\ntrusted-host = %s\\n' '${host}' > /etc/pip.conf\n`);
  await podman(["build", "-t", tag, dir]);
}
