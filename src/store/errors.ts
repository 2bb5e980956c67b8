/** Typed error at the store boundary: a code to branch on, the cause kept. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: 'EREDIS_UNREACHABLE' | 'EREDIS_AUTH' | 'ESCRIPT' | 'EREDIS' | 'EREDIS_CLUSTER' | 'EREDIS_WAIT' | 'ESHARDS',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
