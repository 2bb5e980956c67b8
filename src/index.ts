/**
 * The package's entry point (`import { StatusPublisher } from 'tallyd'`):
 * what a Node service needs to send ZeroMQ status messages to tallyd. The
 * daemon itself runs from the `tallyd` command (src/main.ts).
 */
export { encodeStatus, StatusPublisher, type StatusMetric, type StatusPublisherOptions } from './publisher/status-publisher.js';
export type { ItemType } from './parse/zmq-item.js';
