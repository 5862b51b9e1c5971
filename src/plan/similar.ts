/** Suggestions for misspelt names ("did you mean …?"). */

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate closest to `name` (a case-insensitive match first), if within `maxDistance` edits. */
export function closestName(name: string, candidates: readonly string[], maxDistance = 3): string | undefined {
  let best: { name: string; dist: number } | undefined;
  for (const c of candidates) {
    const dist = c.toLowerCase() === name.toLowerCase() ? 0 : levenshtein(c, name);
    if (dist <= maxDistance && (best === undefined || dist < best.dist)) best = { name: c, dist };
  }
  return best?.name;
}
