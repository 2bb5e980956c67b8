/**
 * A number stored by the Lua scripts with %.17g: an overflowed sum reads
 * "inf" / "-inf" there (Number() would give NaN), "nan" never comes from
 * them but reads as NaN.
 */
export function redisNumber(v: string): number {
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return Number(v);
}
