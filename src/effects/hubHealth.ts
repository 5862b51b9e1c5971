/** Waiting for JupyterHub to answer its health endpoint. */
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export function healthUrl(baseUrl: string, port = 8000, host = "127.0.0.1"): string {
  const base = `/${baseUrl.replace(/^\/+|\/+$/g, "")}/`.replace(/^\/\/$/, "/");
  return `http://${host}:${port}${base}hub/health`;
}

/** Between polls: short, so `up` returns as soon as the hub is ready (a refused connection costs next to nothing). */
const HEALTH_POLL_MS = 50;

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Called about every few seconds with the time waited and the last answer. */
  readonly onProgress?: (waitedMs: number, last: string) => void;
  /**
   * Checked every `abortCheckMs` (not between every poll: it may be a podman call, which costs
   * more than a poll); return a reason to give up early (e.g. the pod is gone).
   */
  readonly abortCheck?: () => Promise<string | undefined>;
  readonly abortCheckMs?: number;
}

/**
 * One GET of `url` (http): its status code. node:http, not fetch: fetch loads undici, and its
 * loading and per-request garbage took 60–90 ms of processor time from the hub while it started
 * (2-core machine), which made the hub answer later under `up` than when played alone.
 */
export function getStatus(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "TimeoutError" })));
    req.on("error", reject);
    req.end();
  });
}

export type WaitResult = { ok: true; waitedMs: number } | { ok: false; waitedMs: number; last: string; aborted?: string };

/** Polls `url` until it answers 200, the time is up, or abortCheck gives a reason. */
export async function waitForHealth(url: string, opts: WaitOptions): Promise<WaitResult> {
  const start = Date.now();
  const interval = opts.intervalMs ?? HEALTH_POLL_MS;
  const abortEvery = opts.abortCheckMs ?? 5000;
  let last = "no answer yet";
  let lastReport = 0;
  let lastAbortCheck = 0;
  for (;;) {
    const waited = Date.now() - start;
    try {
      const status = await getStatus(url, Math.max(1000, Math.min(5000, opts.timeoutMs - waited)));
      if (status === 200) return { ok: true, waitedMs: Date.now() - start };
      last = `HTTP ${status}`;
    } catch (err) {
      const e = err as Error & { code?: string };
      last = e.code ?? e.message;
    }
    const now = Date.now() - start;
    if (now >= opts.timeoutMs) return { ok: false, waitedMs: now, last };
    if (opts.abortCheck !== undefined && now - lastAbortCheck >= abortEvery) {
      lastAbortCheck = now;
      const reason = await opts.abortCheck();
      if (reason !== undefined) return { ok: false, waitedMs: now, last, aborted: reason };
    }
    if (now - lastReport >= 5000) {
      opts.onProgress?.(now, last);
      lastReport = now;
    }
    await sleep(Math.min(interval, Math.max(0, opts.timeoutMs - now)));
  }
}
