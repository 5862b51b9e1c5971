/**
 * The deploy-config schema: the one place that says which keys the deploy ConfigMap holds, the
 * env var each becomes in the containers, which environments use it, how it is validated and
 * how it is documented. The manifest, `check`, `init`, the examples and docs/deploy-config.md
 * are all derived from KEY_SPECS.
 */
import { isIP, isIPv4 } from "node:net";
import type { Environment } from "./environments.js";

export const DEPLOY_CONFIG_KEYS = [
  "logLevel",
  "baseUrl",
  "devUsers",
  "dummyAuthPassword",
  "sshHostname",
  "slurmSpawnerWrappersBin",
  "condaPrefixDir",
  "jupyterDataDir",
  "hubConnectUrl",
  "oidcServer",
  "bricsPlatform",
  "jwtAudience",
  "pollInterval",
  "startupPollInterval",
  "idleTimeout",
  "adminUsers",
  "concurrentSpawnLimit",
  "activeServerLimit",
  "announcement",
] as const;

export type DeployConfigKey = (typeof DEPLOY_CONFIG_KEYS)[number];

/**
 * How an environment treats a key:
 * - required: must be present; reaches the hub as an env var;
 * - optional: may be absent (the hub falls back to a default); reaches the hub when present;
 * - ignored:  accepted for compatibility with the spec's examples, but not passed to any
 *             container (a warning says so);
 * - unused:   the environment has no use for it (a warning says so).
 */
export type KeyUsage = "required" | "optional" | "ignored" | "unused";

/**
 * How the hub reads a value it is given (src/plan/hubSettings.ts tells it, brics_hub/settings.py
 * converts): text as it is, words split on spaces, seconds and count as a whole number, urlPath
 * with a missing leading or trailing '/' added (normaliseBaseUrl). Validation stays here.
 */
export type HubValueType = "text" | "words" | "seconds" | "count" | "urlPath";

export interface KeySpec {
  readonly key: DeployConfigKey;
  readonly envVar: string;
  /** One paragraph for users: what the value is for and where it ends up. */
  readonly description: string;
  /** A value that passes validation; used in examples and docs. */
  readonly example: string;
  /** The default the hub uses when an optional key is absent. */
  readonly defaultValue?: string;
  /** The rule in a few words, for error messages and docs. */
  readonly expected: string;
  /** Which environments use the key, in words, for docs. */
  readonly appliesTo: string;
  readonly usage: (env: Environment) => KeyUsage;
  /** How the hub converts the value; text when absent. */
  readonly hubType?: HubValueType;
  /** Also passed to the in-pod Slurm container (which creates the dev users from it). */
  readonly slurmContainer?: boolean;
  /** The key's rule: the reason a value is wrong, or undefined when it is fine. */
  readonly schema: ValueRule;
  /** Non-fatal remarks about an otherwise valid value. */
  readonly warnings?: (value: string) => string[];
}

// ---------------------------------------------------------------------------------------------
// Value checks. Each returns the reason a value is wrong, or undefined. Values reach shell
// commands (over ssh) and Python configuration, so the allowed alphabets are deliberately narrow.

type Check = (value: string) => string | undefined;

/** Applies to every key: a value is one line of printable text, not left as a template placeholder. */
const noControlCharacters: Check = (v) => {
  if (/[\r\n]/.test(v)) return "contains a line break";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) return "contains a control character";
  return undefined;
};

const notPlaceholder: Check = (v) =>
  /^<.*>$/.test(v.trim()) ? "is still the placeholder written by `brics-env init`; replace it" : undefined;

const notEmpty: Check = (v) => (v.length === 0 ? "is empty" : undefined);

function describeBadCharacters(v: string, allowed: RegExp): string | undefined {
  const bad = [...new Set([...v].filter((c) => !allowed.test(c)))];
  if (bad.length === 0) return undefined;
  return `contains ${bad.map((c) => (c === " " ? "a space" : JSON.stringify(c))).join(", ")}, which ${
    bad.length === 1 ? "is" : "are"
  } not allowed`;
}

const PYTHON_LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;

const logLevelCheck: Check = (v) =>
  (PYTHON_LOG_LEVELS as readonly string[]).includes(v) ? undefined : "is not a Python logging level";

const URL_PATH_CHAR = /[A-Za-z0-9._~\-/]/;

/**
 * JupyterHub adds a missing leading or trailing '/' to its base_url, and upstream's example
 * ConfigMaps write "/jupyter": the same value, normalised as JupyterHub does.
 */
export function normaliseBaseUrl(v: string): string {
  return `${v.startsWith("/") ? "" : "/"}${v}${v.endsWith("/") ? "" : "/"}`;
}

const baseUrlCheck: Check = (raw) => {
  const v = normaliseBaseUrl(raw);
  if (v.includes("//")) return "contains an empty path segment ('//')";
  if (v.split("/").some((seg) => seg === "." || seg === "..")) return "contains a '.' or '..' segment";
  return describeBadCharacters(v, URL_PATH_CHAR);
};

/**
 * The Unix account a job runs as, <USER>.<PROJECT>: devUsers names in the ConfigMap, and the hub
 * applies the same rule (through hubSettings.ts) to the names the identity token's projects claim
 * gives, before any reaches a shell. FACTS: lower case and starting with a letter, or spawning
 * fails; at most 32 characters, useradd's limit.
 */
export const ACCOUNT_NAME = {
  pattern: /^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*$/,
  maxLength: 32,
  description:
    "an account name <USER>.<PROJECT> (each part of lower-case letters, digits, _ and -, starting with a letter; at most 32 characters)",
} as const;
const DEV_USER = ACCOUNT_NAME.pattern;
const MAX_UNIX_USERNAME = ACCOUNT_NAME.maxLength;

/**
 * Space-separated names, each matching `valid` (else it is "not <notA>") and at most `maxLength`
 * characters long; no duplicates. An empty value passes (a key's schema decides whether it may be empty).
 */
function nameListCheck(valid: RegExp, notA: string, maxLength?: { chars: number; why: string }): Check {
  return (v) => {
    if (v === "") return undefined;
    if (v.trim() !== v) return "has leading or trailing white space";
    if (/\s\s|\t/.test(v)) return "must be separated by single spaces";
    const names = v.split(" ");
    const bad = names.filter((n) => !valid.test(n));
    if (bad.length > 0) return `${bad.map((n) => JSON.stringify(n)).join(", ")} ${bad.length === 1 ? "is" : "are"} not ${notA}`;
    if (maxLength !== undefined) {
      const long = names.filter((n) => n.length > maxLength.chars);
      if (long.length > 0) return `${long.map((n) => JSON.stringify(n)).join(", ")} longer than ${maxLength.chars} characters (${maxLength.why})`;
    }
    const dups = names.filter((n, i) => names.indexOf(n) !== i);
    if (dups.length > 0) return `lists ${[...new Set(dups)].map((n) => JSON.stringify(n)).join(", ")} more than once`;
    return undefined;
  };
}

const devUsersCheck = nameListCheck(DEV_USER, "of the form <USER>.<PROJECT>", { chars: MAX_UNIX_USERNAME, why: "a Unix user name limit" });

const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function isDnsHostName(v: string): boolean {
  if (v.length === 0 || v.length > 253) return false;
  const labels = v.split(".");
  // A trailing dot (fully qualified) is valid DNS, but ssh and known_hosts treat it as a
  // different name, so it is refused to keep matching against ssh_known_hosts simple.
  return labels.every((l) => HOST_LABEL.test(l)) && !/^[0-9.]+$/.test(v);
}

/**
 * 4 or 6 for an IP address, else 0, as node's isIP; a value without ':' cannot be IPv6, and is
 * not given to node's IPv6 expression, whose first use costs a `check` several milliseconds.
 */
export function ipVersion(v: string): number {
  if (v.includes(":")) return isIP(v);
  return isIPv4(v) ? 4 : 0;
}

const sshHostnameCheck: Check = (v) => {
  if (ipVersion(v) !== 0) return undefined;
  if (isDnsHostName(v)) return undefined;
  const chars = describeBadCharacters(v, /[A-Za-z0-9.-]/);
  return chars ?? "is neither a DNS host name (RFC 1123) nor an IPv4/IPv6 address";
};

const PATH_CHAR = /[A-Za-z0-9._/+-]/;

const absolutePathCheck: Check = (v) => {
  if (!v.startsWith("/")) return "is not an absolute path";
  const chars = describeBadCharacters(v, PATH_CHAR);
  if (chars !== undefined) return chars;
  if (v.split("/").includes("..")) return "contains a '..' segment";
  return undefined;
};

/** Characters a URL may keep here: no white space, quotes, shell metacharacters or '@' (credentials). */
const URL_CHAR = /[A-Za-z0-9._~:/\-[\]%+=,]/;

function httpUrlCheck(allowPath: boolean): Check {
  return (v) => {
    const chars = describeBadCharacters(v, URL_CHAR);
    if (chars !== undefined) return chars;
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      return "is not a URL";
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return "must use http:// or https://";
    if (url.username !== "" || url.password !== "") return "must not contain credentials";
    if (url.hostname === "") return "has no host";
    if (!allowPath && url.pathname !== "/") return "must not have a path";
    return undefined;
  };
}

const TOKEN_CHAR = /[A-Za-z0-9._:/-]/;

const tokenCheck: Check = (v) => describeBadCharacters(v, TOKEN_CHAR);

const positiveSecondsCheck: Check = (v) =>
  /^[1-9][0-9]{0,5}$/.test(v) ? undefined : "is not a positive whole number of seconds";

const secondsOrOffCheck: Check = (v) =>
  /^(?:0|[1-9][0-9]{0,6})$/.test(v) ? undefined : "is not a whole number of seconds (0 turns it off)";

const countCheck: Check = (v) => (/^(?:0|[1-9][0-9]{0,5})$/.test(v) ? undefined : "is not a whole number (0 for no limit)");

/** A JupyterHub user name as the authenticators make them: the <USER> part of devUsers' <USER>.<PROJECT>. */
const HUB_USER = /^[a-z][a-z0-9_-]*$/;

const adminUsersCheck = nameListCheck(HUB_USER, "a hub user name (the <USER> part of <USER>.<PROJECT>)");

const MAX_ANNOUNCEMENT = 500;

const announcementLength: Check = (v) =>
  v.length > MAX_ANNOUNCEMENT ? `is ${v.length} characters long; keep it to ${MAX_ANNOUNCEMENT}` : undefined;

const MIN_PASSWORD_LENGTH = 16;

/** The example shown in this repository's README, docs/deploy-config.md and examples/. */
const DUMMY_PASSWORD_EXAMPLE = "Wq3v9fXbQm2LrT7kPz1sHa8dNc4YeJ6u";
/** What upstream's example ConfigMaps set, which operators migrating from the upstream scripts may still have. */
const UPSTREAM_EXAMPLE_PASSWORD = "MyVerySecurePassword";

/** Anyone can read a password copied from the documentation; nobody can log in with white space. */
const dummyPasswordCheck: Check = (v) => {
  if (v.trim() === "") return "is only white space";
  if (v.trim() === DUMMY_PASSWORD_EXAMPLE) {
    return "is the example value of this repository's documentation and examples, which anyone can read; use a random one (`openssl rand -base64 36`)";
  }
  return undefined;
};

/** A value's rule: whatever the YAML parser produced in, the first reason it is wrong (or undefined) out. */
export type ValueRule = (value: unknown) => string | undefined;

/** A string passing `common`, then the key's own checks; the first failure wins. */
function stringRule(common: readonly Check[], checks: readonly Check[]): ValueRule {
  return (value) => {
    if (typeof value !== "string") return "must be a string (quote the value in YAML)";
    for (const check of [...common, ...checks]) {
      const problem = check(value);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

/** Every value is a string passing the common checks, then the key's own checks, first failure wins. */
function schemaOf(...checks: Check[]): ValueRule {
  return stringRule([noControlCharacters, notPlaceholder, notEmpty], checks);
}

/** For an optional list where "" means none. */
function schemaAllowingEmpty(...checks: Check[]): ValueRule {
  return stringRule([noControlCharacters, notPlaceholder], checks);
}

/**
 * Free text shown to people (HTML-escaped by the hub, never in a shell): one line, nothing
 * else asked of it; "<…>" is a fine thing to write there, so not taken for init's placeholder.
 */
function freeTextSchema(...checks: Check[]): ValueRule {
  return stringRule([noControlCharacters], checks);
}

// ---------------------------------------------------------------------------------------------
// Which environments use which key (spec's table, expressed on the environment axes).

const everywhere = (): KeyUsage => "required";
const devOnly = (env: Environment): KeyUsage => (env.stage === "dev" ? "required" : "unused");
const dummyOnly = (env: Environment): KeyUsage => (env.auth === "dummy" ? "required" : "unused");
const jwtOnly = (env: Environment): KeyUsage => (env.auth === "jwt" ? "required" : "ignored");
const optionalEverywhere = (): KeyUsage => "optional";

const JWT_APPLIES = "all; required with JWT authentication, ignored by dummy-authentication environments";

export const KEY_SPECS: readonly KeySpec[] = [
  {
    key: "logLevel",
    envVar: "DEPLOY_CONFIG_LOG_LEVEL",
    description:
      "Log level of JupyterHub, one of the level names of Python's logging module. DEBUG is " +
      "useful while setting up an environment, but writes secrets to the hub's log (users' identity " +
      "tokens, and the commands that carry Hub API tokens); INFO suits normal operation.",
    example: "INFO",
    defaultValue: "INFO",
    expected: `one of ${PYTHON_LOG_LEVELS.join(", ")} (upper case)`,
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    schema: schemaOf(logLevelCheck),
    warnings: (v) =>
      v === "DEBUG"
        ? [
            "is DEBUG: the hub's log will hold secrets (bricsauthenticator logs each raw identity token (JWT), " +
              "batchspawner the commands that carry Hub API tokens), so anyone who can read the log can act as " +
              "those users; set INFO once the environment works",
          ]
        : [],
  },
  {
    key: "baseUrl",
    envVar: "DEPLOY_CONFIG_BASE_URL",
    description:
      "Path prefix of every JupyterHub URL, for a hub served below the root of its host " +
      "(for example behind a Zenith tunnel shared with other services). Use / to serve at the root.",
    example: "/jupyter/",
    expected: "a URL path of letters, digits and . _ ~ - (a missing leading or trailing '/' is added, as JupyterHub does)",
    appliesTo: "all",
    usage: everywhere,
    hubType: "urlPath",
    schema: schemaOf(baseUrlCheck),
  },
  {
    key: "devUsers",
    envVar: "DEPLOY_CONFIG_DEV_USERS",
    description:
      "Space-separated Unix user names of the form <USER>.<PROJECT>, where <USER> stands for the " +
      "short_name claim of the identity token and <PROJECT> for a key of its projects claim. The " +
      "in-pod Slurm container creates these users; the dummy authenticator logs in as the first " +
      "<USER> and gives it every project listed for it.",
    example: "alice.proj1 alice.proj2 bob.proj1",
    expected:
      "space-separated <USER>.<PROJECT> names; each part of lower-case letters, digits, _ and -, " +
      `starting with a letter; each name at most ${MAX_UNIX_USERNAME} characters; no duplicates`,
    appliesTo: "dev environments (all but prod)",
    usage: devOnly,
    hubType: "words",
    slurmContainer: true,
    schema: schemaOf(devUsersCheck),
  },
  {
    key: "dummyAuthPassword",
    envVar: "DEPLOY_CONFIG_DUMMYAUTH_PASSWORD",
    description:
      "Shared password of the login form of the dummy authenticator. Anyone who can reach the " +
      "hub's port and knows it is logged in as the first dev user, so use a long random value " +
      "(for example the output of `openssl rand -base64 36`).",
    example: DUMMY_PASSWORD_EXAMPLE,
    expected:
      "a non-empty single line, preferably at least 16 random characters; not this example, which `check` refuses " +
      "because anyone can read it (`brics-env init` writes a random one)",
    appliesTo: "dummy-authentication environments (dev_dummyauth, dev_dummyauth_extslurm)",
    usage: dummyOnly,
    schema: schemaOf(dummyPasswordCheck),
    warnings: (v) => [
      ...(v.length < MIN_PASSWORD_LENGTH ? [`is only ${v.length} characters long; use at least ${MIN_PASSWORD_LENGTH} random characters`] : []),
      ...(v.trim() === UPSTREAM_EXAMPLE_PASSWORD ? ["is the password of the upstream scripts' example ConfigMaps, which anyone can read; use a random one"] : []),
    ],
  },
  {
    key: "sshHostname",
    envVar: "DEPLOY_CONFIG_SSH_HOSTNAME",
    description:
      "Host that JupyterHub reaches over SSH, as the jupyterspawner service account, to run the " +
      "slurmspawner_wrappers scripts. localhost for the Slurm container in the pod; the Slurm " +
      "login host otherwise. It must appear in the ssh_known_hosts file of external-Slurm environments.",
    example: "localhost",
    expected: "a DNS host name (RFC 1123) or an IPv4/IPv6 address",
    appliesTo: "all",
    usage: everywhere,
    schema: schemaOf(sshHostnameCheck),
  },
  {
    key: "slurmSpawnerWrappersBin",
    envVar: "DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN",
    description:
      "Directory on the SSH host holding the slurmspawner_sbatch, slurmspawner_squeue and " +
      "slurmspawner_scancel scripts (typically the bin directory of a Python venv).",
    example: "/opt/jupyter/slurmspawner_wrappers/bin",
    expected: "an absolute path of letters, digits and . _ / + -, without '..'",
    appliesTo: "all",
    usage: everywhere,
    schema: schemaOf(absolutePathCheck),
  },
  {
    key: "condaPrefixDir",
    envVar: "DEPLOY_CONFIG_CONDA_PREFIX_DIR",
    description:
      "Prefix of the Conda installation that holds the Jupyter user environment on the Slurm " +
      "nodes (the value of CONDA_PREFIX with the base environment active). Spawned jobs use it " +
      "to start jupyterhub-singleuser.",
    example: "/opt/jupyter/miniforge3",
    expected: "an absolute path of letters, digits and . _ / + -, without '..'",
    appliesTo: "all",
    usage: everywhere,
    schema: schemaOf(absolutePathCheck),
  },
  {
    key: "jupyterDataDir",
    envVar: "DEPLOY_CONFIG_JUPYTER_DATA_DIR",
    description:
      "Jupyter data directory on the Slurm nodes, put first in JUPYTER_PATH of spawned user " +
      "servers; a place to offer kernelspecs to every user.",
    example: "/opt/jupyter/jupyter_data",
    expected: "an absolute path of letters, digits and . _ / + -, without '..'",
    appliesTo: "all",
    usage: everywhere,
    schema: schemaOf(absolutePathCheck),
  },
  {
    key: "hubConnectUrl",
    envVar: "DEPLOY_CONFIG_HUB_CONNECT_URL",
    description:
      "URL at which user servers reach the Hub API (port 8081 of the hub container). " +
      "http://127.0.0.1:8081 when Slurm runs in the pod (the hub listens on the pod's loopback only). " +
      "With external Slurm, the compute nodes must reach it: brics-env publishes port 8081 on the " +
      "host at this URL's address and port, and nowhere else; a host name must resolve here " +
      "(DNS or /etc/hosts), or `manifest` refuses it.",
    example: "http://127.0.0.1:8081",
    expected: "an http:// or https:// URL without credentials, path, white space or quotes",
    appliesTo: "all",
    usage: everywhere,
    schema: schemaOf(httpUrlCheck(false)),
  },
  {
    key: "oidcServer",
    envVar: "DEPLOY_CONFIG_OIDC_SERVER",
    description:
      "URL of the OpenID Connect issuer whose identity tokens BricsAuthenticator accepts (the " +
      "iss claim); its signing keys are fetched from there.",
    example: "https://keycloak.example.org/realms/brics",
    expected: "an http:// or https:// URL without credentials, white space or quotes",
    appliesTo: JWT_APPLIES,
    usage: jwtOnly,
    schema: schemaOf(httpUrlCheck(true)),
  },
  {
    key: "bricsPlatform",
    envVar: "DEPLOY_CONFIG_BRICS_PLATFORM",
    description:
      "Name of the BriCS platform as it appears in the projects claim of identity tokens; only " +
      "projects with access to this platform can spawn servers.",
    example: "brics.aip1.notebooks.shared",
    expected: "letters, digits and . _ : / -",
    appliesTo: JWT_APPLIES,
    usage: jwtOnly,
    schema: schemaOf(tokenCheck),
  },
  {
    key: "jwtAudience",
    envVar: "DEPLOY_CONFIG_JWT_AUDIENCE",
    description: "Audience that identity tokens must be issued for (the aud claim).",
    example: "zenith-jupyter",
    expected: "letters, digits and . _ : / -",
    appliesTo: JWT_APPLIES,
    usage: jwtOnly,
    schema: schemaOf(tokenCheck),
  },
  {
    key: "pollInterval",
    envVar: "DEPLOY_CONFIG_POLL_INTERVAL",
    description:
      "Seconds between checks, by the spawner, that a running user server's Slurm job is still " +
      "alive. Optional; shorter values suit tests, longer ones spare the Slurm controller.",
    example: "60",
    defaultValue: "60",
    expected: "a positive whole number of seconds, as a quoted string",
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    hubType: "seconds",
    schema: schemaOf(positiveSecondsCheck),
  },
  {
    key: "startupPollInterval",
    envVar: "DEPLOY_CONFIG_STARTUP_POLL_INTERVAL",
    description:
      "Seconds between checks, by the spawner, whether a submitted Slurm job has started. " +
      "Optional; shorter values make spawning feel faster.",
    example: "15",
    defaultValue: "15",
    expected: "a positive whole number of seconds, as a quoted string",
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    hubType: "seconds",
    schema: schemaOf(positiveSecondsCheck),
  },
  {
    key: "idleTimeout",
    envVar: "DEPLOY_CONFIG_IDLE_TIMEOUT",
    description:
      "Seconds without activity after which a user's server shuts itself down, so that its Slurm " +
      "job ends and the allocation (GPUs included) is freed before its walltime: kernels idle for " +
      "that long are shut down (also when a browser tab is still connected to them; a kernel that " +
      "is running code is not idle), and the server stops once it has no kernels and has seen no " +
      "request for that long. It is jupyter-server's own inactivity shutdown, checked about once a " +
      "minute; the hub then shows the server as stopped. 0 turns it off.",
    example: "3600",
    defaultValue: "3600",
    expected: "a whole number of seconds, 0 to turn it off, as a quoted string",
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    hubType: "seconds",
    schema: schemaOf(secondsOrOffCheck),
  },
  {
    key: "adminUsers",
    envVar: "DEPLOY_CONFIG_ADMIN_USERS",
    description:
      "Space-separated hub user names given JupyterHub's admin panel (/hub/admin: see every user " +
      "and server, stop servers). A hub user name is the <USER> part of <USER>.<PROJECT> (the " +
      "short_name claim of the identity token; in dummy-authentication environments the first " +
      "devUsers user). Empty: no admins.",
    example: "alice",
    defaultValue: "",
    expected: "space-separated user names of lower-case letters, digits, _ and -, starting with a letter; no duplicates; or empty",
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    hubType: "words",
    schema: schemaAllowingEmpty(adminUsersCheck),
  },
  {
    key: "concurrentSpawnLimit",
    envVar: "DEPLOY_CONFIG_CONCURRENT_SPAWN_LIMIT",
    description:
      "How many servers may be starting at once (each start is a job submission over SSH and a " +
      "wait for the job); further start requests are refused with a message to try again. 0 for " +
      "no limit.",
    example: "100",
    defaultValue: "100",
    expected: "a whole number, 0 for no limit, as a quoted string",
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    hubType: "count",
    schema: schemaOf(countCheck),
  },
  {
    key: "activeServerLimit",
    envVar: "DEPLOY_CONFIG_ACTIVE_SERVER_LIMIT",
    description:
      "How many user servers may be running or starting at once, across all users; a start " +
      "request beyond it is refused with a message to try again later. 0 for no limit.",
    example: "0",
    defaultValue: "0",
    expected: "a whole number, 0 for no limit, as a quoted string",
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    hubType: "count",
    schema: schemaOf(countCheck),
  },
  {
    key: "announcement",
    envVar: "DEPLOY_CONFIG_ANNOUNCEMENT",
    description:
      "A short text shown at the top of every hub page (login, home, spawn, token, admin), for " +
      "maintenance notices and the like. Shown as plain text: HTML in it is escaped, not " +
      "interpreted. Empty: no announcement.",
    example: "Maintenance on Friday 18:00-20:00: save your work before then.",
    defaultValue: "",
    expected: `one line of text, at most ${MAX_ANNOUNCEMENT} characters, or empty`,
    appliesTo: "all (optional)",
    usage: optionalEverywhere,
    schema: freeTextSchema(announcementLength),
  },
];

export function keySpec(key: DeployConfigKey): KeySpec {
  const spec = KEY_SPECS.find((s) => s.key === key);
  if (spec === undefined) throw new Error(`no deploy-config key ${key}`);
  return spec;
}

export function isDeployConfigKey(key: string): key is DeployConfigKey {
  return (DEPLOY_CONFIG_KEYS as readonly string[]).includes(key);
}

/** Keys that reach the environment's containers (required and optional ones), in schema order. */
export function keysUsedBy(env: Environment): KeySpec[] {
  return KEY_SPECS.filter((s) => {
    const u = s.usage(env);
    return u === "required" || u === "optional";
  });
}

export interface ValueIssue {
  readonly severity: "error" | "warning";
  readonly message: string;
}

/** Checks one value against its key's rules. `value` is whatever the YAML parser produced. */
export function checkValue(key: DeployConfigKey, value: unknown): ValueIssue[] {
  const spec = keySpec(key);
  if (typeof value === "number" || typeof value === "boolean") {
    return [
      {
        severity: "error",
        message: `is a YAML ${typeof value}, but ConfigMap values must be strings: quote it ("${String(value)}")`,
      },
    ];
  }
  if (value === null || value === undefined) {
    return [{ severity: "error", message: "has no value" }];
  }
  if (typeof value !== "string") {
    return [{ severity: "error", message: "must be a single string, not a list or a mapping" }];
  }
  const problem = spec.schema(value);
  if (problem !== undefined) return [{ severity: "error", message: problem }];
  return (spec.warnings?.(value) ?? []).map((message) => ({ severity: "warning" as const, message }));
}

/**
 * Values that are fixed by the Slurm container in the pod (where brics_slurm installs the
 * wrappers and the user environment, and how the hub reaches it). `init` writes them and
 * `check` warns when an in-pod environment departs from them.
 */
export const IN_POD_SLURM_VALUES: Readonly<Partial<Record<DeployConfigKey, string>>> = {
  sshHostname: "localhost",
  slurmSpawnerWrappersBin: "/opt/jupyter/slurmspawner_wrappers/bin",
  condaPrefixDir: "/opt/jupyter/miniforge3",
  jupyterDataDir: "/opt/jupyter/jupyter_data",
  hubConnectUrl: "http://127.0.0.1:8081",
};

/** Host names under which the in-pod Slurm container's host key is trusted (FACTS: localhost_known_hosts). */
export const LOCALHOST_NAMES = ["localhost", "127.0.0.1", "::1"] as const;
