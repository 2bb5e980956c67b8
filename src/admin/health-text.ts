/**
 * The console's text for a HealthReport: `health` in statsd's shape (first
 * line `health: up|down`, what statsd clients parse; then one `reason:` line
 * per reason when down), and the backlog lines `stats` adds.
 */
import type { HealthReport } from '../observability/health.js';

export function healthText(r: HealthReport): string {
  let text = `health: ${r.status}\n`;
  for (const reason of r.reasons) text += `reason: ${reason}\n`;
  return text;
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
const orUnknown = (v: number | null): string => (v === null ? 'unknown' : String(v));
const seconds = (ms: number | null): number | null => (ms === null ? null : Math.round(ms / 1000));

/** `group.metric: value` lines, as statsd's `stats` prints them. */
export function backlogText(r: HealthReport): string {
  const lines: Array<[string, string | number]> = [
    ['health.status', r.status],
    ...r.reasons.map((reason): [string, string] => ['health.reason', reason]),
    ['redis.answers', yesNo(r.redis.answers)],
    ['redis.ping_ms', orUnknown(r.redis.pingMs)],
    ['flush.leader', yesNo(r.leader)],
    ['flush.shards', r.shards.count],
    ['flush.shards_led', r.shards.led.length],
    ['flush.shards_led_ids', r.shards.led.length === 0 ? 'none' : r.shards.led.join(',')],
    ['flush.last_committed_period', orUnknown(seconds(r.lastCommit.boundaryMs))],
    ['flush.last_committed_age_s', orUnknown(seconds(r.lastCommit.ageMs))],
    ['flush.last_committed_by_this_process', orUnknown(r.lastCommittedByThisProcessS)],
    ['outbox.entries', orUnknown(r.outbox?.entries ?? null)],
    ['outbox.bytes', orUnknown(r.outbox?.bytes ?? null)],
    ['outbox.oldest_age_s', orUnknown(seconds(r.outbox?.oldestAgeMs ?? null))],
    ['batches.waiting', r.batchesWaiting],
  ];
  return lines.map(([k, v]) => `${k}: ${v}\n`).join('');
}
