export { LogArchive, type LogQuery } from './archive.ts';
export { LogHub, type NewLogEntry, type FollowOptions } from './hub.ts';
