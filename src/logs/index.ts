export { LogArchive, type LogQuery, type LogRange } from './archive.ts';
export { LogHub, type NewLogEntry, type FollowOptions } from './hub.ts';
