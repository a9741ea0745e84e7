export { LogArchive, type LogQuery, type LogPage, type LogRange } from './archive.ts';
export { LogHub, LogHubClosedError, type NewLogEntry, type FollowOptions } from './hub.ts';
export { LineSplitter, LINE_CONTINUES, DEFAULT_MAX_LINE_BYTES } from './line-splitter.ts';
