/** Suggestions for misspelt names ("did you mean …?") and whether a name is a typo of another. */

/** Edit distance counting a swap of two neighbouring characters as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

export interface Closest {
  readonly name: string;
  /** Edits between the two names, ignoring case. */
  readonly distance: number;
}

/** The candidate closest to `name` (ignoring case), if within `maxDistance` edits. */
export function closest(name: string, candidates: readonly string[], maxDistance = 3): Closest | undefined {
  let best: Closest | undefined;
  for (const c of candidates) {
    const distance = editDistance(c.toLowerCase(), name.toLowerCase());
    if (distance <= maxDistance && (best === undefined || distance < best.distance)) best = { name: c, distance };
  }
  return best;
}

export function closestName(name: string, candidates: readonly string[], maxDistance = 3): string | undefined {
  return closest(name, candidates, maxDistance)?.name;
}

/**
 * A typo rather than another name: a different case, or one edit away (two for names of 10
 * characters or more) — `pollIntervall`, `sshHostName`; upstream's `devAdmins` is further from
 * every key.
 */
export function isNearMiss(c: Closest): boolean {
  return c.distance <= (c.name.length >= 10 ? 2 : 1);
}
