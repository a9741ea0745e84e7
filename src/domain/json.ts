// Shapes shared by every layer.
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// The deepest nesting of objects and arrays the API accepts in a body. Code that reads JSON
// recursively (ajv, JSON.stringify, the Kubernetes client) runs out of stack somewhere past
// a few thousand levels, so deeper bodies are refused with a 400 before any of it runs.
export const MAX_JSON_DEPTH = 100;

/** Where `value` first nests deeper than `max` levels (a path such as `spec.a[0]`), if it does. Iterative: any depth is safe to ask about. */
export function tooDeepAt(value: unknown, max = MAX_JSON_DEPTH): string | undefined {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value, depth: 0, path: '' }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item.value !== 'object' || item.value === null) continue;
    const depth = item.depth + 1;
    if (depth > max) return item.path || 'body';
    if (Array.isArray(item.value)) item.value.forEach((v, i) => stack.push({ value: v, depth, path: `${item.path}[${i}]` }));
    else for (const [k, v] of Object.entries(item.value)) stack.push({ value: v, depth, path: item.path ? `${item.path}.${k}` : k });
  }
  return undefined;
}
