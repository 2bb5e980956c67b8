/** A listener that could not start: one line naming what and where. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    readonly code: string,
    what: string,
    cause: NodeJS.ErrnoException,
  ) {
    const reason =
      cause.code === 'EADDRINUSE'
        ? 'address already in use'
        : cause.code === 'EACCES'
          ? 'permission denied'
          : cause.code === 'EADDRNOTAVAIL'
            ? 'address not available on this host'
            : cause.message;
    super(`cannot listen on ${what}: ${reason}${cause.code ? ` (${cause.code})` : ''}`, { cause });
  }
}
