/** The `usage` object of a legacy completion (no cached-token details: the legacy API has none). */
export function completionUsage(usage: { promptTokens: number; completionTokens: number } | undefined) {
  const prompt = usage?.promptTokens ?? 0;
  const completion = usage?.completionTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
