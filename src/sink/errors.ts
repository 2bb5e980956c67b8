/** Typed error at the sink boundary: a code to branch on, the cause kept. */
export class SinkError extends Error {
  override readonly name = 'SinkError';
  constructor(
    readonly code: 'ETIMEOUT' | 'EUNREAD' | 'ECLOSED' | 'ECONNECT' | 'ESTOPPED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
