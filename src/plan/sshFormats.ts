/**
 * Pure readers for the OpenSSH text formats found in a deploy directory: public keys, private
 * keys and known_hosts files. Enough to tell a user, before anything runs, that a file is not
 * what ssh will expect; ssh itself stays the judge at run time.
 */
import { createRequire } from "node:module";

export const PUBLIC_KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
  "ssh-dss",
] as const;

export interface PublicKey {
  readonly type: string;
  /** The base64 key blob, as written. */
  readonly blob: string;
  readonly comment: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Reads an SSH wire-format string (uint32 length + bytes) at `offset`. */
function readString(buf: Buffer, offset: number): { bytes: Buffer; next: number } | undefined {
  if (offset + 4 > buf.length) return undefined;
  const len = buf.readUInt32BE(offset);
  const end = offset + 4 + len;
  if (end > buf.length) return undefined;
  return { bytes: buf.subarray(offset + 4, end), next: end };
}

/** Checks that a base64 key blob decodes and names `type` as its first field. */
function blobProblem(type: string, blob: string): string | undefined {
  if (!BASE64.test(blob)) return "the key data is not base64";
  const inner = readString(Buffer.from(blob, "base64"), 0);
  if (inner === undefined) return "the key data is truncated";
  const innerType = inner.bytes.toString("latin1");
  if (innerType !== type) return `the key data is of type ${innerType}, but the line says ${type}`;
  return undefined;
}

/** Parses the fields `<type> <base64> [comment]` of a public key. */
function parsePublicKeyFields(fields: string[]): Parsed<PublicKey> {
  const [type, blob, ...rest] = fields;
  if (type === undefined || blob === undefined) return { ok: false, reason: "expected '<key type> <base64 key> [comment]'" };
  if (!(PUBLIC_KEY_TYPES as readonly string[]).includes(type)) {
    return { ok: false, reason: `unknown key type ${JSON.stringify(type)}` };
  }
  const problem = blobProblem(type, blob);
  if (problem !== undefined) return { ok: false, reason: problem };
  return { ok: true, value: { type, blob, comment: rest.join(" ") } };
}

/** Parses a `.pub` file: exactly one public key line. */
export function parsePublicKey(text: string): Parsed<PublicKey> {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length === 0) return { ok: false, reason: "the file is empty" };
  if (lines.length > 1) return { ok: false, reason: "the file holds more than one line; expected one public key" };
  if (lines[0]!.includes("PRIVATE KEY")) return { ok: false, reason: "this is a private key, not a public key" };
  return parsePublicKeyFields(lines[0]!.trim().split(/\s+/));
}

export interface PrivateKeyInfo {
  readonly format: "openssh" | "pem";
  readonly encrypted: boolean;
  /** The public key embedded in an OpenSSH-format private key (PEM keys do not carry one). */
  readonly publicKey?: { type: string; blob: string };
}

const OPENSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END = "-----END OPENSSH PRIVATE KEY-----";
const PEM_BEGIN = /^-----BEGIN (RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----$/;
const OPENSSH_MAGIC = "openssh-key-v1\0";

/** Recognises OpenSSH (and legacy PEM) private keys, and whether they need a passphrase. */
export function parsePrivateKey(text: string): Parsed<PrivateKeyInfo> {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  const first = lines[0];
  const last = lines[lines.length - 1];
  if (first === undefined) return { ok: false, reason: "the file is empty" };
  if (first === OPENSSH_BEGIN) {
    if (last !== OPENSSH_END) return { ok: false, reason: `the key does not end with ${OPENSSH_END}` };
    const body = lines.slice(1, -1).join("");
    if (!BASE64.test(body)) return { ok: false, reason: "the key body is not base64" };
    const buf = Buffer.from(body, "base64");
    if (buf.subarray(0, OPENSSH_MAGIC.length).toString("latin1") !== OPENSSH_MAGIC) {
      return { ok: false, reason: "the key body does not start with the openssh-key-v1 header" };
    }
    const cipher = readString(buf, OPENSSH_MAGIC.length);
    const kdf = cipher && readString(buf, cipher.next);
    const kdfOptions = kdf && readString(buf, kdf.next);
    if (kdfOptions === undefined || kdfOptions.next + 4 > buf.length) return { ok: false, reason: "the key is truncated" };
    const count = buf.readUInt32BE(kdfOptions.next);
    if (count !== 1) return { ok: false, reason: `the file holds ${count} keys; expected one` };
    const pub = readString(buf, kdfOptions.next + 4);
    if (pub === undefined) return { ok: false, reason: "the key is truncated" };
    const type = readString(pub.bytes, 0);
    if (type === undefined) return { ok: false, reason: "the embedded public key is malformed" };
    return {
      ok: true,
      value: {
        format: "openssh",
        encrypted: cipher!.bytes.toString("latin1") !== "none",
        publicKey: { type: type.bytes.toString("latin1"), blob: pub.bytes.toString("base64") },
      },
    };
  }
  const pem = PEM_BEGIN.exec(first);
  if (pem !== null) {
    const encrypted = pem[1] === "ENCRYPTED " || lines.some((l) => /^Proc-Type:\s*4,ENCRYPTED/.test(l));
    if (!/^-----END .*PRIVATE KEY-----$/.test(last ?? "")) return { ok: false, reason: "the key has no END line" };
    return { ok: true, value: { format: "pem", encrypted } };
  }
  if (/^(ssh-|ecdsa-|sk-)/.test(first)) return { ok: false, reason: "this is a public key, not a private key" };
  return { ok: false, reason: `expected a private key starting with ${OPENSSH_BEGIN}` };
}

/** Reads a public key as printed by `ssh-keygen -y` (no comment, maybe a trailing newline). */
export function sameKey(a: { type: string; blob: string }, b: { type: string; blob: string }): boolean {
  return a.type === b.type && Buffer.from(a.blob, "base64").equals(Buffer.from(b.blob, "base64"));
}

// ---------------------------------------------------------------------------------------------
// known_hosts (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT")

export interface KnownHostsEntry {
  readonly line: number;
  readonly marker?: "@cert-authority" | "@revoked";
  readonly patterns: string;
  readonly key: PublicKey;
}

export interface KnownHostsParse {
  readonly entries: KnownHostsEntry[];
  readonly problems: Array<{ line: number; reason: string }>;
}

export function parseKnownHosts(text: string): KnownHostsParse {
  const entries: KnownHostsEntry[] = [];
  const problems: Array<{ line: number; reason: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostsEntry["marker"];
    if (fields[0]!.startsWith("@")) {
      const m = fields.shift()!;
      if (m !== "@cert-authority" && m !== "@revoked") {
        problems.push({ line, reason: `unknown marker ${JSON.stringify(m)}` });
        return;
      }
      marker = m;
    }
    const patterns = fields.shift();
    if (patterns === undefined || fields.length < 2) {
      problems.push({ line, reason: "expected '<host patterns> <key type> <base64 key> [comment]'" });
      return;
    }
    const key = parsePublicKeyFields(fields);
    if (!key.ok) {
      problems.push({ line, reason: key.reason });
      return;
    }
    entries.push({ line, ...(marker !== undefined ? { marker } : {}), patterns, key: key.value });
  });
  return { entries, problems };
}

/** Counts character comparisons, for tests that show the matcher's work stays bounded. */
export interface MatchSteps {
  count: number;
}

/** Whether `segment` (literal characters and `?`) matches `name` at `at`, character by character. */
function segmentMatchesAt(segment: string, name: string, at: number, steps: MatchSteps): boolean {
  for (let i = 0; i < segment.length; i++) {
    steps.count++;
    const c = segment[i];
    if (c !== "?" && c !== name[at + i]) return false;
  }
  return true;
}

/**
 * ssh's `*` (any run of characters) and `?` (one character) over the whole name. Never a
 * regular expression: one built from `*a*a*…` backtracks exponentially. Split at the stars, the
 * first piece must start the name and the last end it; each piece between them is matched at the
 * leftmost place it fits after the previous one, which is never worse than a later place (what
 * follows a star can always skip more). A pattern needing more characters than the name has is
 * refused from its length alone, so the comparisons never exceed name length² plus the pieces.
 */
export function wildcardMatch(pattern: string, name: string, steps: MatchSteps = { count: 0 }): boolean {
  const pieces = pattern.split("*");
  if (pieces.length === 1) return pattern.length === name.length && segmentMatchesAt(pattern, name, 0, steps);
  let needed = 0;
  for (const piece of pieces) needed += piece.length;
  if (needed > name.length) return false;
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const end = name.length - last.length;
  if (!segmentMatchesAt(first, name, 0, steps) || !segmentMatchesAt(last, name, end, steps)) return false;
  let pos = first.length;
  for (const piece of pieces.slice(1, -1)) {
    if (piece === "") continue;
    let at = pos;
    while (at + piece.length <= end && !segmentMatchesAt(piece, name, at, steps)) at++;
    if (at + piece.length > end) return false;
    pos = at + piece.length;
  }
  return true;
}

function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split("|");
  // "|1|salt|hash" splits into ["", "1", salt, hash].
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2]!, "base64");
  // Loaded on first use: only hashed entries need it, and every `check` would pay for it.
  const { createHmac } = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");
  const digest = createHmac("sha1", salt).update(name).digest("base64");
  return digest === parts[3];
}

/** The name ssh looks up for a host and port: the bare host for port 22, `[host]:port` otherwise. */
function knownHostsName(host: string, port = 22): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}

/**
 * Whether a known_hosts host-pattern field matches `host` on `port`, as ssh decides it: any
 * negated pattern that matches rules the line out; otherwise one positive match is enough.
 */
export function patternsMatch(patterns: string, host: string, port = 22): boolean {
  const name = knownHostsName(host, port);
  if (patterns.startsWith("|")) return hashedMatch(patterns, name);
  let matched = false;
  for (const p of patterns.split(",")) {
    const negated = p.startsWith("!");
    const pat = (negated ? p.slice(1) : p).toLowerCase();
    if (wildcardMatch(pat, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** Ports the line names `host` with (`[host]:port`), to explain a near miss: ssh looks up port 22 as the bare name. */
export function bracketedPortsFor(patterns: string, host: string): number[] {
  const lower = host.toLowerCase();
  const ports: number[] = [];
  for (const p of patterns.split(",")) {
    const m = /^\[(.*)\]:(\d+)$/.exec(p);
    if (m !== null && m[1]!.toLowerCase() === lower) ports.push(Number(m[2]));
  }
  return ports;
}
