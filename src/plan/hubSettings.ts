/**
 * What the hub needs to know about its environment, the deploy-config keys it uses and the
 * services it registers (hubServices.ts), as the one line of JSON the manifest puts in the hub
 * container's BRICS_ENV_SETTINGS. The hub module
 * (volumes/jupyterhub_root/etc/jupyterhub/brics_hub/settings.py) reads each key's env var, falls
 * back to the default given here, converts by type and applies the result; it neither validates
 * nor defaults on its own, so KEY_SPECS stays the one owner of those facts.
 */
import { ACCOUNT_NAME, keysUsedBy, type HubValueType } from "./deployConfig.js";
import type { AuthMode, EnvName, Environment, Ingress, SlurmPlacement } from "./environments.js";
import { HUB_SERVICES, type HubService } from "./hubServices.js";

export const HUB_SETTINGS_VAR = "BRICS_ENV_SETTINGS";

export interface HubKey {
  /** The deploy ConfigMap key, which is also the name the hub module looks the value up by. */
  readonly key: string;
  readonly env: string;
  readonly type: HubValueType;
  readonly required: boolean;
  /** What the hub uses when an optional key is absent (KEY_SPECS' defaultValue). */
  readonly default?: string;
}

export interface HubSettingsData {
  readonly environment: EnvName;
  readonly auth: AuthMode;
  readonly slurm: SlurmPlacement;
  /** Where user traffic arrives (the hub binds its proxy to loopback behind Zenith). */
  readonly ingress: Ingress;
  /** The rule for the accounts jobs run as (a Python-compatible regular expression). */
  readonly accountName: { readonly pattern: string; readonly maxLength: number; readonly description: string };
  readonly keys: readonly HubKey[];
  /** JupyterHub services to register, each with its role's scopes and its token file (hubServices.ts). */
  readonly services: readonly HubService[];
}

export function hubSettingsData(env: Environment): HubSettingsData {
  return {
    environment: env.name,
    auth: env.auth,
    slurm: env.slurm,
    ingress: env.ingress,
    accountName: { pattern: ACCOUNT_NAME.pattern.source, maxLength: ACCOUNT_NAME.maxLength, description: ACCOUNT_NAME.description },
    keys: keysUsedBy(env).map((s) => ({
      key: s.key,
      env: s.envVar,
      type: s.hubType ?? "text",
      required: s.usage(env) === "required",
      ...(s.defaultValue !== undefined ? { default: s.defaultValue } : {}),
    })),
    services: HUB_SERVICES.map((s) => ({ name: s.name, scopes: [...s.scopes], tokenFile: s.tokenFile })),
  };
}

/** Compact, so that the env var stays one readable line in combined.yaml. */
export function hubSettingsJson(env: Environment): string {
  return JSON.stringify(hubSettingsData(env));
}
