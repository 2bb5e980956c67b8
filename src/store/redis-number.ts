/**
 * A number stored by the Lua scripts: with %.17g, where an overflowed sum
 * reads "inf" / "-inf" (Number() would give NaN), or as the sender's
 * String(x) ("Infinity" and "-Infinity" included, which Number() reads);
 * "nan" never comes from them but reads as NaN.
 */
export function redisNumber(v: string): number {
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return Number(v);
}
