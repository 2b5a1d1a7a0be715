/** Embedding vectors as every engine returns them: L2-normalized, so a dot product is the cosine similarity. */
export function normalize(vector: readonly number[]): number[] {
  let sum = 0;
  for (const v of vector) sum += v * v;
  const norm = Math.sqrt(sum);
  return norm === 0 ? [...vector] : vector.map((v) => v / norm);
}
